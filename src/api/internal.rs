//! /internal/*: routes for oxidp's own services (SPEC §7), authenticated by the shared secret
//! in `X-Internal-Secret`. Without `OXIDP_INTERNAL_SECRET` they answer 404, as if absent.

use poem::Request;
use poem::web::Data;
use poem_openapi::auth::ApiKey;
use poem_openapi::param::{Header, Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi, SecurityScheme};

use super::ApiTags;
use super::permissions::{SnapshotResponse, snapshot_response};
use super::problem::{ApiError, ApiResult, Problem};
use crate::audit::Actor;
use crate::permissions::snapshot;
use crate::permissions::upstream::{self, UpstreamUser};
use crate::state::SharedState;

pub struct InternalApi;

const SECRET_HEADER: &str = "x-internal-secret";

/// The configured secret; an empty one counts as none, so it can never match an empty header.
fn configured_secret(state: &SharedState) -> Option<&str> {
    state.config.internal_secret.as_deref().filter(|secret| !secret.is_empty())
}

fn state_of(req: &Request) -> poem::Result<&SharedState> {
    req.data::<SharedState>()
        .ok_or_else(|| poem::Error::from_string("state missing", poem::http::StatusCode::INTERNAL_SERVER_ERROR))
}

fn reject(error: ApiError) -> poem::Error {
    use poem::IntoResponse;
    poem::Error::from_response(error.into_response())
}

fn routes_off() -> ApiError {
    ApiError::not_found("not found")
}

fn wrong_secret() -> ApiError {
    ApiError::unauthorized("invalid_internal_secret", "the internal secret is missing or wrong")
}

/// Compares digests, so neither the content nor the length of the secret shows in the timing.
fn secret_matches(configured: &str, presented: &str) -> bool {
    crate::crypto::constant_time_eq(&crate::crypto::sha256(configured), &crate::crypto::sha256(presented))
}

async fn internal_secret_checker(req: &Request, key: ApiKey) -> poem::Result<InternalService> {
    let state = state_of(req)?;
    let Some(configured) = configured_secret(state) else { return Err(reject(routes_off())) };
    if secret_matches(configured, &key.key) {
        Ok(InternalService)
    } else {
        tracing::warn!(ip = %crate::web::client_ip(state, req), "internal route called with a wrong secret");
        Err(reject(wrong_secret()))
    }
}

/// A caller that presented the internal secret.
pub struct InternalService;

/// The shared secret of oxidp's internal services (`OXIDP_INTERNAL_SECRET`).
#[derive(SecurityScheme)]
#[oai(
    rename = "internal_secret",
    ty = "api_key",
    key_name = "X-Internal-Secret",
    key_in = "header",
    checker = "internal_secret_checker"
)]
pub struct InternalSecret(pub InternalService);

/// [`InternalSecret`], except that the routes answer 404 before anything else while no secret
/// is configured, and a missing header gets the same problem as a wrong one.
pub struct InternalAuth;

impl<'a> poem_openapi::ApiExtractor<'a> for InternalAuth {
    const TYPES: &'static [poem_openapi::ApiExtractorType] = &[poem_openapi::ApiExtractorType::SecurityScheme];

    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut poem_openapi::registry::Registry) {
        <InternalSecret as poem_openapi::ApiExtractor>::register(registry);
    }

    fn security_schemes() -> Vec<&'static str> {
        <InternalSecret as poem_openapi::ApiExtractor>::security_schemes()
    }

    async fn from_request(
        req: &'a Request,
        body: &mut poem::RequestBody,
        param_opts: poem_openapi::ExtractParamOptions<()>,
    ) -> poem::Result<Self> {
        let state = state_of(req)?;
        if configured_secret(state).is_none() {
            return Err(reject(routes_off()));
        }
        if req.headers().get(SECRET_HEADER).and_then(|value| value.to_str().ok()).is_none() {
            return Err(reject(wrong_secret()));
        }
        InternalSecret::from_request(req, body, param_opts).await.map(|_| InternalAuth)
    }
}

#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct UpsertBySubRequest {
    /// The upstream provider's name (1 to 128 of `A-Z a-z 0-9 _ . : * -`); when absent,
    /// `OXIDP_AUTHENTIK__PROVIDER` (default `authentik`).
    pub provider: Option<String>,
    /// The upstream subject (1 to 255 characters).
    pub sub: String,
    /// Used for a new user (unverified), or to link the subject to the existing user with this
    /// email — never to an administrator (409).
    pub email: String,
    /// The new user's name.
    pub display_name: Option<String>,
}

#[derive(Object)]
pub struct UpsertedUser {
    /// oxidp's id of the user.
    pub id: String,
    /// oxidp's own subject for the user (in its tokens and snapshots), not the upstream one.
    pub sub: String,
    #[oai(nullable)]
    pub email: Option<String>,
    pub email_verified: bool,
    #[oai(nullable)]
    pub name: Option<String>,
    pub role: String,
    pub status: String,
    pub provider: String,
    /// True when this call made the user.
    pub created: bool,
    /// True when this call linked the subject to an existing user with the same email.
    pub linked: bool,
}

#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct EnsureAuthentikUserRequest {
    /// oxidp's subject of a user to mirror: its email, name and status fill the fields left out.
    pub sub: Option<String>,
    /// The Authentik username (default: the email); the user is found by it.
    pub username: Option<String>,
    /// Required unless `sub` is given.
    pub email: Option<String>,
    /// Display name (default: the oxidp user's name, else the username).
    pub name: Option<String>,
    /// Default: true, or the oxidp user's status.
    pub is_active: Option<bool>,
}

#[derive(Object)]
pub struct EnsuredAuthentikUser {
    /// Authentik's primary key of the user.
    pub pk: i64,
    /// Authentik's hashed user id.
    #[oai(nullable)]
    pub uid: Option<String>,
    pub username: String,
    pub name: String,
    pub email: String,
    pub is_active: bool,
    /// True when this call created the user in Authentik.
    pub created: bool,
    /// True when this call changed the existing user.
    pub updated: bool,
}

#[derive(ApiResponse)]
pub enum EnsureAuthentikUserResponse {
    /// The user exists in Authentik as asked.
    #[oai(status = 200)]
    Ok(Json<EnsuredAuthentikUser>),
    /// Authentik refused the request or answered something unexpected.
    #[oai(status = 502, content_type = "application/problem+json")]
    BadGateway(Json<Problem>),
}

fn authentik_problem(error: crate::authentik::AuthentikError) -> ApiResult<EnsureAuthentikUserResponse> {
    use crate::authentik::AuthentikError as E;
    let bad_gateway = |detail: String| {
        tracing::warn!(%detail, "Authentik's admin API failed");
        let problem = Problem::new(poem::http::StatusCode::BAD_GATEWAY, "authentik_error", detail);
        Ok(EnsureAuthentikUserResponse::BadGateway(Json(problem)))
    };
    match error {
        E::NotConfigured => Err(ApiError::not_found("the Authentik admin API is not configured")),
        E::Invalid { field, message } => Err(ApiError::bad_request("invalid_field", Some(field), message)),
        E::UnknownUser => Err(ApiError::not_found("no user has this sub")),
        E::Rejected { status, detail } => bad_gateway(format!("Authentik answered {status}: {detail}")),
        E::BadResponse(detail) => bad_gateway(format!("unexpected answer from Authentik: {detail}")),
        E::Unreachable(detail) => {
            tracing::warn!(%detail, "Authentik cannot be reached");
            Err(ApiError::unavailable())
        }
        E::Unavailable => Err(ApiError::unavailable()),
        E::Internal(message) => Err(ApiError::internal(&message)),
    }
}

#[OpenApi(prefix_path = "/internal", tag = "ApiTags::Internal")]
impl InternalApi {
    /// Upsert a user by upstream subject
    ///
    /// Returns the oxidp user of (provider, sub), making it when there is none: a new user
    /// (email unverified, no password), or the existing user with this email when that user is
    /// not an administrator and has no other identity at the provider (409 otherwise).
    /// Idempotent, and concurrent calls for one subject make one user.
    #[oai(path = "/users/upsert-by-sub", method = "post")]
    async fn upsert_by_sub(
        &self,
        _auth: InternalAuth,
        req: &Request,
        state: Data<&SharedState>,
        body: Json<UpsertBySubRequest>,
    ) -> ApiResult<Json<UpsertedUser>> {
        let Json(body) = body;
        // SPEC §7: the provider defaults to the configured Authentik provider.
        let provider = body.provider.or_else(|| Some(state.config.authentik_provider().to_string()));
        let request = UpstreamUser { provider, sub: body.sub, email: body.email, display_name: body.display_name };
        let by = crate::web::initiator(&state, req, Actor::System);
        let upserted = upstream::upsert(&state, &by, &request).await?;
        let user = upserted.user;
        Ok(Json(UpsertedUser {
            id: user.id,
            sub: user.sub,
            email: user.email,
            email_verified: user.email_verified,
            name: user.name,
            role: user.role,
            status: user.status,
            provider: upserted.provider,
            created: upserted.created,
            linked: upserted.linked,
        }))
    }

    /// A user's permission snapshot
    ///
    /// `{sub}` is oxidp's subject, or with `?provider=NAME` the upstream subject of that
    /// provider. Carries the `ETag` `"v{version}"`; `If-None-Match` with it gives 304 while
    /// nothing changed.
    #[oai(path = "/permissions/:sub/snapshot", method = "get")]
    async fn snapshot(
        &self,
        _auth: InternalAuth,
        state: Data<&SharedState>,
        sub: Path<String>,
        provider: Query<Option<String>>,
        #[oai(name = "If-None-Match")] if_none_match: Header<Option<String>>,
    ) -> ApiResult<SnapshotResponse> {
        let no_user = || ApiError::not_found("no such user");
        let snapshot = match provider.0 {
            Some(provider) => {
                let user = upstream::user_of(&state, &provider, &sub).await?.ok_or_else(no_user)?;
                snapshot::of_user(&state, &user.id).await?
            }
            None => snapshot::of_sub(&state, &sub).await?,
        };
        Ok(snapshot_response(snapshot.ok_or_else(no_user)?, if_none_match.0.as_deref()))
    }

    /// Ensure a user in Authentik
    ///
    /// Creates the user in Authentik through its admin API (`OXIDP_AUTHENTIK__BASE_URL`,
    /// `OXIDP_AUTHENTIK__TOKEN`), or updates the one with this username where name, email or
    /// active flag differ. Idempotent: the same request again changes nothing. 404 while the
    /// admin API is not configured; 502 when Authentik refuses; 503 when it cannot be reached.
    #[oai(path = "/authentik/users/ensure", method = "post")]
    async fn ensure_authentik_user(
        &self,
        _auth: InternalAuth,
        req: &Request,
        state: Data<&SharedState>,
        body: Json<EnsureAuthentikUserRequest>,
    ) -> ApiResult<EnsureAuthentikUserResponse> {
        let Json(body) = body;
        let request = crate::authentik::EnsureRequest {
            sub: body.sub,
            username: body.username,
            email: body.email,
            name: body.name,
            is_active: body.is_active,
        };
        let by = crate::web::initiator(&state, req, Actor::System);
        let ensured = match crate::authentik::ensure(&state, &by, request).await {
            Ok(ensured) => ensured,
            Err(error) => return authentik_problem(error),
        };
        let user = ensured.user;
        Ok(EnsureAuthentikUserResponse::Ok(Json(EnsuredAuthentikUser {
            pk: user.pk,
            uid: user.uid,
            username: user.username,
            name: user.name,
            email: user.email,
            is_active: user.is_active,
            created: ensured.created,
            updated: ensured.updated,
        })))
    }
}
