//! /admin/registration-tokens: initial access tokens for dynamic client registration
//! (`OXIDP_DYNAMIC_REGISTRATION=token`). The core operation validates and audits.

use poem::Request;
use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};

use crate::api::ApiTags;
use crate::api::admin_auth::AdminAuth;
use crate::api::problem::ApiResult;
use crate::state::SharedState;

pub struct AdminRegistrationTokensApi;

#[derive(Object)]
pub struct CreateRegistrationTokenRequest {
    /// Seconds the token stays valid (default 86400, at most a year).
    pub expires_in: Option<i64>,
    /// Registrations the token allows; unlimited when absent.
    pub uses: Option<i64>,
}

#[derive(Object)]
pub struct CreatedRegistrationToken {
    /// The initial access token, shown once; send it as `Authorization: Bearer` to `POST /register`.
    pub token: String,
    pub id: String,
    pub expires_at: i64,
    /// Registrations the token allows; `null` for unlimited.
    #[oai(nullable)]
    pub uses: Option<i64>,
}

#[derive(ApiResponse)]
pub enum RegistrationTokenCreated {
    #[oai(status = 201)]
    Created(Json<CreatedRegistrationToken>),
}

#[OpenApi(prefix_path = "/admin", tag = "ApiTags::Admin")]
impl AdminRegistrationTokensApi {
    /// Create an initial access token
    ///
    /// For `POST /register` when `OXIDP_DYNAMIC_REGISTRATION=token`. Like every credential, it is
    /// made only with an administrator's Bearer token from a recent sign-in.
    #[oai(path = "/registration-tokens", method = "post")]
    async fn create_registration_token(
        &self,
        req: &Request,
        state: Data<&SharedState>,
        auth: AdminAuth,
        body: Json<CreateRegistrationTokenRequest>,
    ) -> ApiResult<RegistrationTokenCreated> {
        let caller = auth.caller();
        caller.require_minting(&state)?;
        let Json(body) = body;
        let expires_in = body.expires_in.unwrap_or(86_400);
        let issued =
            crate::registration::create_initial_token(&state, &caller.initiator(&state, req), expires_in, body.uses)
                .await?;
        Ok(RegistrationTokenCreated::Created(Json(CreatedRegistrationToken {
            token: issued.token,
            id: issued.id,
            expires_at: issued.expires_at,
            uses: issued.uses,
        })))
    }
}
