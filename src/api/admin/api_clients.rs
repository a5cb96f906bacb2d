//! /admin/api-clients: services that call the admin API with `X-Client-Key` + `X-API-Key`. Every change is audited by the core operation it calls.

use poem::Request;
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::types::MaybeUndefined;
use poem_openapi::{ApiResponse, Object, OpenApi};

use crate::api::ApiTags;
use crate::api::admin_auth::AdminAuth;
use crate::api::auth::NoContent;
use crate::api::paging::{page_cursor, page_limit, paginate};
use crate::api::problem::ApiResult;
use crate::apiclients::{self, ApiClientChange, NewApiClient};
use crate::state::SharedState;
use crate::store::ApiClient;

pub struct AdminApiClientsApi;

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

#[OpenApi(prefix_path = "/admin", tag = "ApiTags::Admin")]
impl AdminApiClientsApi {
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
        caller.require_minting(&state)?;
        let Json(body) = body;
        let new = NewApiClient {
            name: body.name,
            expires_at: body.expires_at,
            allowed_ips: body.allowed_ips,
            allowed_origins: body.allowed_origins,
            allowed_paths: body.allowed_paths,
            rate_limit_per_minute: body.rate_limit_per_minute.unwrap_or(600),
        };
        let (client, secret) = apiclients::create(&state, &caller.initiator(&state, req), new).await?;
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
        let caller = auth.caller();
        caller.require_write()?;
        let Json(change) = body;
        let change = ApiClientChange {
            name: change.name,
            status: change.status,
            expires_at: match change.expires_at {
                MaybeUndefined::Undefined => None,
                MaybeUndefined::Null => Some(None),
                MaybeUndefined::Value(at) => Some(Some(at)),
            },
            allowed_ips: change.allowed_ips,
            allowed_origins: change.allowed_origins,
            allowed_paths: change.allowed_paths,
            rate_limit_per_minute: change.rate_limit_per_minute,
        };
        let client = apiclients::update(&state, &caller.initiator(&state, req), &id, change).await?;
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
        Ok(Json(apiclients::existing(&state, &id).await?.into()))
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
        let caller = auth.caller();
        caller.require_write()?;
        apiclients::disable(&state, &caller.initiator(&state, req), &id).await?;
        Ok(NoContent::NoContent)
    }
}
