//! /users/me/*: the caller's own profile, password, sessions and API keys.

use poem::Request;
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::types::MaybeUndefined;
use poem_openapi::{ApiResponse, OpenApi};

use super::ApiTags;
use super::auth::NoContent;
use super::caller::{AccountAuth, Need};
use super::paging::{page_args, paginate};
use super::problem::{ApiError, ApiResult};
use super::views::*;
use crate::apikeys;
use crate::audit::{Actor, Initiator};
use crate::state::SharedState;
use crate::store::{ApiKeyStore, Profile, SessionStore, User};

pub struct MeApi;

#[derive(ApiResponse)]
pub enum KeyCreated {
    #[oai(status = 201)]
    Created(Json<CreatedApiKey>),
}
/// The signed-in person, acting through `req`.
fn caller_initiator(state: &SharedState, req: &Request, user: &User) -> Initiator {
    crate::web::initiator(state, req, Actor::User(user.id.clone()))
}

fn patch(current: Option<String>, change: MaybeUndefined<String>) -> Option<String> {
    match change {
        MaybeUndefined::Undefined => current,
        MaybeUndefined::Null => None,
        MaybeUndefined::Value(value) => Some(value),
    }
}

#[OpenApi(prefix_path = "/users/me", tag = "ApiTags::Me")]
impl MeApi {
    /// Read my profile
    #[oai(path = "/", method = "get")]
    async fn get_me(&self, auth: AccountAuth) -> ApiResult<Json<UserView>> {
        let caller = auth.caller();
        caller.require(Need::Read)?;
        Ok(Json(caller.user.into()))
    }

    /// Update my profile
    ///
    /// OIDC standard claims; an absent field is left alone, `null` clears it. Changes show in
    /// `/userinfo` and in new ID tokens.
    #[oai(path = "/", method = "patch")]
    async fn update_me(
        &self,
        req: &Request,
        state: Data<&SharedState>,
        auth: AccountAuth,
        body: Json<ProfilePatch>,
    ) -> ApiResult<Json<UserView>> {
        let caller = auth.caller();
        caller.require(Need::Write)?;
        let Json(change) = body;
        let user = caller.user;
        let profile = Profile {
            name: patch(user.name.clone(), change.name),
            given_name: patch(user.given_name.clone(), change.given_name),
            family_name: patch(user.family_name.clone(), change.family_name),
            picture: patch(user.picture.clone(), change.picture),
            phone_number: patch(user.phone_number.clone(), change.phone_number),
            locale: patch(user.locale.clone(), change.locale),
            zoneinfo: patch(user.zoneinfo.clone(), change.zoneinfo),
        };
        let by = caller_initiator(&state, req, &user);
        Ok(Json(crate::account::update_profile(&state, &by, &user, profile).await?.into()))
    }

    /// Change my password
    ///
    /// Needs the current password. Every other session and refresh token of the account ends;
    /// the calling token's own grant stays.
    #[oai(path = "/password", method = "post")]
    async fn change_password(
        &self,
        req: &Request,
        state: Data<&SharedState>,
        auth: AccountAuth,
        body: Json<ChangePasswordRequest>,
    ) -> ApiResult<NoContent> {
        let caller = auth.caller();
        caller.require(Need::Write)?;
        crate::account::change_password(
            &state,
            &caller_initiator(&state, req, &caller.user),
            &caller.user,
            &body.current_password,
            &body.new_password,
            caller.grant_id(),
        )
        .await?;
        Ok(NoContent::NoContent)
    }

    /// List my browser sessions
    #[oai(path = "/sessions", method = "get")]
    async fn list_sessions(
        &self,
        state: Data<&SharedState>,
        auth: AccountAuth,
        limit: Query<Option<u32>>,
        cursor: Query<Option<String>>,
    ) -> ApiResult<Json<SessionPage>> {
        let caller = auth.caller();
        caller.require(Need::Read)?;
        let (limit, after) = page_args(limit.0, cursor.0)?;
        let (sessions, next_cursor) = paginate(
            state.sessions.sessions_for_user(&caller.user.id, state.now(), after, limit + 1).await?,
            limit,
            |s| (s.created_at, &s.id),
        );
        Ok(Json(SessionPage { items: sessions.into_iter().map(Into::into).collect(), next_cursor }))
    }

    /// End one of my sessions
    #[oai(path = "/sessions/:id", method = "delete")]
    async fn delete_session(
        &self,
        req: &Request,
        state: Data<&SharedState>,
        auth: AccountAuth,
        id: Path<String>,
    ) -> ApiResult<NoContent> {
        let caller = auth.caller();
        caller.require(Need::Write)?;
        crate::account::end_session(&state, &caller_initiator(&state, req, &caller.user), &caller.user, &id).await?;
        Ok(NoContent::NoContent)
    }

    /// List my API keys
    ///
    /// Secrets are never shown again after creation.
    #[oai(path = "/api-keys", method = "get")]
    async fn list_api_keys(
        &self,
        state: Data<&SharedState>,
        auth: AccountAuth,
        limit: Query<Option<u32>>,
        cursor: Query<Option<String>>,
    ) -> ApiResult<Json<ApiKeyPage>> {
        let caller = auth.caller();
        caller.require(Need::Read)?;
        let (limit, after) = page_args(limit.0, cursor.0)?;
        let (keys, next_cursor) =
            paginate(state.db.api_keys_for_user(&caller.user.id, after, limit + 1).await?, limit, |k| {
                (k.created_at, &k.id)
            });
        Ok(Json(ApiKeyPage { items: keys.into_iter().map(Into::into).collect(), next_cursor }))
    }

    /// Create an API key
    ///
    /// Only with a Bearer token (never with another key). The key (`oxk_…`) is in the answer
    /// this once; oxidp keeps only a keyed hash of it.
    #[oai(path = "/api-keys", method = "post")]
    async fn create_api_key(
        &self,
        req: &Request,
        state: Data<&SharedState>,
        auth: AccountAuth,
        body: Json<CreateApiKeyRequest>,
    ) -> ApiResult<KeyCreated> {
        let caller = auth.caller();
        caller.require(Need::ManageKeys)?;
        let Json(body) = body;
        let by = caller_initiator(&state, req, &caller.user);
        let minter = caller.minter()?;
        let created =
            apikeys::create(&state, &by, &minter, &caller.user, &body.name, body.scopes, body.expires_at).await?;
        Ok(KeyCreated::Created(Json(CreatedApiKey { key: created.secret, details: created.key.into() })))
    }

    /// Revoke an API key
    #[oai(path = "/api-keys/:id", method = "delete")]
    async fn delete_api_key(
        &self,
        req: &Request,
        state: Data<&SharedState>,
        auth: AccountAuth,
        id: Path<String>,
    ) -> ApiResult<NoContent> {
        let caller = auth.caller();
        caller.require(Need::ManageKeys)?;
        if apikeys::revoke(&state, &caller_initiator(&state, req, &caller.user), &caller.user, &id).await? {
            Ok(NoContent::NoContent)
        } else {
            Err(ApiError::not_found("no such API key"))
        }
    }
}
