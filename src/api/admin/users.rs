//! /admin/users: list, read, update, ban and unban, soft delete and restore, erase (SPEC §5). Every change is audited by the core operation it calls.

use poem::Request;
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::types::MaybeUndefined;
use poem_openapi::{Object, OpenApi};

use crate::admin::users::{self as admin_users, UserUpdate};
use crate::api::ApiTags;
use crate::api::admin_auth::AdminAuth;
use crate::api::paging::{page_cursor, page_limit, paginate};
use crate::api::problem::{ApiError, ApiResult};
use crate::api::views::UserView;
use crate::state::SharedState;
use crate::store::{UserFilter, UserStore};

pub struct AdminUsersApi;

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

#[OpenApi(prefix_path = "/admin", tag = "ApiTags::Admin")]
impl AdminUsersApi {
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
        let change = UserUpdate { role: body.role, status: body.status, email_verified: body.email_verified, name };
        let user = admin_users::update(&state, &caller.initiator(&state, req), &id, change).await?;
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
        let user = admin_users::soft_delete(&state, &caller.initiator(&state, req), &id).await?;
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
        let user = admin_users::restore(&state, &caller.initiator(&state, req), &id).await?;
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
        let user = admin_users::ban(&state, &caller.initiator(&state, req), &id).await?;
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
        let user = admin_users::unban(&state, &caller.initiator(&state, req), &id).await?;
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
        let pseudonym = admin_users::erase(&state, &caller.initiator(&state, req), &id).await?;
        Ok(Json(ErasedUser { id: id.0, pseudonym }))
    }
}
