//! Who may call the admin API (SPEC §5): an administrator (Bearer token with `admin` scope and
//! `aud` `{issuer}/api`, or an API key of an admin owner) or an API client (`X-Client-Key` +
//! `X-API-Key`). API-client credential failures all get one identical 401; the reason goes to
//! the audit log only.

use poem::Request;
use poem_openapi::SecurityScheme;
use poem_openapi::auth::{ApiKey, Bearer};

use super::caller::{Caller, Credential, caller_from_api_key, caller_from_token};
use super::problem::ApiError;
use crate::apiclients::{self, ApiClientError, RequestFacts};
use crate::audit::{Actor, Initiator};
use crate::state::SharedState;
use crate::store::{ApiClient, User};

#[derive(Debug, Clone)]
pub enum AdminActor {
    User(User),
    ApiClient(ApiClient),
}

/// An authenticated admin caller and whether it may change things or only read.
#[derive(Debug, Clone)]
pub struct AdminCaller {
    pub actor: AdminActor,
    pub can_write: bool,
    /// What the caller may hand on, when it is a Bearer token; keys and API clients never mint.
    pub minter: Option<crate::apikeys::Minter>,
}

impl AdminCaller {
    pub fn require_write(&self) -> Result<(), ApiError> {
        if self.can_write { Ok(()) } else { Err(ApiError::forbidden("insufficient_scope", "this key may only read")) }
    }

    /// The administrator's user id; none for an API client.
    pub fn user_id(&self) -> Option<&str> {
        match &self.actor {
            AdminActor::User(user) => Some(&user.id),
            AdminActor::ApiClient(_) => None,
        }
    }

    pub fn audit_actor(&self) -> Actor {
        match &self.actor {
            AdminActor::User(user) => Actor::User(user.id.clone()),
            AdminActor::ApiClient(client) => Actor::ApiClient(client.id.clone()),
        }
    }
}

impl AdminCaller {
    /// For operations that make a credential (an API client, an OAuth client and its secret):
    /// only an administrator's recent Bearer token may (issue #12 item 1).
    pub fn require_minting(&self, state: &SharedState) -> Result<(), ApiError> {
        self.require_write()?;
        match &self.minter {
            Some(minter) => Ok(minter.check_admin(state)?),
            None => Err(ApiError::forbidden(
                "bearer_required",
                "new credentials are made with an administrator's Bearer token, not with an API key or API client",
            )),
        }
    }

    /// This caller, acting through `req`: what core operations audit.
    pub fn initiator(&self, state: &SharedState, req: &Request) -> Initiator {
        crate::web::initiator(state, req, self.audit_actor())
    }
}

fn state_of(req: &Request) -> poem::Result<&SharedState> {
    req.data::<SharedState>()
        .ok_or_else(|| poem::Error::from_string("state missing", poem::http::StatusCode::INTERNAL_SERVER_ERROR))
}

fn reject(error: ApiError) -> poem::Error {
    use poem::IntoResponse;
    poem::Error::from_response(error.into_response())
}

/// A user caller becomes an admin caller only while the user is an administrator.
fn admin_from_user(caller: Caller) -> Result<AdminCaller, ApiError> {
    let not_admin = || ApiError::forbidden("admin_required", "this operation needs an administrator");
    if !caller.user.is_admin() {
        return Err(not_admin());
    }
    let minter = caller.minter().ok();
    let can_write = match &caller.credential {
        Credential::Token { scopes, .. } => {
            if !scopes.iter().any(|s| s == crate::oauth::scope::ADMIN) {
                return Err(not_admin());
            }
            true
        }
        Credential::ApiKey { scopes, .. } => {
            if scopes.iter().any(|s| s == crate::apikeys::ADMIN) {
                true
            } else if scopes.iter().any(|s| s == crate::apikeys::READ_USERS) {
                false
            } else {
                return Err(not_admin());
            }
        }
    };
    Ok(AdminCaller { actor: AdminActor::User(caller.user), can_write, minter })
}

async fn admin_bearer_checker(req: &Request, bearer: Bearer) -> poem::Result<AdminCaller> {
    let state = state_of(req)?;
    super::caller::check_dpop(req, state, &bearer.token).await?;
    caller_from_token(state, &bearer.token).await.and_then(admin_from_user).map_err(reject)
}

async fn admin_key_checker(req: &Request, key: ApiKey) -> poem::Result<AdminCaller> {
    let state = state_of(req)?;
    if req.headers().contains_key("x-client-key") {
        return Err(reject(ApiError::unauthorized("invalid_credentials", "invalid credentials")));
    }
    caller_from_api_key(state, &key.key).await.and_then(admin_from_user).map_err(reject)
}

/// The one answer to every API-client credential failure.
fn api_client_unauthorized() -> ApiError {
    ApiError::unauthorized("invalid_credentials", "invalid API client credentials")
}

async fn api_client_checker(req: &Request, client_key: ApiKey) -> poem::Result<AdminCaller> {
    let state = state_of(req)?;
    let secret = req.headers().get("x-api-key").and_then(|v| v.to_str().ok()).unwrap_or("");
    let from = crate::web::origin(state, req);
    let ip = from.ip.clone().unwrap_or_default();
    let facts = RequestFacts {
        ip: &ip,
        origin: req.headers().get("origin").and_then(|v| v.to_str().ok()),
        path: req.original_uri().path(),
        from: &from,
    };
    match apiclients::authenticate(state, &client_key.key, secret, &facts).await {
        Ok(client) => Ok(AdminCaller { actor: AdminActor::ApiClient(client), can_write: true, minter: None }),
        Err(ApiClientError::Unauthenticated { .. }) => Err(reject(api_client_unauthorized())),
        Err(ApiClientError::NotAllowed(message)) => Err(reject(ApiError::forbidden("not_allowed", message))),
        Err(ApiClientError::RateLimited { retry_after }) => Err(reject(ApiError::too_many(retry_after))),
        Err(ApiClientError::Unavailable) => Err(reject(ApiError::unavailable())),
        Err(ApiClientError::NotFound) => Err(reject(api_client_unauthorized())),
        Err(ApiClientError::Invalid { message, .. } | ApiClientError::Internal(message)) => {
            Err(reject(ApiError::internal(&message)))
        }
    }
}

/// An administrator's access token (`admin` scope, `aud` `{issuer}/api`).
#[derive(SecurityScheme)]
#[oai(rename = "bearer", ty = "bearer", bearer_format = "JWT", checker = "admin_bearer_checker")]
pub struct AdminBearer(pub AdminCaller);

/// An administrator's API key (`admin` scope to change, `read:users` to read).
#[derive(SecurityScheme)]
#[oai(rename = "api_key", ty = "api_key", key_name = "X-API-Key", key_in = "header", checker = "admin_key_checker")]
pub struct AdminApiKey(pub AdminCaller);

/// An API client: its id in `X-Client-Key` and its secret in `X-API-Key`.
#[derive(SecurityScheme)]
#[oai(
    rename = "api_client",
    ty = "api_key",
    key_name = "X-Client-Key",
    key_in = "header",
    checker = "api_client_checker"
)]
pub struct AdminApiClient(pub AdminCaller);

/// Any admin credential. API clients are tried first when `X-Client-Key` is present, so their
/// failures get their own uniform answer.
pub enum AdminAuth {
    ApiClient(AdminApiClient),
    Bearer(AdminBearer),
    ApiKey(AdminApiKey),
}

impl AdminAuth {
    pub fn caller(self) -> AdminCaller {
        match self {
            AdminAuth::ApiClient(AdminApiClient(c))
            | AdminAuth::Bearer(AdminBearer(c))
            | AdminAuth::ApiKey(AdminApiKey(c)) => c,
        }
    }
}

impl<'a> poem_openapi::ApiExtractor<'a> for AdminAuth {
    const TYPES: &'static [poem_openapi::ApiExtractorType] = &[poem_openapi::ApiExtractorType::SecurityScheme];

    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut poem_openapi::registry::Registry) {
        <AdminBearer as poem_openapi::ApiExtractor>::register(registry);
        <AdminApiKey as poem_openapi::ApiExtractor>::register(registry);
        <AdminApiClient as poem_openapi::ApiExtractor>::register(registry);
    }

    fn security_schemes() -> Vec<&'static str> {
        let mut schemes = <AdminBearer as poem_openapi::ApiExtractor>::security_schemes();
        schemes.extend(<AdminApiKey as poem_openapi::ApiExtractor>::security_schemes());
        schemes.extend(<AdminApiClient as poem_openapi::ApiExtractor>::security_schemes());
        schemes
    }

    async fn from_request(
        req: &'a Request,
        body: &mut poem::RequestBody,
        param_opts: poem_openapi::ExtractParamOptions<()>,
    ) -> poem::Result<Self> {
        let headers = req.headers();
        if headers.contains_key("x-client-key") {
            return AdminApiClient::from_request(req, body, param_opts).await.map(AdminAuth::ApiClient);
        }
        if headers.contains_key("x-api-key") && !headers.contains_key(poem::http::header::AUTHORIZATION) {
            return AdminApiKey::from_request(req, body, param_opts).await.map(AdminAuth::ApiKey);
        }
        AdminBearer::from_request(req, body, param_opts).await.map(AdminAuth::Bearer)
    }
}
