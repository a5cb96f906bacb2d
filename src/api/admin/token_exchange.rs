//! /admin/clients/{id}/token-exchange: a client's token-exchange policy (RFC 8693), read and
//! replaced through `crate::admin::client_exchange`, which validates and audits.

use poem::Request;
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};

use crate::admin::client_exchange;
use crate::api::ApiTags;
use crate::api::admin_auth::AdminAuth;
use crate::api::problem::ApiResult;
use crate::state::SharedState;
use crate::store::ExchangePolicy;

pub struct AdminTokenExchangeApi;

/// What a client allowed `urn:ietf:params:oauth:grant-type:token-exchange` may ask for.
#[derive(Object)]
pub struct TokenExchangePolicy {
    /// Registered client ids it may name as `audience` (with
    /// `OXIDP_TOKEN_EXCHANGE_AUDIENCES=registered-clients`, any registered client).
    #[oai(default)]
    pub audiences: Vec<String>,
    /// RFC 8707 resource indicators it may name as `resource`.
    #[oai(default)]
    pub resources: Vec<String>,
    /// It may present actor tokens (delegation) even when the subject token's `may_act` does not
    /// name the actor.
    #[oai(default)]
    pub delegation: bool,
}

impl From<ExchangePolicy> for TokenExchangePolicy {
    fn from(p: ExchangePolicy) -> Self {
        TokenExchangePolicy { audiences: p.audiences, resources: p.resources, delegation: p.delegation }
    }
}

#[OpenApi(prefix_path = "/admin", tag = "ApiTags::Admin")]
impl AdminTokenExchangeApi {
    /// Get a client's token-exchange policy
    #[oai(path = "/clients/:id/token-exchange", method = "get")]
    async fn get_policy(
        &self,
        state: Data<&SharedState>,
        _auth: AdminAuth,
        id: Path<String>,
    ) -> ApiResult<Json<TokenExchangePolicy>> {
        Ok(Json(client_exchange::policy(&state, &id).await?.into()))
    }

    /// Replace a client's token-exchange policy
    ///
    /// The client must be allowed the token-exchange grant; audiences must be registered clients.
    #[oai(path = "/clients/:id/token-exchange", method = "put")]
    async fn set_policy(
        &self,
        req: &Request,
        state: Data<&SharedState>,
        auth: AdminAuth,
        id: Path<String>,
        body: Json<TokenExchangePolicy>,
    ) -> ApiResult<Json<TokenExchangePolicy>> {
        let caller = auth.caller();
        caller.require_write()?;
        let Json(body) = body;
        let policy =
            ExchangePolicy { audiences: body.audiences, resources: body.resources, delegation: body.delegation };
        let set = client_exchange::set_policy(&state, &caller.initiator(&state, req), &id, policy).await?;
        Ok(Json(set.into()))
    }
}
