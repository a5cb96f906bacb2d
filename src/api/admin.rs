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
use super::admin_auth::AdminAuth;
use super::paging::{page_cursor, page_limit, paginate};
use super::problem::{ApiError, ApiResult};
use super::views::UserView;
use crate::admin::clients::{self as admin_clients, ClientSpec};
use crate::admin::users::{self as admin_users, AdminError, UserUpdate};
use crate::apiclients::{self, ApiClientError, NewApiClient};
use crate::state::SharedState;
use crate::store::{ApiClient, AuditFilter, AuditStore, UserFilter, UserStore};

pub struct AdminApi;

impl From<AdminError> for ApiError {
    fn from(error: AdminError) -> Self {
        match error {
            AdminError::Invalid { field, message } => ApiError::bad_request("invalid_field", Some(field), message),
            AdminError::NotFound => ApiError::not_found("no such user"),
            AdminError::Conflict(message) => ApiError::conflict("conflict", message),
            AdminError::Guarded(guard) => ApiError::conflict(guard.code(), guard.detail()),
            AdminError::Unavailable => ApiError::unavailable(),
            AdminError::Internal(message) => ApiError::internal(&message),
        }
    }
}
#[derive(Object)]
pub struct UserPage {
    pub items: Vec<UserView>,
    #[oai(nullable)]
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
    #[oai(nullable)]
    pub actor_id: Option<String>,
    pub action: String,
    #[oai(nullable)]
    pub target_type: Option<String>,
    #[oai(nullable)]
    pub target_id: Option<String>,
    #[oai(nullable)]
    pub ip: Option<String>,
    #[oai(nullable)]
    pub user_agent: Option<String>,
    #[oai(nullable)]
    pub request_id: Option<String>,
    pub details: serde_json::Value,
}

#[derive(Object)]
pub struct AuditPage {
    pub items: Vec<AuditView>,
    #[oai(nullable)]
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
    #[oai(nullable)]
    pub expires_at: Option<i64>,
    pub allowed_ips: Vec<String>,
    pub allowed_origins: Vec<String>,
    pub allowed_paths: Vec<String>,
    pub rate_limit_per_minute: i64,
    pub created_at: i64,
    #[oai(nullable)]
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

#[derive(Object)]
pub struct ApiClientPage {
    pub items: Vec<ApiClientView>,
    #[oai(nullable)]
    pub next_cursor: Option<String>,
}

#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct ApiClientPatch {
    #[oai(validator(max_length = 100))]
    pub name: Option<String>,
    /// `active` or `disabled`.
    pub status: Option<String>,
    /// Unix time; `null` removes the expiry.
    pub expires_at: MaybeUndefined<i64>,
    pub allowed_ips: Option<Vec<String>>,
    pub allowed_origins: Option<Vec<String>>,
    pub allowed_paths: Option<Vec<String>>,
    pub rate_limit_per_minute: Option<i64>,
}

#[derive(ApiResponse)]
pub enum ApiClientCreated {
    #[oai(status = 201)]
    Created(Json<CreatedApiClient>),
}

/// An OAuth client as registered.
#[derive(Object)]
pub struct ClientView {
    pub client_id: String,
    pub name: String,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub grant_types: Vec<String>,
    pub scopes: Vec<String>,
    pub audiences: Vec<String>,
    pub resources: Vec<String>,
    pub public: bool,
    pub first_party: bool,
    pub resource_server: bool,
    pub pkce_exempt: bool,
    pub api_access: bool,
    /// The JWS algorithm of this client's ID tokens.
    pub id_token_signed_response_alg: String,
    pub created_at: i64,
}

impl From<crate::store::Client> for ClientView {
    fn from(c: crate::store::Client) -> Self {
        ClientView {
            client_id: c.id,
            name: c.name,
            redirect_uris: c.redirect_uris,
            post_logout_redirect_uris: c.post_logout_redirect_uris,
            grant_types: c.grant_types,
            scopes: c.scopes,
            audiences: c.audiences,
            resources: c.resources,
            public: c.is_public,
            first_party: c.first_party,
            resource_server: c.resource_server,
            pkce_exempt: c.pkce_exempt,
            api_access: c.api_access,
            id_token_signed_response_alg: c.id_token_alg.unwrap_or_else(|| crate::keys::DEFAULT_ALG.to_string()),
            created_at: c.created_at,
        }
    }
}

#[derive(Object)]
pub struct ClientPage {
    pub items: Vec<ClientView>,
    #[oai(nullable)]
    pub next_cursor: Option<String>,
}

/// A client to register. Defaults as for `oxidp client create`.
#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct CreateClientRequest {
    #[oai(validator(max_length = 100))]
    pub name: String,
    #[oai(default)]
    pub redirect_uris: Vec<String>,
    #[oai(default)]
    pub post_logout_redirect_uris: Vec<String>,
    #[oai(default)]
    pub public: bool,
    #[oai(default)]
    pub first_party: bool,
    /// Default `["authorization_code", "refresh_token"]`.
    pub grant_types: Option<Vec<String>>,
    /// Default `["openid", "profile", "email", "offline_access"]`.
    pub scopes: Option<Vec<String>>,
    #[oai(default)]
    pub audiences: Vec<String>,
    #[oai(default)]
    pub resources: Vec<String>,
    #[oai(default)]
    pub resource_server: bool,
    #[oai(default)]
    pub pkce_exempt: bool,
    /// Allows `account`/`admin` scopes for a client that is not first-party.
    #[oai(default)]
    pub api_access: bool,
    /// `RS256` (default), `ES256` or `EdDSA`: what the discovery document offers.
    pub id_token_signed_response_alg: Option<String>,
}

/// Fields to change; absent fields stay. Whether a client is public cannot change.
#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct ClientPatch {
    #[oai(validator(max_length = 100))]
    pub name: Option<String>,
    pub redirect_uris: Option<Vec<String>>,
    pub post_logout_redirect_uris: Option<Vec<String>>,
    pub first_party: Option<bool>,
    pub grant_types: Option<Vec<String>>,
    pub scopes: Option<Vec<String>>,
    pub audiences: Option<Vec<String>>,
    pub resources: Option<Vec<String>>,
    pub resource_server: Option<bool>,
    pub pkce_exempt: Option<bool>,
    pub api_access: Option<bool>,
    pub id_token_signed_response_alg: Option<String>,
}

#[derive(Object)]
pub struct CreatedClient {
    /// For confidential clients: the secret, shown this once.
    #[oai(nullable)]
    pub client_secret: Option<String>,
    #[oai(flatten)]
    pub client: ClientView,
}

#[derive(Object)]
pub struct RotatedSecret {
    pub client_id: String,
    /// The new secret, shown this once; the old one no longer works.
    pub client_secret: String,
}

#[derive(ApiResponse)]
pub enum ClientCreated {
    #[oai(status = 201)]
    Created(Json<CreatedClient>),
}

impl From<admin_clients::RegisterError> for ApiError {
    fn from(error: admin_clients::RegisterError) -> Self {
        match error {
            admin_clients::RegisterError::Invalid(e) => {
                ApiError::bad_request("invalid_field", Some(e.field), e.message)
            }
            admin_clients::RegisterError::Store(e) => e.into(),
        }
    }
}

async fn existing_client(state: &SharedState, id: &str) -> ApiResult<crate::store::Client> {
    use crate::store::ClientStore;
    state.db.client_by_id(id).await?.ok_or_else(|| ApiError::not_found("no such client"))
}

/// The built-in client backs the JSON API and Swagger UI: it is not edited through the API.
fn refuse_builtin(id: &str) -> ApiResult<()> {
    if id == crate::oauth::first_party::API_CLIENT_ID {
        Err(ApiError::forbidden("builtin_client", "the built-in oxidp-api client cannot be changed"))
    } else {
        Ok(())
    }
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
            after: page_cursor(cursor.0)?,
            limit: limit + 1,
        };
        let (users, next_cursor) = paginate(state.db.list_users(&filter).await?, limit, |u| (u.created_at, &u.id));
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
    ///
    /// Refused with 409 when an administrator would ban, delete, erase or demote themselves
    /// (`own_account`) or when no active administrator would be left (`last_admin`); nothing
    /// changes then.
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
        let user = admin_users::update(&state, caller.user_id(), &id, change).await?;
        caller.audit(&state, req, "user.update", ("user", &user.id), details).await?;
        Ok(Json(user.into()))
    }

    /// Soft-delete a user
    ///
    /// The account stops working and can be restored; nothing is erased.
    ///
    /// Refused with 409 when an administrator would ban, delete, erase or demote themselves
    /// (`own_account`) or when no active administrator would be left (`last_admin`); nothing
    /// changes then.
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
        let user = admin_users::soft_delete(&state, caller.user_id(), &id).await?;
        caller.audit(&state, req, "user.delete", ("user", &user.id), json!({})).await?;
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
        let user = admin_users::restore(&state, caller.user_id(), &id).await?;
        caller.audit(&state, req, "user.restore", ("user", &user.id), json!({})).await?;
        Ok(Json(user.into()))
    }

    /// Ban a user
    ///
    /// Ends the user's sessions, refresh tokens (their access tokens introspect inactive) and API keys at once.
    ///
    /// Refused with 409 when an administrator would ban, delete, erase or demote themselves
    /// (`own_account`) or when no active administrator would be left (`last_admin`); nothing
    /// changes then.
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
        let user = admin_users::ban(&state, caller.user_id(), &id).await?;
        caller.audit(&state, req, "user.ban", ("user", &user.id), json!({})).await?;
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
        let user = admin_users::unban(&state, caller.user_id(), &id).await?;
        caller.audit(&state, req, "user.unban", ("user", &user.id), json!({})).await?;
        Ok(Json(user.into()))
    }

    /// Erase a user
    ///
    /// Deletes the user's personal data for good. Audit rows stay, with a pseudonym instead of
    /// the user's id and without IP addresses or user agents.
    ///
    /// Refused with 409 when an administrator would ban, delete, erase or demote themselves
    /// (`own_account`) or when no active administrator would be left (`last_admin`); nothing
    /// changes then.
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
        let pseudonym = admin_users::erase(&state, caller.user_id(), &id).await?;
        caller.audit(&state, req, "user.erase", ("user", &pseudonym), json!({})).await?;
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
    /// plus the instances' reload interval. Each algorithm (`alg`, default RS256) rotates on its own.
    #[oai(path = "/keys/rotate", method = "post")]
    async fn rotate_key(
        &self,
        req: &Request,
        state: Data<&SharedState>,
        auth: AdminAuth,
        alg: Query<Option<String>>,
    ) -> ApiResult<Json<RotatedKey>> {
        let caller = auth.caller();
        caller.require_write()?;
        let alg = alg.0.unwrap_or_else(|| crate::keys::DEFAULT_ALG.to_string());
        if !state.config.signing_algs.contains(&alg) {
            let offered = state.config.signing_algs.join(", ");
            return Err(ApiError::bad_request("invalid_field", Some("alg"), format!("one of {offered}")));
        }
        let key = state.keys.rotate_alg(&alg).await.map_err(|e| ApiError::internal(&e.to_string()))?;
        caller
            .audit(&state, req, "key.rotate", ("signing_key", &key.kid), json!({ "activates_at": key.activates_at }))
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
            before: page_cursor(cursor.0)?,
            limit: limit + 1,
        };
        let (rows, next_cursor) = paginate(state.db.query_audit(&filter).await?, limit, |r| (r.at, &r.id));
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
        caller
            .audit(&state, req, "api_client.create", ("api_client", &client.id), json!({ "name": client.name }))
            .await?;
        Ok(ApiClientCreated::Created(Json(CreatedApiClient { api_key: secret, client: client.into() })))
    }

    /// List API clients
    #[oai(path = "/api-clients", method = "get")]
    async fn list_api_clients(
        &self,
        state: Data<&SharedState>,
        _auth: AdminAuth,
        limit: Query<Option<u32>>,
        cursor: Query<Option<String>>,
    ) -> ApiResult<Json<ApiClientPage>> {
        use crate::store::ApiClientStore;
        let limit = page_limit(limit.0)?;
        let (clients, next_cursor) =
            paginate(state.db.list_api_clients(page_cursor(cursor.0)?, limit + 1).await?, limit, |c| {
                (c.created_at, &c.id)
            });
        Ok(Json(ApiClientPage { items: clients.into_iter().map(Into::into).collect(), next_cursor }))
    }

    /// Update an API client
    ///
    /// Name, status (`active`/`disabled`), expiry, allowlists and rate limit; absent fields stay.
    #[oai(path = "/api-clients/:id", method = "patch")]
    async fn update_api_client(
        &self,
        req: &Request,
        state: Data<&SharedState>,
        auth: AdminAuth,
        id: Path<String>,
        body: Json<ApiClientPatch>,
    ) -> ApiResult<Json<ApiClientView>> {
        use crate::store::ApiClientStore;
        let caller = auth.caller();
        caller.require_write()?;
        let current = state.db.api_client_by_id(&id).await?.ok_or_else(|| ApiError::not_found("no such API client"))?;
        let Json(change) = body;
        let new = NewApiClient {
            name: change.name.unwrap_or_else(|| current.name.clone()),
            expires_at: match change.expires_at {
                MaybeUndefined::Undefined => current.expires_at,
                MaybeUndefined::Null => None,
                MaybeUndefined::Value(at) => Some(at),
            },
            allowed_ips: change.allowed_ips.unwrap_or_else(|| current.allowed_ips.clone()),
            allowed_origins: change.allowed_origins.unwrap_or_else(|| current.allowed_origins.clone()),
            allowed_paths: change.allowed_paths.unwrap_or_else(|| current.allowed_paths.clone()),
            rate_limit_per_minute: change.rate_limit_per_minute.unwrap_or(current.rate_limit_per_minute),
        };
        let client = apiclients::update(&state, current, new, change.status).await?;
        caller
            .audit(&state, req, "api_client.update", ("api_client", &client.id), json!({ "status": client.status }))
            .await?;
        Ok(Json(client.into()))
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
        caller.audit(&state, req, "api_client.disable", ("api_client", &id), json!({})).await?;
        Ok(NoContent::NoContent)
    }

    /// List OAuth clients
    #[oai(path = "/clients", method = "get")]
    async fn list_clients(
        &self,
        state: Data<&SharedState>,
        _auth: AdminAuth,
        limit: Query<Option<u32>>,
        cursor: Query<Option<String>>,
    ) -> ApiResult<Json<ClientPage>> {
        use crate::store::ClientStore;
        let limit = page_limit(limit.0)?;
        let (clients, next_cursor) =
            paginate(state.db.list_clients(page_cursor(cursor.0)?, limit + 1).await?, limit, |c| (c.created_at, &c.id));
        Ok(Json(ClientPage { items: clients.into_iter().map(Into::into).collect(), next_cursor }))
    }

    /// Register an OAuth client
    ///
    /// Validated like `oxidp client create`; a confidential client's secret is in the answer once.
    #[oai(path = "/clients", method = "post")]
    async fn create_client(
        &self,
        req: &Request,
        state: Data<&SharedState>,
        auth: AdminAuth,
        body: Json<CreateClientRequest>,
    ) -> ApiResult<ClientCreated> {
        let caller = auth.caller();
        caller.require_write()?;
        let Json(body) = body;
        let spec = ClientSpec {
            name: body.name,
            redirect_uris: body.redirect_uris,
            post_logout_redirect_uris: body.post_logout_redirect_uris,
            public: body.public,
            first_party: body.first_party,
            grant_types: body.grant_types.unwrap_or_else(|| vec!["authorization_code".into(), "refresh_token".into()]),
            scopes: body
                .scopes
                .unwrap_or_else(|| ["openid", "profile", "email", "offline_access"].map(String::from).to_vec()),
            audiences: body.audiences,
            resources: body.resources,
            resource_server: body.resource_server,
            pkce_exempt: body.pkce_exempt,
            api_access: body.api_access,
            id_token_alg: body.id_token_signed_response_alg,
        };
        let (client, secret) = admin_clients::register(&state, spec).await?;
        caller.audit(&state, req, "client.create", ("client", &client.id), admin_clients::describe(&client)).await?;
        Ok(ClientCreated::Created(Json(CreatedClient { client_secret: secret, client: client.into() })))
    }

    /// Get an OAuth client
    #[oai(path = "/clients/:id", method = "get")]
    async fn get_client(
        &self,
        state: Data<&SharedState>,
        _auth: AdminAuth,
        id: Path<String>,
    ) -> ApiResult<Json<ClientView>> {
        Ok(Json(existing_client(&state, &id).await?.into()))
    }

    /// Update an OAuth client
    #[oai(path = "/clients/:id", method = "patch")]
    async fn update_client(
        &self,
        req: &Request,
        state: Data<&SharedState>,
        auth: AdminAuth,
        id: Path<String>,
        body: Json<ClientPatch>,
    ) -> ApiResult<Json<ClientView>> {
        use crate::store::{ClientStore, NewClient};
        let caller = auth.caller();
        caller.require_write()?;
        refuse_builtin(&id)?;
        let current = existing_client(&state, &id).await?;
        let Json(change) = body;
        let mut spec = ClientSpec::of(&current);
        spec.name = change.name.unwrap_or(spec.name);
        spec.redirect_uris = change.redirect_uris.unwrap_or(spec.redirect_uris);
        spec.post_logout_redirect_uris = change.post_logout_redirect_uris.unwrap_or(spec.post_logout_redirect_uris);
        spec.first_party = change.first_party.unwrap_or(spec.first_party);
        spec.grant_types = change.grant_types.unwrap_or(spec.grant_types);
        spec.scopes = change.scopes.unwrap_or(spec.scopes);
        spec.audiences = change.audiences.unwrap_or(spec.audiences);
        spec.resources = change.resources.unwrap_or(spec.resources);
        spec.resource_server = change.resource_server.unwrap_or(spec.resource_server);
        spec.pkce_exempt = change.pkce_exempt.unwrap_or(spec.pkce_exempt);
        spec.api_access = change.api_access.unwrap_or(spec.api_access);
        spec.id_token_alg = change.id_token_signed_response_alg.or(spec.id_token_alg);
        spec.validate(&state.config.signing_algs)
            .map_err(|e| ApiError::bad_request("invalid_field", Some(e.field), e.message))?;
        let updated = NewClient {
            id: current.id.clone(),
            name: spec.name.trim().to_string(),
            secret_hash: None,
            redirect_uris: spec.redirect_uris,
            post_logout_redirect_uris: spec.post_logout_redirect_uris,
            grant_types: spec.grant_types,
            scopes: spec.scopes,
            audiences: spec.audiences,
            resources: spec.resources,
            is_public: current.is_public,
            first_party: spec.first_party,
            resource_server: spec.resource_server,
            pkce_exempt: spec.pkce_exempt,
            api_access: spec.api_access,
            id_token_alg: spec.id_token_alg,
        };
        state.db.update_client(&updated, state.now()).await?;
        crate::oauth::clients::changed(&state).await?;
        let client = existing_client(&state, &id).await?;
        caller.audit(&state, req, "client.update", ("client", &client.id), admin_clients::describe(&client)).await?;
        Ok(Json(client.into()))
    }

    /// Delete an OAuth client
    ///
    /// Its consents go with it; tokens it holds stop validating at the next introspection.
    #[oai(path = "/clients/:id", method = "delete")]
    async fn delete_client(
        &self,
        req: &Request,
        state: Data<&SharedState>,
        auth: AdminAuth,
        id: Path<String>,
    ) -> ApiResult<NoContent> {
        use crate::store::ClientStore;
        let caller = auth.caller();
        caller.require_write()?;
        refuse_builtin(&id)?;
        if !state.db.delete_client(&id).await? {
            return Err(ApiError::not_found("no such client"));
        }
        crate::oauth::clients::changed(&state).await?;
        caller.audit(&state, req, "client.delete", ("client", &id), json!({})).await?;
        Ok(NoContent::NoContent)
    }

    /// Rotate a client's secret
    ///
    /// The new secret is in the answer once; the old one stops working at once.
    #[oai(path = "/clients/:id/rotate-secret", method = "post")]
    async fn rotate_client_secret(
        &self,
        req: &Request,
        state: Data<&SharedState>,
        auth: AdminAuth,
        id: Path<String>,
    ) -> ApiResult<Json<RotatedSecret>> {
        let caller = auth.caller();
        caller.require_write()?;
        let client = existing_client(&state, &id).await?;
        let secret = admin_clients::rotate_secret(&state, &client).await?;
        caller.audit(&state, req, "client.rotate_secret", ("client", &client.id), json!({})).await?;
        Ok(Json(RotatedSecret { client_id: client.id, client_secret: secret }))
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
