//! grant_type=urn:ietf:params:oauth:grant-type:token-exchange (RFC 8693): a client allowed the
//! grant trades a subject token for an access token to another target, for the same person.
//!
//! - Subject tokens: oxidp's own access tokens issued to the exchanging client or naming it in
//!   `aud`, and JWTs of trusted external issuers (`OXIDP_TRUSTED_ISSUER__*`, federated exchange).
//! - The target (`audience`: a registered client's id; `resource`: an RFC 8707 indicator) must
//!   be in the client's exchange policy (or, with `OXIDP_TOKEN_EXCHANGE_AUDIENCES=registered-clients`,
//!   any registered client's id).
//! - Only down-scoping: the scopes are those of the subject token or fewer, never oxidp's own API
//!   scopes (an exchanged token never reaches the credential-making API), no refresh token, and
//!   the token ends no later than the subject token.
//! - Without `actor_token` the result impersonates the subject; with one (delegation) it carries
//!   `act` (the actor, with earlier actors nested), allowed when the subject token's `may_act`
//!   names the actor or the client's policy allows delegation.
//! - Every exchange is audited (`token.exchange`): subject, actor, client, audience.

use serde_json::{Map, Value, json};

use crate::oauth::access_token::{self, AccessTokenSpec, ValidatedAccessToken};
use crate::oauth::params::Params;
use crate::oauth::{OAuthError, scope};
use crate::state::AppState;
use crate::store::{Client, ExchangePolicy, GrantStore, TokenExchangeStore, UserStore};

pub use crate::oauth::grant_types::TOKEN_EXCHANGE as GRANT_TYPE;
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
pub const JWT_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";

/// Who a presented token stands for.
struct Party {
    /// The `sub` the new token carries for it.
    sub: String,
    /// oxidp's user, when it is one (external subjects are found or linked like upstream logins).
    user_id: Option<String>,
    /// The client the token was issued to, for oxidp's own tokens.
    client_id: Option<String>,
    /// The grant of oxidp's own user token: revoking it revokes the exchanged token too.
    grant_id: Option<String>,
    scopes: Option<Vec<String>>,
    expires_at: i64,
    claims: Map<String, Value>,
}

pub async fn exchange(
    state: &AppState,
    client: &Client,
    params: &Params,
    jkt: Option<&str>,
) -> Result<super::TokenResponse, OAuthError> {
    if !client.allows_grant(GRANT_TYPE) || client.is_public {
        return Err(OAuthError::unauthorized_client("the client may not use token exchange"));
    }
    if params.get("requested_token_type").is_some_and(|t| t != ACCESS_TOKEN_TYPE) {
        return Err(OAuthError::invalid_request("only access tokens can be requested"));
    }
    let subject_token = required(params, "subject_token")?;
    let subject_type = required(params, "subject_token_type")?;
    let subject = party(state, client, subject_token, subject_type, true).await?;
    // A DPoP-bound subject token is the holder's only with a proof of its key (RFC 9449 §6.1);
    // the exchanged token is then bound to the same key.
    let bound = subject.claims.get("cnf").and_then(|cnf| cnf.get("jkt")).and_then(Value::as_str);
    if bound.is_some_and(|bound| jkt != Some(bound)) {
        return Err(OAuthError::invalid_grant("the subject token is DPoP-bound: send a DPoP proof of its key"));
    }
    let actor = match (params.get("actor_token"), params.get("actor_token_type")) {
        (None, None) => None,
        (Some(token), Some(kind)) => Some(party(state, client, token, kind, false).await?),
        _ => return Err(OAuthError::invalid_request("actor_token and actor_token_type go together")),
    };
    let policy = state.db.exchange_policy(&client.id).await?.unwrap_or_default();
    let audience = target(state, &policy, params).await?;
    let scopes = scopes(&subject, params.get("scope"))?;
    let act = match &actor {
        Some(actor) => Some(delegation(&policy, &subject, actor)?),
        None => None,
    };
    let now = state.now();
    let expires_at = subject.expires_at.min(now + state.config.access_token_ttl);
    if expires_at <= now {
        return Err(OAuthError::invalid_grant("the subject token has expired"));
    }
    let minted = access_token::mint(
        state,
        AccessTokenSpec {
            client,
            subject: &subject.sub,
            scopes: &scopes,
            audience: audience.clone(),
            auth_time: subject.claims.get("auth_time").and_then(Value::as_i64),
            act: act.clone(),
            expires_at: Some(expires_at),
            jkt,
        },
    )?;
    let (grant, user) = (subject.grant_id.as_deref(), subject.user_id.as_deref());
    state.db.record_access_token(&minted.jti, &client.id, grant, user, minted.expires_at).await?;
    audit(state, client, &subject, actor.as_ref(), &audience).await?;
    Ok(super::TokenResponse {
        access_token: minted.token,
        token_type: crate::oauth::token_response::token_type(jkt),
        expires_in: expires_at - now,
        scope: scope::join(&scopes),
        refresh_token: None,
        id_token: None,
        issued_token_type: Some(ACCESS_TOKEN_TYPE),
    })
}

fn required<'a>(params: &'a Params, name: &str) -> Result<&'a str, OAuthError> {
    params.get(name).filter(|v| !v.is_empty()).ok_or_else(|| OAuthError::invalid_request(format!("{name} is required")))
}

/// Validates a subject or actor token. oxidp's own subject tokens must be the client's (issued
/// to it or naming it as audience): a token meant for someone else is not the client's to trade.
async fn party(
    state: &AppState,
    client: &Client,
    token: &str,
    kind: &str,
    is_subject: bool,
) -> Result<Party, OAuthError> {
    let which = if is_subject { "subject_token" } else { "actor_token" };
    if kind != ACCESS_TOKEN_TYPE && kind != JWT_TYPE {
        return Err(OAuthError::invalid_request(format!("{which}_type is not supported")));
    }
    let issued_here = crate::crypto::jws::unverified_claims(token)
        .is_some_and(|claims| claims.get("iss").and_then(Value::as_str) == Some(state.config.issuer.as_str()));
    if !issued_here {
        return external(state, token, which).await;
    }
    let validated = access_token::validate(state, token)
        .await
        .map_err(|_| OAuthError::invalid_grant(format!("the {which} is not a valid access token of this server")))?;
    if is_subject && validated.client_id != client.id && !validated.audience.contains(&client.id) {
        return Err(OAuthError::invalid_grant("the subject_token was neither issued to nor meant for this client"));
    }
    own(state, validated).await
}

async fn own(state: &AppState, token: ValidatedAccessToken) -> Result<Party, OAuthError> {
    let user_id = if token.is_client_token() {
        None
    } else {
        let user = state.db.user_by_sub(&token.subject).await?.filter(|user| user.is_active());
        Some(user.ok_or_else(|| OAuthError::invalid_grant("the token's user is no longer active"))?.id)
    };
    Ok(Party {
        sub: token.subject,
        user_id,
        client_id: Some(token.client_id),
        grant_id: token.grant_id,
        scopes: Some(token.scopes),
        expires_at: token.expires_at,
        claims: token.claims,
    })
}

/// A trusted external issuer's JWT (federated exchange): the person it names, as oxidp's user.
async fn external(state: &AppState, token: &str, which: &str) -> Result<Party, OAuthError> {
    let refused = |reason: String| OAuthError::invalid_grant(format!("the {which} is not accepted: {reason}"));
    let user = match crate::trusted_issuers::authenticate(state, token).await {
        Some(Ok(user)) => user,
        Some(Err(crate::trusted_issuers::TrustedTokenError::Unavailable)) => return Err(OAuthError::Unavailable),
        Some(Err(error)) => return Err(refused(error.to_string())),
        None => return Err(refused("not a JWT".into())),
    };
    let claims = crate::crypto::jws::unverified_claims(token).unwrap_or_default();
    let expires_at = claims.get("exp").and_then(Value::as_i64).unwrap_or_default();
    Ok(Party {
        sub: user.sub.clone(),
        user_id: Some(user.id),
        client_id: None,
        grant_id: None,
        scopes: None,
        expires_at,
        claims,
    })
}

/// The audience of the new token, from `audience` and `resource`, each allowed by the policy.
async fn target(state: &AppState, policy: &ExchangePolicy, params: &Params) -> Result<Vec<String>, OAuthError> {
    let mut audience = Vec::new();
    if let Some(wanted) = params.get("audience") {
        let registered = crate::oauth::clients::find_shared(state, wanted).await?.is_some();
        let open = state.config.token_exchange_audiences == crate::config::TokenExchangeAudiences::RegisteredClients;
        if !registered || !(open || policy.audiences.iter().any(|a| a == wanted)) {
            return Err(OAuthError::invalid_target(format!("the client may not exchange tokens for '{wanted}'")));
        }
        audience.push(wanted.to_string());
    }
    if let Some(resource) = params.get("resource") {
        if !policy.resources.iter().any(|r| r == resource) {
            return Err(OAuthError::invalid_target(format!("the client may not exchange tokens for '{resource}'")));
        }
        audience.push(resource.to_string());
    }
    if audience.is_empty() {
        return Err(OAuthError::invalid_request("audience or resource names the target"));
    }
    Ok(audience)
}

/// The subject token's scopes or fewer; never oxidp's own API scopes nor offline access.
fn scopes(subject: &Party, requested: Option<&str>) -> Result<Vec<String>, OAuthError> {
    let held: Vec<String> = match &subject.scopes {
        Some(scopes) => scopes.clone(),
        None => subject.claims.get("scope").and_then(Value::as_str).map(scope::parse).transpose()?.unwrap_or_default(),
    };
    let held: Vec<String> =
        held.into_iter().filter(|s| !scope::is_api_scope(s) && s != scope::OFFLINE_ACCESS).collect();
    let Some(requested) = requested else { return Ok(held) };
    let requested = scope::parse(requested)?;
    if let Some(extra) = requested.iter().find(|s| !scope::contains(&held, s)) {
        return Err(OAuthError::invalid_scope(format!("scope '{extra}' is not held by the subject token")));
    }
    Ok(requested)
}

/// The `act` claim of a delegation (RFC 8693 §4.1), earlier actors nested inside.
fn delegation(policy: &ExchangePolicy, subject: &Party, actor: &Party) -> Result<Value, OAuthError> {
    let may_act = subject.claims.get("may_act").and_then(Value::as_object);
    let named = may_act.is_some_and(|may| {
        let text = |name: &str| may.get(name).and_then(Value::as_str);
        text("sub").is_some_and(|sub| sub == actor.sub)
            || text("client_id").is_some_and(|id| actor.client_id.as_deref() == Some(id))
    });
    if !named && !policy.delegation {
        return Err(OAuthError::invalid_grant("the subject token's may_act does not name the actor"));
    }
    let mut act = Map::new();
    act.insert("sub".into(), Value::String(actor.sub.clone()));
    if let Some(client_id) = &actor.client_id {
        act.insert("client_id".into(), Value::String(client_id.clone()));
    }
    if let Some(earlier) = subject.claims.get("act") {
        act.insert("act".into(), earlier.clone());
    }
    Ok(Value::Object(act))
}

async fn audit(
    state: &AppState,
    client: &Client,
    subject: &Party,
    actor: Option<&Party>,
    audience: &[String],
) -> Result<(), OAuthError> {
    let event = crate::audit::Event {
        actor: crate::audit::Actor::Client(client.id.clone()),
        action: "token.exchange",
        target: subject.user_id.as_deref().map(|id| ("user", id)),
        details: json!({
            "subject": subject.sub,
            "subject_client_id": subject.client_id,
            "actor": actor.map(|a| json!({ "sub": a.sub, "client_id": a.client_id })),
            "audience": audience,
        }),
    };
    crate::audit::record(state, &crate::audit::Origin::default(), event).await?;
    Ok(())
}
