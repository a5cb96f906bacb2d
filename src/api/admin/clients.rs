//! /admin/clients: OAuth clients, registered and changed through `crate::admin::clients`. Every change is audited by the core operation it calls.

use poem::Request;
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};

use crate::admin::clients::{self as admin_clients, ClientChange, ClientSpec};
use crate::api::ApiTags;
use crate::api::admin_auth::AdminAuth;
use crate::api::auth::NoContent;
use crate::api::paging::{page_cursor, page_limit, paginate};
use crate::api::problem::ApiResult;
use crate::state::SharedState;

pub struct AdminClientsApi;

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
    /// Authorization requests must be pushed to `/par` first (RFC 9126).
    pub require_pushed_authorization_requests: bool,
    /// Every token request must carry a DPoP proof (RFC 9449 §5.2).
    pub dpop_bound_access_tokens: bool,
    pub created_at: i64,
    /// How a client that registered itself came: `dynamic_registration` (RFC 7591) or
    /// `client_id_metadata_document`; null for a client made by an administrator.
    #[oai(nullable)]
    pub registered_via: Option<String>,
    /// A disabled client is refused everywhere and its tokens stop validating.
    pub disabled: bool,
    /// When it was disabled.
    #[oai(nullable)]
    pub disabled_at: Option<i64>,
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
            require_pushed_authorization_requests: c.require_par,
            dpop_bound_access_tokens: c.dpop_bound_access_tokens,
            created_at: c.created_at,
            registered_via: c.registered_via,
            disabled: c.disabled_at.is_some(),
            disabled_at: c.disabled_at,
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
    /// Authorization requests must be pushed to `/par` first (RFC 9126).
    #[oai(default)]
    pub require_pushed_authorization_requests: bool,
    /// Every token request must carry a DPoP proof (RFC 9449 §5.2).
    #[oai(default)]
    pub dpop_bound_access_tokens: bool,
    /// `private_key_jwt` or `client_secret_jwt` (RFC 7523); absent: the secret is sent as is.
    pub token_endpoint_auth_method: Option<String>,
    /// The client's public keys, a JWK set (`private_key_jwt`).
    pub jwks: Option<serde_json::Value>,
    /// Where the client publishes its JWK set (`private_key_jwt`).
    pub jwks_uri: Option<String>,
    /// The one algorithm the client signs its assertions with.
    pub token_endpoint_auth_signing_alg: Option<String>,
    /// The one algorithm the client signs its request objects (RFC 9101) with.
    pub request_object_signing_alg: Option<String>,
    /// `public` (default) or `pairwise` subject identifiers.
    pub subject_type: Option<String>,
    /// A JSON list of the client's redirect URIs whose host is its pairwise sector.
    pub sector_identifier_uri: Option<String>,
    /// Where logout tokens are POSTed when a session the client took part in ends.
    pub backchannel_logout_uri: Option<String>,
    /// Logout tokens must carry `sid`.
    #[oai(default)]
    pub backchannel_logout_session_required: bool,
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
    pub require_pushed_authorization_requests: Option<bool>,
    pub dpop_bound_access_tokens: Option<bool>,
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

#[OpenApi(prefix_path = "/admin", tag = "ApiTags::Admin")]
impl AdminClientsApi {
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
        caller.require_minting(&state)?;
        let Json(body) = body;
        let pairwise = crate::admin::client_pairwise::pairwise_choice(
            body.subject_type.as_deref(),
            body.sector_identifier_uri.clone(),
        )
        .map_err(|e| crate::api::problem::ApiError::bad_request("invalid_field", Some(e.field), e.message))?;
        let spec = ClientSpec {
            pairwise,
            name: body.name,
            redirect_uris: body.redirect_uris,
            post_logout_redirect_uris: body.post_logout_redirect_uris,
            public: body.public,
            first_party: body.first_party,
            grant_types: body.grant_types.unwrap_or_else(admin_clients::default_grant_types),
            scopes: body.scopes.unwrap_or_else(admin_clients::default_scopes),
            audiences: body.audiences,
            resources: body.resources,
            resource_server: body.resource_server,
            pkce_exempt: body.pkce_exempt,
            api_access: body.api_access,
            id_token_alg: body.id_token_signed_response_alg,
            require_par: body.require_pushed_authorization_requests,
            dpop_bound_access_tokens: body.dpop_bound_access_tokens,
            backchannel_logout: body
                .backchannel_logout_uri
                .clone()
                .map(|uri| (uri, body.backchannel_logout_session_required)),
            registered_via: None,
            jwt_auth: match body.token_endpoint_auth_method {
                None if body.jwks.is_none() && body.jwks_uri.is_none() && body.request_object_signing_alg.is_none() => {
                    None
                }
                method => Some(crate::admin::client_jwt::JwtAuthSpec {
                    method: method.unwrap_or_default(),
                    jwks: body.jwks.map(|jwks| jwks.to_string()),
                    jwks_uri: body.jwks_uri,
                    signing_alg: body.token_endpoint_auth_signing_alg,
                    request_object_alg: body.request_object_signing_alg,
                }),
            },
        };
        let (client, secret) = admin_clients::register(&state, &caller.initiator(&state, req), spec).await?;
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
        Ok(Json(admin_clients::existing(&state, &id).await?.into()))
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
        let caller = auth.caller();
        caller.require_write()?;
        let Json(change) = body;
        let change = ClientChange {
            name: change.name,
            redirect_uris: change.redirect_uris,
            post_logout_redirect_uris: change.post_logout_redirect_uris,
            first_party: change.first_party,
            grant_types: change.grant_types,
            scopes: change.scopes,
            audiences: change.audiences,
            resources: change.resources,
            resource_server: change.resource_server,
            pkce_exempt: change.pkce_exempt,
            api_access: change.api_access,
            id_token_alg: change.id_token_signed_response_alg,
            require_par: change.require_pushed_authorization_requests,
            dpop_bound_access_tokens: change.dpop_bound_access_tokens,
            jwt_auth: None,
            backchannel_logout: None,
        };
        let client = admin_clients::update(&state, &caller.initiator(&state, req), &id, change).await?;
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
        let caller = auth.caller();
        caller.require_write()?;
        admin_clients::delete(&state, &caller.initiator(&state, req), &id).await?;
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
        caller.require_minting(&state)?;
        let secret = admin_clients::rotate_secret(&state, &caller.initiator(&state, req), &id).await?;
        Ok(Json(RotatedSecret { client_id: id.0, client_secret: secret }))
    }

    /// Disable an OAuth client
    ///
    /// The client is refused at every endpoint and its tokens stop validating; its settings,
    /// consents and registration stay, so it can be enabled again. Use it for a dynamically
    /// registered or metadata-document client that misbehaves.
    #[oai(path = "/clients/:id/disable", method = "post")]
    async fn disable_client(
        &self,
        req: &Request,
        state: Data<&SharedState>,
        auth: AdminAuth,
        id: Path<String>,
    ) -> ApiResult<Json<ClientView>> {
        let caller = auth.caller();
        caller.require_write()?;
        let client = admin_clients::set_disabled(&state, &caller.initiator(&state, req), &id, true).await?;
        Ok(Json(client.into()))
    }

    /// Enable a disabled OAuth client
    #[oai(path = "/clients/:id/enable", method = "post")]
    async fn enable_client(
        &self,
        req: &Request,
        state: Data<&SharedState>,
        auth: AdminAuth,
        id: Path<String>,
    ) -> ApiResult<Json<ClientView>> {
        let caller = auth.caller();
        caller.require_write()?;
        let client = admin_clients::set_disabled(&state, &caller.initiator(&state, req), &id, false).await?;
        Ok(Json(client.into()))
    }
}
