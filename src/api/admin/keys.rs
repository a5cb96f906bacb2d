//! /admin/keys: list and rotate signing keys. Every change is audited by the core operation it calls.

use poem::Request;
use poem::web::Data;
use poem_openapi::param::Query;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};

use crate::api::ApiTags;
use crate::api::admin_auth::AdminAuth;
use crate::api::problem::{ApiError, ApiResult};
use crate::state::SharedState;

pub struct AdminKeysApi;

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

#[OpenApi(prefix_path = "/admin", tag = "ApiTags::Admin")]
impl AdminKeysApi {
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
        let key = crate::admin::keys::rotate(&state, &caller.initiator(&state, req), &alg).await?;
        Ok(Json(RotatedKey { kid: key.kid, alg: key.alg, activates_at: key.activates_at }))
    }
}
