//! Who is calling the JSON API: a Bearer access token for oxidp's own API (`aud` contains
//! `{issuer}/api`, scope `account` or `admin`), a Bearer JWT from a configured trusted issuer
//! (account rights only), or an API key in `X-API-Key`.

use poem::Request;
use poem_openapi::auth::{ApiKey, Bearer};
use poem_openapi::{OAuthScopes, SecurityScheme};

use super::dpop_scheme::DpopScheme;
use super::problem::ApiError;
use crate::apikeys;
use crate::oauth::dpop::{self, Presentation};
use crate::oauth::{OAuthError, access_token, scope};
use crate::state::SharedState;
use crate::store::{User, UserStore};

#[derive(Debug, Clone)]
pub enum Credential {
    /// An access token: its scopes, the grant it belongs to, when its user signed in, and
    /// whether another issuer made it.
    Token { scopes: Vec<String>, grant_id: Option<String>, auth_time: Option<i64>, external: bool },
    /// An API key: its effective scopes (key scopes ∩ the owner's current rights).
    ApiKey { id: String, scopes: Vec<String> },
}

#[derive(Debug, Clone)]
pub struct Caller {
    pub user: User,
    pub credential: Credential,
}

/// What an operation needs from its caller.
#[derive(Debug, Clone, Copy)]
pub enum Need {
    /// Read the caller's own account.
    Read,
    /// Change the caller's own account.
    Write,
    /// Create or revoke API keys: a signed-in user only, never another key.
    ManageKeys,
}

impl Caller {
    pub fn require(&self, need: Need) -> Result<(), ApiError> {
        let allowed = match (&self.credential, need) {
            (Credential::Token { scopes, .. }, _) => scopes.iter().any(|s| s == scope::ACCOUNT),
            (Credential::ApiKey { scopes, .. }, Need::Read) => {
                scopes.iter().any(|s| s == apikeys::READ_USERS || s == apikeys::WRITE_USERS)
            }
            (Credential::ApiKey { scopes, .. }, Need::Write) => scopes.iter().any(|s| s == apikeys::WRITE_USERS),
            (Credential::ApiKey { .. }, Need::ManageKeys) => {
                return Err(ApiError::forbidden(
                    "bearer_required",
                    "API keys are managed with a Bearer token, not with a key",
                ));
            }
        };
        if allowed {
            Ok(())
        } else {
            Err(ApiError::forbidden("insufficient_scope", "the credentials do not allow this operation"))
        }
    }

    /// What this caller may hand on to a new API key; keys never mint keys.
    pub fn minter(&self) -> Result<apikeys::Minter, ApiError> {
        match &self.credential {
            Credential::Token { scopes, auth_time, external, .. } => {
                Ok(apikeys::Minter { scopes: scopes.clone(), auth_time: *auth_time, external: *external })
            }
            Credential::ApiKey { .. } => {
                Err(ApiError::forbidden("bearer_required", "API keys are managed with a Bearer token, not with a key"))
            }
        }
    }

    pub fn grant_id(&self) -> Option<&str> {
        match &self.credential {
            Credential::Token { grant_id, .. } => grant_id.as_deref(),
            Credential::ApiKey { .. } => None,
        }
    }
}

/// A DPoP-bound token (`cnf.jkt`) only with the DPoP scheme and a proof of its key; the DPoP
/// scheme only with a bound token of oxidp's.
pub async fn check_dpop(req: &Request, state: &SharedState, token: &str) -> poem::Result<()> {
    let bound_to = access_token::verified_signature(state, token).ok().and_then(|token| token.jkt);
    let presentation = match req.extensions().get::<DpopScheme>() {
        Some(scheme) => Presentation::Dpop { proofs: &scheme.proofs, method: &scheme.method, url: &scheme.url },
        None => Presentation::Bearer,
    };
    dpop::check_presentation(state, bound_to.as_deref(), token, &presentation)
        .await
        .map_err(super::problem::dpop_refusal)
}

fn state_of(req: &Request) -> poem::Result<&SharedState> {
    req.data::<SharedState>()
        .ok_or_else(|| poem::Error::from_string("state missing", poem::http::StatusCode::INTERNAL_SERVER_ERROR))
}

fn reject(error: ApiError) -> poem::Error {
    use poem::IntoResponse;
    poem::Error::from_response(error.into_response())
}

pub async fn caller_from_token(state: &SharedState, token: &str) -> Result<Caller, ApiError> {
    if let Some(external) = crate::trusted_issuers::authenticate(state, token).await {
        let user = external.map_err(external_token_problem)?;
        // A trusted issuer's token acts on its user's own account, never as an administrator.
        let credential = Credential::Token {
            scopes: vec![scope::ACCOUNT.to_string()],
            grant_id: None,
            auth_time: None,
            external: true,
        };
        return Ok(Caller { user, credential });
    }
    let invalid = || ApiError::unauthorized("invalid_token", "the access token is invalid, expired or revoked");
    let token = access_token::validate(state, token).await.map_err(|error| match error {
        OAuthError::Unavailable => ApiError::unavailable(),
        OAuthError::Internal(message) => ApiError::internal(&message),
        _ => invalid(),
    })?;
    let api_audience = state.config.api_audience();
    if !token.audience.contains(&api_audience) {
        return Err(ApiError::unauthorized("invalid_audience", format!("the access token is not for {api_audience}")));
    }
    if token.is_client_token() || !token.scopes.iter().any(|s| scope::is_api_scope(s)) {
        return Err(ApiError::forbidden("insufficient_scope", "the access token lacks the account scope"));
    }
    let user = state.db.user_by_sub(&token.subject).await?.filter(User::is_active).ok_or_else(invalid)?;
    let auth_time = token.claims.get("auth_time").and_then(serde_json::Value::as_i64);
    let credential = Credential::Token { scopes: token.scopes, grant_id: token.grant_id, auth_time, external: false };
    Ok(Caller { user, credential })
}

fn external_token_problem(error: crate::trusted_issuers::TrustedTokenError) -> ApiError {
    use crate::trusted_issuers::TrustedTokenError as E;
    tracing::debug!(%error, "external bearer token refused");
    match error {
        E::UnknownIssuer => ApiError::unauthorized("invalid_token", "the access token's issuer is not trusted"),
        E::WrongAudience => ApiError::unauthorized("invalid_audience", "the access token is not for this API"),
        E::Invalid(_) | E::Expired | E::Disabled => {
            ApiError::unauthorized("invalid_token", "the access token is invalid, expired or revoked")
        }
        E::IdentityConflict => ApiError::forbidden(
            "identity_conflict",
            "an account with this email exists and is not linked to the token's issuer; sign in to link it",
        ),
        E::NoEmail => ApiError::forbidden("email_required", "the token carries no email address for a new account"),
        E::Unreachable(message) => {
            tracing::warn!(%message, "a trusted issuer's keys cannot be fetched");
            ApiError::unavailable()
        }
        E::Unavailable => ApiError::unavailable(),
        E::Internal(message) => ApiError::internal(&message),
    }
}

pub async fn caller_from_api_key(state: &SharedState, key: &str) -> Result<Caller, ApiError> {
    let (user, key) = apikeys::authenticate(state, key).await?;
    let scopes = apikeys::effective_scopes(&key, &user);
    Ok(Caller { user, credential: Credential::ApiKey { id: key.id, scopes } })
}

/// Scopes Swagger UI may ask for when it runs the authorization-code flow.
#[derive(OAuthScopes)]
pub enum ApiScopes {
    /// Manage your own account.
    #[oai(rename = "account")]
    Account,
    /// Administer oxidp (administrators only).
    #[oai(rename = "admin")]
    Admin,
    /// Sign in with OpenID Connect.
    #[oai(rename = "openid")]
    Openid,
}

async fn bearer_checker(req: &Request, bearer: Bearer) -> poem::Result<Caller> {
    let state = state_of(req)?;
    check_dpop(req, state, &bearer.token).await?;
    caller_from_token(state, &bearer.token).await.map_err(reject)
}

async fn api_key_checker(req: &Request, key: ApiKey) -> poem::Result<Caller> {
    caller_from_api_key(state_of(req)?, &key.key).await.map_err(reject)
}

/// oxidp's authorization-code flow with PKCE, as run by Swagger UI's Authorize button
/// (client `oxidp-api`). The token it yields is sent as a Bearer token.
#[derive(SecurityScheme)]
#[oai(
    rename = "oauth2",
    ty = "oauth2",
    flows(authorization_code(authorization_url = "/authorize", token_url = "/token", scopes = "ApiScopes")),
    checker = "oauth2_checker"
)]
pub struct OAuth2Auth(pub Caller);

async fn oauth2_checker(req: &Request, token: poem_openapi::auth::Bearer) -> poem::Result<Caller> {
    bearer_checker(req, token).await
}

/// An access token with `aud` `{issuer}/api` and scope `account` (or `admin`).
#[derive(SecurityScheme)]
#[oai(rename = "bearer", ty = "bearer", bearer_format = "JWT", checker = "bearer_checker")]
pub struct BearerAuth(pub Caller);

/// An API key (`oxk_…`) in the `X-API-Key` header.
#[derive(SecurityScheme)]
#[oai(rename = "api_key", ty = "api_key", key_name = "X-API-Key", key_in = "header", checker = "api_key_checker")]
pub struct ApiKeyAuth(pub Caller);

/// Any of the three.
pub enum AccountAuth {
    Bearer(BearerAuth),
    ApiKey(ApiKeyAuth),
    OAuth2(OAuth2Auth),
}

/// What `#[derive(SecurityScheme)]` on the enum would generate, except for the error: the derived
/// extractor answers the last scheme's error, so a request with only `X-API-Key` got the generic
/// 401 of the absent Authorization header instead of the key's own `invalid_api_key`.
impl<'a> poem_openapi::ApiExtractor<'a> for AccountAuth {
    const TYPES: &'static [poem_openapi::ApiExtractorType] = &[poem_openapi::ApiExtractorType::SecurityScheme];

    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut poem_openapi::registry::Registry) {
        <BearerAuth as poem_openapi::ApiExtractor>::register(registry);
        <ApiKeyAuth as poem_openapi::ApiExtractor>::register(registry);
        <OAuth2Auth as poem_openapi::ApiExtractor>::register(registry);
    }

    fn security_schemes() -> Vec<&'static str> {
        let mut schemes = <BearerAuth as poem_openapi::ApiExtractor>::security_schemes();
        schemes.extend(<ApiKeyAuth as poem_openapi::ApiExtractor>::security_schemes());
        schemes.extend(<OAuth2Auth as poem_openapi::ApiExtractor>::security_schemes());
        schemes
    }

    async fn from_request(
        req: &'a Request,
        body: &mut poem::RequestBody,
        param_opts: poem_openapi::ExtractParamOptions<()>,
    ) -> poem::Result<Self> {
        if req.headers().contains_key("x-api-key") && !req.headers().contains_key(poem::http::header::AUTHORIZATION) {
            return ApiKeyAuth::from_request(req, body, param_opts).await.map(AccountAuth::ApiKey);
        }
        if let Ok(auth) = BearerAuth::from_request(req, body, param_opts.clone()).await {
            return Ok(AccountAuth::Bearer(auth));
        }
        if let Ok(auth) = ApiKeyAuth::from_request(req, body, param_opts.clone()).await {
            return Ok(AccountAuth::ApiKey(auth));
        }
        OAuth2Auth::from_request(req, body, param_opts).await.map(AccountAuth::OAuth2)
    }
}

impl AccountAuth {
    pub fn caller(self) -> Caller {
        match self {
            AccountAuth::Bearer(BearerAuth(caller))
            | AccountAuth::ApiKey(ApiKeyAuth(caller))
            | AccountAuth::OAuth2(OAuth2Auth(caller)) => caller,
        }
    }
}
