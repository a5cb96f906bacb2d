//! The OpenAPI-documented JSON API under `/api/v1`, with Swagger UI at `/docs`.

// `ApiError` is the response itself (poem-openapi derives its wire form); boxing it would only
// add indirection on the error path.
#![allow(clippy::result_large_err)]

mod admin;
pub mod admin_auth;
mod auth;
pub mod caller;
mod docs;
mod dpop_scheme;
mod identities;
mod internal;
mod me;
mod paging;
mod permissions;
pub mod problem;
mod views;

use poem::{Endpoint, IntoEndpoint};
use poem_openapi::{OpenApiService, Tags};

use crate::config::Config;

#[derive(Tags)]
pub enum ApiTags {
    /// Registration, login, email verification and password recovery.
    Auth,
    /// The caller's own account.
    Me,
    /// Administration: users, signing keys, API clients, the audit log.
    Admin,
    /// Administration: organizations and their members.
    Organizations,
    /// Administration: granting and revoking permissions.
    Permissions,
    /// Routes for oxidp's own services, behind `X-Internal-Secret`.
    Internal,
}

pub const API_PREFIX: &str = "/api/v1";

pub type Service = OpenApiService<
    (
        auth::AuthApi,
        me::MeApi,
        identities::IdentitiesApi,
        admin::AdminUsersApi,
        admin::AdminClientsApi,
        admin::AdminTokenExchangeApi,
        admin::AdminApiClientsApi,
        admin::AdminKeysApi,
        admin::AdminRegistrationTokensApi,
        admin::AdminAuditApi,
        permissions::PermissionsApi,
        internal::InternalApi,
    ),
    (),
>;

/// The one place the OpenAPI service is built: the server, `oxidp openapi` and the golden-file test use it.
pub fn service(config: &Config) -> Service {
    OpenApiService::new(
        (
            auth::AuthApi,
            me::MeApi,
            identities::IdentitiesApi,
            admin::AdminUsersApi,
            admin::AdminClientsApi,
            admin::AdminTokenExchangeApi,
            admin::AdminApiClientsApi,
            admin::AdminKeysApi,
            admin::AdminRegistrationTokensApi,
            admin::AdminAuditApi,
            permissions::PermissionsApi,
            internal::InternalApi,
        ),
        "oxidp",
        env!("CARGO_PKG_VERSION"),
    )
    .description("The account API of oxidp. Errors are RFC 9457 problem JSON with a request_id.")
    .server(format!("{}{API_PREFIX}", config.issuer))
}

/// The document as `oxidp openapi` prints it and `openapi/openapi.json` stores it: without the
/// issuer-dependent `servers` entry.
pub fn document(config: &Config) -> String {
    let mut spec: serde_json::Value = serde_json::from_str(&service(config).spec()).unwrap_or_default();
    if let Some(map) = spec.as_object_mut() {
        map.remove("servers");
    }
    serde_json::to_string_pretty(&spec).unwrap_or_default()
}

pub fn endpoint(config: &Config) -> impl Endpoint + use<> {
    service(config).into_endpoint()
}

pub use docs::Docs;
