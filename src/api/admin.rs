//! /admin/*: users, signing keys, API clients and the audit log (SPEC §5). Every mutation is audited.

use poem::Request;
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::types::MaybeUndefined;
use poem_openapi::{ApiResponse, Object, OpenApi};
use serde_json::json;

use super::ApiTags;
use super::account::NoContent;
use super::admin_auth::{AdminAuth, AdminCaller, origin_of};
use super::problem::{ApiError, ApiResult};
use super::views::{UserView, decode_cursor, encode_cursor};
use crate::admin::users::{self as admin_users, AdminError, UserUpdate};
use crate::apiclients::{self, ApiClientError, NewApiClient};
use crate::audit::{self, Event};
use crate::state::SharedState;
use crate::store::{ApiClient, AuditFilter, AuditStore, UserFilter, UserStore};

pub struct AdminApi;

const MAX_PAGE: u32 = 100;

impl From<AdminError> for ApiError {
    fn from(error: AdminError) -> Self {
        match error {
            AdminError::Invalid { field, message } => ApiError::bad_request("invalid_field", Some(field), message),
            AdminError::NotFound => ApiError::not_found("no such user"),
            AdminError::Conflict(message) => ApiError::conflict("conflict", message),
            AdminError::Unavailable => ApiError::unavailable(),
            AdminError::Internal(message) => ApiError::internal(&message),
        }
    }
}

impl From<ApiClientError> for ApiError {
    fn from(error: ApiClientError) -> Self {
        match error {
            ApiClientError::Invalid { field, message } => ApiError::bad_request("invalid_field", Some(field), message),
            ApiClientError::Unavailable => ApiError::unavailable(),
            other => ApiError::internal(&other.to_string()),
        }
    }
}

fn page_limit(limit: Option<u32>) -> ApiResult<i64> {
    let limit = limit.unwrap_or(50);
    if (1..=MAX_PAGE).contains(&limit) {
        Ok(i64::from(limit))
    } else {
        Err(ApiError::bad_request("invalid_field", Some("limit"), format!("limit must be 1 to {MAX_PAGE}")))
    }
}

fn cursor(cursor: Option<String>) -> ApiResult<Option<(i64, String)>> {
    cursor
        .map(|c| {
            decode_cursor(&c).ok_or_else(|| ApiError::bad_request("invalid_field", Some("cursor"), "malformed cursor"))
        })
        .transpose()
}

async fn audit(
    state: &SharedState,
    req: &Request,
    caller: &AdminCaller,
    action: &str,
    target: (&str, &str),
    details: serde_json::Value,
) -> ApiResult<()> {
    let event = Event { actor: caller.audit_actor(), action, target: Some(target), details };
    audit::record(state, &origin_of(state, req), event).await?;
    Ok(())
}

#[derive(Object)]
pub struct UserPage {
    pub items: Vec<UserView>,
    pub next_cursor: Option<String>,
}

#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct AdminUserPatch {
    /// `user`, `moderator` or `admin`.
    pub role: Option<String>,
    /// `active`, `banned` or `deleted`.
    pub status: Option<String>,
    /// Only `true` is meaningful: marks the email verified.
    pub email_verified: Option<bool>,
    pub name: MaybeUndefined<String>,
}

#[derive(Object)]
pub struct ErasedUser {
    pub id: String,
    /// What the audit log now says instead of the user's id.
    pub pseudonym: String,
}

#[derive(Object)]
pub struct KeyView {
    pub kid: String,
    pub alg: String,
    /// `pending`, `active`, `retired` (still published) or `expired`.
    pub status: String,
    pub created_at: i64,
    pub activates_at: i64,
}

#[derive(Object)]
pub struct RotatedKey {
    pub kid: String,
    pub alg: String,
    pub activates_at: i64,
}

#[derive(Object)]
pub struct AuditView {
    pub id: String,
    pub at: i64,
    pub actor_type: String,
    pub actor_id: Option<String>,
    pub action: String,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    pub details: serde_json::Value,
}

#[derive(Object)]
pub struct AuditPage {
    pub items: Vec<AuditView>,
    pub next_cursor: Option<String>,
}

#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct CreateApiClientRequest {
    #[oai(validator(max_length = 100))]
    pub name: String,
    pub expires_at: Option<i64>,
    /// IP addresses or CIDRs the client may call from.
    #[oai(default)]
    pub allowed_ips: Vec<String>,
    /// Values of the `Origin` header the client may send.
    #[oai(default)]
    pub allowed_origins: Vec<String>,
    /// Path prefixes the client may call, e.g. `/api/v1/admin/users`.
    #[oai(default)]
    pub allowed_paths: Vec<String>,
    pub rate_limit_per_minute: Option<i64>,
}

#[derive(Object)]
pub struct ApiClientView {
    pub client_key: String,
    pub name: String,
    pub status: String,
    pub expires_at: Option<i64>,
    pub allowed_ips: Vec<String>,
    pub allowed_origins: Vec<String>,
    pub allowed_paths: Vec<String>,
    pub rate_limit_per_minute: i64,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

impl From<ApiClient> for ApiClientView {
    fn from(c: ApiClient) -> Self {
        ApiClientView {
            client_key: c.id,
            name: c.name,
            status: c.status,
            expires_at: c.expires_at,
            allowed_ips: c.allowed_ips,
            allowed_origins: c.allowed_origins,
            allowed_paths: c.allowed_paths,
            rate_limit_per_minute: c.rate_limit_per_minute,
            created_at: c.created_at,
            last_used_at: c.last_used_at,
        }
    }
}

#[derive(Object)]
pub struct CreatedApiClient {
    /// The secret for `X-API-Key`: shown this once.
    pub api_key: String,
    #[oai(flatten)]
    pub client: ApiClientView,
}

#[derive(ApiResponse)]
pub enum ApiClientCreated {
    #[oai(status = 201)]
    Created(Json<CreatedApiClient>),
}

#[OpenApi(prefix_path = "/admin", tag = "ApiTags::Admin")]
impl AdminApi {
    /// List users
    ///
    /// Filter by email (substring), status and role; oldest first, paginated with a cursor.
    #[oai(path = "/users", method = "get")]
    #[allow(clippy::too_many_arguments)]
    async fn list_users(
        &self,
        state: Data<&SharedState>,
        _auth: AdminAuth,
        email: Query<Option<String>>,
        status: Query<Option<String>>,
        role: Query<Option<String>>,
        limit: Query<Option<u32>>,
        cursor: Query<Option<String>>,
    ) -> ApiResult<Json<UserPage>> {
        let limit = page_limit(limit.0)?;
        let filter = UserFilter {
            email: email.0,
            status: status.0,
            role: role.0,
            after: self::cursor(cursor.0)?,
            limit: limit + 1,
        };
        let mut users = state.db.list_users(&filter).await?;
        let next_cursor = if users.len() as i64 > limit {
            users.truncate(limit as usize);
            users.last().map(|u| encode_cursor(u.created_at, &u.id))
        } else {
            None
        };
        Ok(Json(UserPage { items: users.into_iter().map(Into::into).collect(), next_cursor }))
    }

    /// Get a user
    #[oai(path = "/users/:id", method = "get")]
    async fn get_user(
        &self,
        state: Data<&SharedState>,
        _auth: AdminAuth,
        id: Path<String>,
    ) -> ApiResult<Json<UserView>> {
        let user = state.db.user_by_id(&id).await?.ok_or_else(|| ApiError::not_found("no such user"))?;
        Ok(Json(user.into()))
    }

    /// Update a user
    ///
    /// Role, status, name, email verification. A status other than `active` ends the user's
    /// sessions, refresh tokens and API keys at once.
    #[oai(path = "/users/:id", method = "patch")]
    async fn update_user(
        &self,
        req: &Request,
        state: Data<&SharedState>,
        auth: AdminAuth,
        id: Path<String>,
        body: Json<AdminUserPatch>,
    ) -> ApiResult<Json<UserView>> {
        let caller = auth.caller();
        caller.require_write()?;
        let Json(body) = body;
        let name = match body.name {
            MaybeUndefined::Undefined => None,
            MaybeUndefined::Null => Some(None),
            MaybeUndefined::Value(name) => Some(Some(name)),
        };
        let details = json!({ "role": body.role, "status": body.status, "email_verified": body.email_verified });
        let change = UserUpdate { role: body.role, status: body.status, email_verified: body.email_verified, name };
        let user = admin_users::update(&state, &id, change).await?;
        audit(&state, req, &caller, "user.update", ("user", &user.id), details).await?;
        Ok(Json(user.into()))
    }

    /// Soft-delete a user
    ///
    /// The account stops working and can be restored; nothing is erased.
    #[oai(path = "/users/:id", method = "delete")]
    async fn delete_user(
        &self,
        req: &Request,
        state: Data<&SharedState>,
        auth: AdminAuth,
        id: Path<String>,
    ) -> ApiResult<Json<UserView>> {
        let caller = auth.caller();
        caller.require_write()?;
        let user = admin_users::soft_delete(&state, &id).await?;
        audit(&state, req, &caller, "user.delete", ("user", &user.id), json!({})).await?;
        Ok(Json(user.into()))
    }

    /// Restore a soft-deleted user
    #[oai(path = "/users/:id/restore", method = "post")]
    async fn restore_user(
        &self,
        req: &Request,
        state: Data<&SharedState>,
        auth: AdminAuth,
        id: Path<String>,
    ) -> ApiResult<Json<UserView>> {
        let caller = auth.caller();
        caller.require_write()?;
        let user = admin_users::restore(&state, &id).await?;
        audit(&state, req, &caller, "user.restore", ("user", &user.id), json!({})).await?;
        Ok(Json(user.into()))
    }

    /// Ban a user
    ///
    /// Ends the user's sessions, refresh tokens (their access tokens introspect inactive) and API keys at once.
    #[oai(path = "/users/:id/ban", method = "post")]
    async fn ban_user(
        &self,
        req: &Request,
        state: Data<&SharedState>,
        auth: AdminAuth,
        id: Path<String>,
    ) -> ApiResult<Json<UserView>> {
        let caller = auth.caller();
        caller.require_write()?;
        let user = admin_users::ban(&state, &id).await?;
        audit(&state, req, &caller, "user.ban", ("user", &user.id), json!({})).await?;
        Ok(Json(user.into()))
    }

    /// Unban a user
    #[oai(path = "/users/:id/unban", method = "post")]
    async fn unban_user(
        &self,
        req: &Request,
        state: Data<&SharedState>,
        auth: AdminAuth,
        id: Path<String>,
    ) -> ApiResult<Json<UserView>> {
        let caller = auth.caller();
        caller.require_write()?;
        let user = admin_users::unban(&state, &id).await?;
        audit(&state, req, &caller, "user.unban", ("user", &user.id), json!({})).await?;
        Ok(Json(user.into()))
    }

    /// Erase a user
    ///
    /// Deletes the user's personal data for good. Audit rows stay, with a pseudonym instead of
    /// the user's id and without IP addresses or user agents.
    #[oai(path = "/users/:id/erase", method = "post")]
    async fn erase_user(
        &self,
        req: &Request,
        state: Data<&SharedState>,
        auth: AdminAuth,
        id: Path<String>,
    ) -> ApiResult<Json<ErasedUser>> {
        let caller = auth.caller();
        caller.require_write()?;
        let pseudonym = admin_users::erase(&state, &id).await?;
        audit(&state, req, &caller, "user.erase", ("user", &pseudonym), json!({})).await?;
        Ok(Json(ErasedUser { id: id.0, pseudonym }))
    }

    /// List signing keys
    #[oai(path = "/keys", method = "get")]
    async fn list_keys(&self, state: Data<&SharedState>, _auth: AdminAuth) -> ApiResult<Json<Vec<KeyView>>> {
        let keys = state.keys.list().await.map_err(|e| ApiError::internal(&e.to_string()))?;
        Ok(Json(
            keys.into_iter()
                .map(|k| KeyView {
                    kid: k.kid,
                    alg: k.alg,
                    status: k.status.into(),
                    created_at: k.created_at,
                    activates_at: k.activates_at,
                })
                .collect(),
        ))
    }

    /// Rotate the signing key
    ///
    /// The new key is published in the JWKS at once and signs only after the JWKS cache lifetime
    /// plus the instances' reload interval.
    #[oai(path = "/keys/rotate", method = "post")]
    async fn rotate_key(
        &self,
        req: &Request,
        state: Data<&SharedState>,
        auth: AdminAuth,
    ) -> ApiResult<Json<RotatedKey>> {
        let caller = auth.caller();
        caller.require_write()?;
        let key = state.keys.rotate().await.map_err(|e| ApiError::internal(&e.to_string()))?;
        audit(
            &state,
            req,
            &caller,
            "key.rotate",
            ("signing_key", &key.kid),
            json!({ "activates_at": key.activates_at }),
        )
        .await?;
        Ok(Json(RotatedKey { kid: key.kid, alg: key.alg, activates_at: key.activates_at }))
    }

    /// Query the audit log
    ///
    /// Newest first; filter by actor, action, target and time range (unix seconds, inclusive).
    #[oai(path = "/audit", method = "get")]
    #[allow(clippy::too_many_arguments)]
    async fn audit_log(
        &self,
        state: Data<&SharedState>,
        _auth: AdminAuth,
        actor: Query<Option<String>>,
        action: Query<Option<String>>,
        target: Query<Option<String>>,
        from: Query<Option<i64>>,
        until: Query<Option<i64>>,
        limit: Query<Option<u32>>,
        cursor: Query<Option<String>>,
    ) -> ApiResult<Json<AuditPage>> {
        let limit = page_limit(limit.0)?;
        let filter = AuditFilter {
            actor_id: actor.0,
            action: action.0,
            target_id: target.0,
            from: from.0,
            until: until.0,
            before: self::cursor(cursor.0)?,
            limit: limit + 1,
        };
        let mut rows = state.db.query_audit(&filter).await?;
        let next_cursor = if rows.len() as i64 > limit {
            rows.truncate(limit as usize);
            rows.last().map(|r| encode_cursor(r.at, &r.id))
        } else {
            None
        };
        let items = rows
            .into_iter()
            .map(|r| AuditView {
                details: serde_json::from_str(&r.details).unwrap_or_default(),
                id: r.id,
                at: r.at,
                actor_type: r.actor_type,
                actor_id: r.actor_id,
                action: r.action,
                target_type: r.target_type,
                target_id: r.target_id,
                ip: r.ip,
                user_agent: r.user_agent,
                request_id: r.request_id,
            })
            .collect();
        Ok(Json(AuditPage { items, next_cursor }))
    }

    /// Create an API client
    ///
    /// Returns the secret once; oxidp keeps only a keyed hash of it.
    #[oai(path = "/api-clients", method = "post")]
    async fn create_api_client(
        &self,
        req: &Request,
        state: Data<&SharedState>,
        auth: AdminAuth,
        body: Json<CreateApiClientRequest>,
    ) -> ApiResult<ApiClientCreated> {
        let caller = auth.caller();
        caller.require_write()?;
        let Json(body) = body;
        let new = NewApiClient {
            name: body.name,
            expires_at: body.expires_at,
            allowed_ips: body.allowed_ips,
            allowed_origins: body.allowed_origins,
            allowed_paths: body.allowed_paths,
            rate_limit_per_minute: body.rate_limit_per_minute.unwrap_or(600),
        };
        let (client, secret) = apiclients::create(&state, new).await?;
        audit(&state, req, &caller, "api_client.create", ("api_client", &client.id), json!({ "name": client.name }))
            .await?;
        Ok(ApiClientCreated::Created(Json(CreatedApiClient { api_key: secret, client: client.into() })))
    }

    /// Get an API client
    #[oai(path = "/api-clients/:id", method = "get")]
    async fn get_api_client(
        &self,
        state: Data<&SharedState>,
        _auth: AdminAuth,
        id: Path<String>,
    ) -> ApiResult<Json<ApiClientView>> {
        use crate::store::ApiClientStore;
        let client = state.db.api_client_by_id(&id).await?.ok_or_else(|| ApiError::not_found("no such API client"))?;
        Ok(Json(client.into()))
    }

    /// Disable an API client
    #[oai(path = "/api-clients/:id", method = "delete")]
    async fn disable_api_client(
        &self,
        req: &Request,
        state: Data<&SharedState>,
        auth: AdminAuth,
        id: Path<String>,
    ) -> ApiResult<NoContent> {
        use crate::store::ApiClientStore;
        let caller = auth.caller();
        caller.require_write()?;
        if !state.db.set_api_client_status(&id, "disabled", state.now()).await? {
            return Err(ApiError::not_found("no such API client"));
        }
        audit(&state, req, &caller, "api_client.disable", ("api_client", &id), json!({})).await?;
        Ok(NoContent::NoContent)
    }
}
