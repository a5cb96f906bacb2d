//! Named checks of an authorization request, in the order they run. The first two decide
//! whether errors may be redirected at all; after them, every failure goes back to the client.

use super::request_object::{self, Refused};
use super::{AuthorizationRequest, AuthorizeError};
use crate::oauth::params::Params;
use crate::oauth::{ErrorCode, OAuthError, access_token, pkce, redirect_uri, scope};
use crate::state::AppState;
use crate::store::Client;

const KNOWN_PROMPTS: [&str; 4] = ["none", "login", "consent", "select_account"];
/// The longest value kept with a pending request for each free-form parameter (issue 12 item 6:
/// a pending request is stored without authentication, so each is bounded; longer is
/// `invalid_request`). The other stored parameters are bounded by what they must match:
/// `redirect_uri`, `scope` and `resource` the client's registered values, `code_challenge` the
/// S256 form, `prompt` the known values, `max_age` a number.
const MAX_STORED_LEN: [(&str, usize); 3] = [("state", 1024), ("nonce", 512), ("login_hint", 320)];
const MAX_STATE_LEN: usize = MAX_STORED_LEN[0].1;

pub(super) async fn validate(
    state: &AppState,
    params: &Params,
) -> Result<(Client, AuthorizationRequest), AuthorizeError> {
    let client = check_client(state, params).await?;
    let resolved = match request_object::effective_params(state, &client, params).await {
        Ok(resolved) => resolved,
        Err(refused) => return Err(object_refusal(&client, refused)),
    };
    let request = validate_for(state, &client, resolved.as_ref().unwrap_or(params))?;
    Ok((client, request))
}

/// A refused request object at `/authorize`: an error page while nothing in it can be trusted;
/// once its signature verified, `invalid_request_object` at the redirect URI it names (if that
/// is registered), with its `state`.
fn object_refusal(client: &Client, refused: Refused) -> AuthorizeError {
    let description = refused.description();
    match refused {
        Refused::Outage(error) => match error {
            OAuthError::Internal(message) => AuthorizeError::Internal(message),
            _ => AuthorizeError::Unavailable,
        },
        Refused::Unverified(_) => AuthorizeError::Page(format!(
            "The signed authorization request was refused (invalid_request_object): {description}."
        )),
        Refused::Invalid { claims, .. } => match check_redirect_uri(client, &claims) {
            Ok((redirect_uri, _)) => AuthorizeError::Redirect {
                redirect_uri,
                error: ErrorCode::InvalidRequestObject,
                description,
                state: claims.get("state").filter(|s| s.len() <= MAX_STATE_LEN).map(str::to_string),
            },
            Err(page) => page,
        },
    }
}

/// The checks after the client is known: `/authorize` looks it up by `client_id`, `/par`
/// authenticates it. `params` are the request's own, or those of its verified request object.
pub(super) fn validate_for(
    state: &AppState,
    client: &Client,
    params: &Params,
) -> Result<AuthorizationRequest, AuthorizeError> {
    let (redirect_uri, redirect_uri_given) = check_redirect_uri(client, params)?;
    let fail = |error: OAuthError| match error {
        OAuthError::Protocol { error, description } => AuthorizeError::Redirect {
            redirect_uri: redirect_uri.clone(),
            error,
            description: description.into_owned(),
            // A repeated or oversized state is not echoed back.
            state: params
                .get("state")
                .filter(|_| !params.is_repeated("state"))
                .filter(|s| s.len() <= MAX_STATE_LEN)
                .map(str::to_string),
        },
        // Proofs are not checked at /authorize; a binding mistake is the client's.
        OAuthError::Dpop { description, .. } => AuthorizeError::Redirect {
            redirect_uri: redirect_uri.clone(),
            error: ErrorCode::InvalidRequest,
            description: description.into_owned(),
            state: None,
        },
        OAuthError::Unavailable | OAuthError::RateLimited { .. } => AuthorizeError::Unavailable,
        OAuthError::Internal(message) => AuthorizeError::Internal(message),
    };
    check_parameters_once(params).map_err(fail)?;
    check_response_type(params).map_err(fail)?;
    check_unsupported_features(params).map_err(fail)?;
    check_grant_allowed(client).map_err(fail)?;
    let scopes = scope::resolve_for_client(client, params.get("scope")).map_err(fail)?;
    let code_challenge = check_pkce(client, params).map_err(fail)?;
    let prompt = check_prompt(params).map_err(fail)?;
    let max_age = check_max_age(params).map_err(fail)?;
    check_stored_sizes(params).map_err(fail)?;
    let dpop_jkt = check_dpop_jkt(params).map_err(fail)?;
    access_token::check_resource(state, client, params.get("resource")).map_err(fail)?;

    let request = AuthorizationRequest {
        client_id: client.id.clone(),
        redirect_uri,
        redirect_uri_given,
        scopes,
        state: params.get("state").map(str::to_string),
        nonce: params.get("nonce").map(str::to_string),
        code_challenge,
        prompt,
        max_age,
        login_hint: params.get("login_hint").map(str::to_string),
        resource: params.get("resource").map(str::to_string),
        fresh_login_session: None,
        consent_given_by: None,
        browser: String::new(),
        dpop_jkt,
    };
    Ok(request)
}

async fn check_client(state: &AppState, params: &Params) -> Result<Client, AuthorizeError> {
    if params.is_repeated("client_id") {
        return Err(AuthorizeError::Page("The request names more than one client_id.".into()));
    }
    let client_id =
        params.get("client_id").ok_or_else(|| AuthorizeError::Page("The request has no client_id.".into()))?;
    crate::oauth::clients::find(state, client_id)
        .await?
        .ok_or_else(|| AuthorizeError::Page("The application that sent you here is not registered.".into()))
}

/// Exact match against the registered list (any port on loopback IPs). Without a
/// redirect_uri the client's single registered one is used.
fn check_redirect_uri(client: &Client, params: &Params) -> Result<(String, bool), AuthorizeError> {
    if params.is_repeated("redirect_uri") {
        return Err(AuthorizeError::Page("The request names more than one redirect_uri.".into()));
    }
    match params.get("redirect_uri") {
        Some(presented)
            if client.redirect_uris.iter().any(|registered| redirect_uri::matches(registered, presented)) =>
        {
            Ok((presented.to_string(), true))
        }
        Some(_) => Err(AuthorizeError::Page("The redirect_uri is not registered for this application.".into())),
        None => match client.redirect_uris.as_slice() {
            [only] => Ok((only.clone(), false)),
            _ => Err(AuthorizeError::Page("The request has no redirect_uri.".into())),
        },
    }
}

fn check_parameters_once(params: &Params) -> Result<(), OAuthError> {
    crate::oauth::params::reject_malformed(params)
}

fn check_response_type(params: &Params) -> Result<(), OAuthError> {
    match params.get("response_type") {
        Some("code") => Ok(()),
        Some(_) => Err(OAuthError::unsupported_response_type("only response_type=code is supported")),
        None => Err(OAuthError::invalid_request("response_type is required")),
    }
}

fn check_unsupported_features(params: &Params) -> Result<(), OAuthError> {
    if params.get("request").is_some() && params.get("request_uri").is_some() {
        return Err(OAuthError::invalid_request("request and request_uri cannot be used together (RFC 9101 §5)"));
    }
    if params.get("request").is_some() {
        // Reached only when the object was not resolved into the parameters (see validate).
        return Err(OAuthError::Protocol {
            error: ErrorCode::InvalidRequestObject,
            description: "the request object was not verified".into(),
        });
    }
    if params.get("request_uri").is_some() {
        return Err(OAuthError::request_uri_not_supported("request_uri is not supported"));
    }
    match params.get("response_mode") {
        None | Some("query") => Ok(()),
        Some(_) => Err(OAuthError::invalid_request("only response_mode=query is supported")),
    }
}

fn check_grant_allowed(client: &Client) -> Result<(), OAuthError> {
    if client.allows_grant("authorization_code") {
        Ok(())
    } else {
        Err(OAuthError::unauthorized_client("the client may not use the authorization code flow"))
    }
}

/// S256 for every client; only a confidential client with the exemption flag may omit it.
fn check_pkce(client: &Client, params: &Params) -> Result<Option<String>, OAuthError> {
    let method = params.get("code_challenge_method");
    match params.get("code_challenge") {
        Some(challenge) => {
            if method != Some("S256") {
                return Err(OAuthError::invalid_request("code_challenge_method must be S256"));
            }
            if !pkce::is_valid_challenge(challenge) {
                return Err(OAuthError::invalid_request("code_challenge is not a valid S256 challenge"));
            }
            Ok(Some(challenge.to_string()))
        }
        None if method.is_some() => Err(OAuthError::invalid_request("code_challenge_method without code_challenge")),
        None if client.pkce_exempt && !client.is_public => Ok(None),
        None => Err(OAuthError::invalid_request("code_challenge is required (PKCE with S256)")),
    }
}

fn check_prompt(params: &Params) -> Result<Vec<String>, OAuthError> {
    let prompt: Vec<String> =
        params.get("prompt").unwrap_or("").split(' ').filter(|p| !p.is_empty()).map(str::to_string).collect();
    if let Some(unknown) = prompt.iter().find(|p| !KNOWN_PROMPTS.contains(&p.as_str())) {
        return Err(OAuthError::invalid_request(format!("prompt value '{unknown}' is not supported")));
    }
    if prompt.len() > 1 && prompt.iter().any(|p| p == "none") {
        return Err(OAuthError::invalid_request("prompt=none cannot be combined with other values"));
    }
    Ok(prompt)
}

fn check_max_age(params: &Params) -> Result<Option<i64>, OAuthError> {
    params
        .get("max_age")
        .map(|text| {
            text.parse::<i64>()
                .ok()
                .filter(|age| *age >= 0)
                .ok_or_else(|| OAuthError::invalid_request("max_age must be a non-negative integer"))
        })
        .transpose()
}

/// RFC 9449 §10: `dpop_jkt` is a base64url SHA-256 JWK thumbprint.
fn check_dpop_jkt(params: &Params) -> Result<Option<String>, OAuthError> {
    match params.get("dpop_jkt") {
        Some(jkt) if crate::oauth::dpop::is_thumbprint(jkt) => Ok(Some(jkt.to_string())),
        Some(_) => Err(OAuthError::invalid_request("dpop_jkt must be a base64url SHA-256 JWK thumbprint")),
        None => Ok(None),
    }
}

fn check_stored_sizes(params: &Params) -> Result<(), OAuthError> {
    match MAX_STORED_LEN.iter().find(|(name, max)| params.get(name).is_some_and(|value| value.len() > *max)) {
        Some((name, max)) => Err(OAuthError::invalid_request(format!("{name} is longer than {max} bytes"))),
        None => Ok(()),
    }
}
