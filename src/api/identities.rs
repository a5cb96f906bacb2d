//! /users/me/identities: the caller's upstream identities (Google, GitHub, Authentik, trusted
//! token issuers), listed and unlinked. Unlinking the last way to sign in is refused.

use poem::Request;
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};

use super::ApiTags;
use super::auth::NoContent;
use super::caller::{AccountAuth, Need};
use super::paging::{page_args, paginate};
use super::problem::ApiResult;
use crate::audit::Actor;
use crate::state::SharedState;
use crate::store::{Identity, IdentityLinkStore};

pub struct IdentitiesApi;

/// An upstream identity linked to the account.
#[derive(Object, Debug)]
pub struct IdentityView {
    pub id: String,
    /// The provider's configured name (e.g. `google`, `github`, `authentik`).
    pub provider: String,
    /// The provider's display name when it is a configured sign-in provider.
    #[oai(nullable)]
    pub label: Option<String>,
    /// The user's subject at the provider.
    pub subject: String,
    /// The email the provider gave when the identity was linked.
    #[oai(nullable)]
    pub email: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
}

#[derive(Object, Debug)]
pub struct IdentityPage {
    pub items: Vec<IdentityView>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    #[oai(nullable)]
    pub next_cursor: Option<String>,
}

fn view(state: &SharedState, identity: Identity) -> IdentityView {
    let label = state.federation.get(&identity.provider).map(|provider| provider.label.clone());
    IdentityView {
        id: identity.id,
        provider: identity.provider,
        label,
        subject: identity.subject,
        email: identity.email,
        created_at: identity.created_at,
    }
}
#[OpenApi(prefix_path = "/users/me/identities", tag = "ApiTags::Me")]
impl IdentitiesApi {
    /// List my upstream identities
    ///
    /// The sign-ins at other providers linked to this account, oldest first.
    #[oai(path = "/", method = "get")]
    async fn list_identities(
        &self,
        state: Data<&SharedState>,
        auth: AccountAuth,
        limit: Query<Option<u32>>,
        cursor: Query<Option<String>>,
    ) -> ApiResult<Json<IdentityPage>> {
        let caller = auth.caller();
        caller.require(Need::Read)?;
        let (limit, after) = page_args(limit.0, cursor.0)?;
        let (identities, next_cursor) =
            paginate(state.db.identities_of_user(&caller.user.id, after, limit + 1).await?, limit, |identity| {
                (identity.created_at, &identity.id)
            });
        Ok(Json(IdentityPage {
            items: identities.into_iter().map(|identity| view(&state, identity)).collect(),
            next_cursor,
        }))
    }

    /// Unlink an upstream identity
    ///
    /// The provider can no longer be used to sign in to this account. Refused (409
    /// `last_login_method`) when it is the account's last way to sign in: no password and no
    /// other sign-in provider.
    #[oai(path = "/:id", method = "delete")]
    async fn unlink_identity(
        &self,
        req: &Request,
        state: Data<&SharedState>,
        auth: AccountAuth,
        id: Path<String>,
    ) -> ApiResult<NoContent> {
        let caller = auth.caller();
        caller.require(Need::Write)?;
        let by = crate::web::initiator(&state, req, Actor::User(caller.user.id.clone()));
        crate::account::unlink_identity(&state, &by, &caller.user, &id).await?;
        Ok(NoContent::NoContent)
    }
}
