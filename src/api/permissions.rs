//! Permissions and organizations (SPEC §6): grant and revoke under /admin/permissions,
//! organizations and their members under /admin/organizations, and the caller's own snapshot
//! at /users/me/permissions. The rules live in `crate::permissions`; this file translates.

use poem::Request;
use poem::web::Data;
use poem_openapi::param::{Header, Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};

use super::ApiTags;
use super::admin_auth::AdminAuth;
use super::auth::NoContent;
use super::caller::{AccountAuth, Need};
use super::paging::{page_cursor, page_limit, paginate};
use super::problem::{ApiError, ApiResult};
use crate::permissions::snapshot::{self, Snapshot};
use crate::permissions::{PermissionChange, PermissionRequest, organizations};
use crate::state::SharedState;
use crate::store::{Member, Organization, OrganizationStore};

pub struct PermissionsApi;

/// A permission of one user. Every name is 1 to 128 of `A-Z a-z 0-9 _ . : * -`.
#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct PermissionBody {
    /// The user's `sub`.
    pub sub: String,
    /// What the permission is scoped to, e.g. `global` or `organization` (then `scope_id` is
    /// the id of an existing organization), or any other name.
    pub scope_type: String,
    /// Which one of the scope type, e.g. `*` for `global` or an organization id.
    pub scope_id: String,
    /// The application module, e.g. `billing`.
    pub module: String,
    /// The action within the module, e.g. `read`.
    pub action: String,
}

impl From<PermissionBody> for PermissionRequest {
    fn from(b: PermissionBody) -> Self {
        PermissionRequest {
            sub: b.sub,
            scope_type: b.scope_type,
            scope_id: b.scope_id,
            module: b.module,
            action: b.action,
        }
    }
}

#[derive(Object)]
pub struct PermissionChangeResult {
    /// False when the call changed nothing (granting a held permission, revoking a missing one).
    pub changed: bool,
    /// The user's permissions version after the call; the snapshot's `ETag` is `"v{version}"`.
    pub version: i64,
    pub sub: String,
    pub scope_type: String,
    pub scope_id: String,
    pub module: String,
    pub action: String,
}

impl From<PermissionChange> for PermissionChangeResult {
    fn from(c: PermissionChange) -> Self {
        PermissionChangeResult {
            changed: c.changed,
            version: c.version,
            sub: c.user.sub,
            scope_type: c.key.scope_type,
            scope_id: c.key.scope_id,
            module: c.key.module,
            action: c.key.action,
        }
    }
}

#[derive(Object)]
pub struct SnapshotPermission {
    pub scope_type: String,
    pub scope_id: String,
    pub module: String,
    pub action: String,
}

#[derive(Object)]
pub struct SnapshotModuleAction {
    pub module: String,
    pub action: String,
}

#[derive(Object)]
pub struct SnapshotOrganization {
    pub id: String,
    pub slug: String,
    /// The user's role in this organization.
    pub role: String,
    /// The user's permissions scoped to this organization.
    pub permissions: Vec<SnapshotModuleAction>,
}

/// A user's effective permissions. `version` moves whenever any part of this changes, and only
/// then; the `ETag` is `"v{version}"`.
#[derive(Object)]
pub struct PermissionSnapshot {
    pub sub: String,
    pub version: i64,
    /// `user`, `moderator` or `admin`.
    pub role: String,
    /// `active`, `banned` or `deleted`; only an active user holds rights (otherwise
    /// `permissions` and `organizations` are empty).
    pub status: String,
    /// Every direct permission, including those scoped to an organization.
    pub permissions: Vec<SnapshotPermission>,
    /// The organizations the user belongs to.
    pub organizations: Vec<SnapshotOrganization>,
}

impl From<Snapshot> for PermissionSnapshot {
    fn from(s: Snapshot) -> Self {
        PermissionSnapshot {
            sub: s.sub,
            version: s.version,
            role: s.role,
            status: s.status,
            permissions: s
                .permissions
                .into_iter()
                .map(|p| SnapshotPermission {
                    scope_type: p.scope_type,
                    scope_id: p.scope_id,
                    module: p.module,
                    action: p.action,
                })
                .collect(),
            organizations: s
                .organizations
                .into_iter()
                .map(|o| SnapshotOrganization {
                    id: o.id,
                    slug: o.slug,
                    role: o.role,
                    permissions: o
                        .permissions
                        .into_iter()
                        .map(|p| SnapshotModuleAction { module: p.module, action: p.action })
                        .collect(),
                })
                .collect(),
        }
    }
}

#[derive(ApiResponse)]
pub enum SnapshotResponse {
    /// The snapshot, with its `ETag`.
    #[oai(status = 200)]
    Ok(
        Json<PermissionSnapshot>,
        #[oai(header = "ETag")] String,
        /// Cache it, but ask again (with `If-None-Match`) before relying on it.
        #[oai(header = "Cache-Control")]
        String,
    ),
    /// Unchanged since the `ETag` given in `If-None-Match`; no body.
    #[oai(status = 304)]
    NotModified(#[oai(header = "ETag")] String),
}

/// The answer for a snapshot, honouring `If-None-Match`.
pub(super) fn snapshot_response(snapshot: Snapshot, if_none_match: Option<&str>) -> SnapshotResponse {
    let etag = snapshot.etag();
    if if_none_match.is_some_and(|header| snapshot::if_none_match(header, &etag)) {
        SnapshotResponse::NotModified(etag)
    } else {
        SnapshotResponse::Ok(Json(snapshot.into()), etag, "private, no-cache".into())
    }
}

#[derive(Object)]
pub struct OrganizationView {
    pub id: String,
    pub name: String,
    /// Unique; lower-case letters, digits and `-`.
    pub slug: String,
    pub created_at: i64,
    pub updated_at: i64,
}

impl From<Organization> for OrganizationView {
    fn from(o: Organization) -> Self {
        OrganizationView { id: o.id, name: o.name, slug: o.slug, created_at: o.created_at, updated_at: o.updated_at }
    }
}

#[derive(Object)]
pub struct OrganizationPage {
    pub items: Vec<OrganizationView>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    #[oai(nullable)]
    pub next_cursor: Option<String>,
}

#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct CreateOrganizationRequest {
    /// 1 to 200 characters.
    pub name: String,
    /// 1 to 64 of `a-z 0-9 -`, not starting or ending with `-`; unique.
    pub slug: String,
}

/// Absent fields are left alone.
#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct OrganizationPatch {
    pub name: Option<String>,
    /// A new slug moves every member's permissions version (the snapshot shows it).
    pub slug: Option<String>,
}

#[derive(ApiResponse)]
pub enum OrganizationCreated {
    #[oai(status = 201)]
    Created(Json<OrganizationView>),
}

#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct MemberRoleBody {
    /// The member's role in the organization, e.g. `owner` or `member`: 1 to 128 of
    /// `A-Z a-z 0-9 _ . : * -`.
    pub role: String,
}

#[derive(Object)]
pub struct MemberView {
    pub user_id: String,
    pub sub: String,
    #[oai(nullable)]
    pub email: Option<String>,
    pub role: String,
    /// When the user joined the organization.
    pub joined_at: i64,
}

impl From<Member> for MemberView {
    fn from(m: Member) -> Self {
        MemberView { user_id: m.user_id, sub: m.sub, email: m.email, role: m.role, joined_at: m.created_at }
    }
}

#[derive(Object)]
pub struct MemberPage {
    pub items: Vec<MemberView>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    #[oai(nullable)]
    pub next_cursor: Option<String>,
}

#[derive(Object)]
pub struct MembershipChange {
    /// False when nothing changed (the user already had this role; was not a member).
    pub changed: bool,
    pub organization_id: String,
    pub user_id: String,
    /// The member's role now; absent after a removal.
    #[oai(nullable)]
    pub role: Option<String>,
}

#[OpenApi]
impl PermissionsApi {
    /// Grant a permission
    ///
    /// Idempotent: granting a permission the user holds answers `changed: false` and leaves the
    /// user's permissions version alone. Audited as `permission.grant`.
    #[oai(path = "/admin/permissions/grant", method = "post", tag = "ApiTags::Permissions")]
    async fn grant_permission(
        &self,
        req: &Request,
        state: Data<&SharedState>,
        auth: AdminAuth,
        body: Json<PermissionBody>,
    ) -> ApiResult<Json<PermissionChangeResult>> {
        let caller = auth.caller();
        caller.require_write()?;
        let change = crate::permissions::grants::grant(&state, &caller.initiator(&state, req), &body.0.into()).await?;
        Ok(Json(change.into()))
    }

    /// Revoke a permission
    ///
    /// Idempotent: revoking a permission the user does not hold answers `changed: false` and
    /// leaves the user's permissions version alone. Audited as `permission.revoke`.
    #[oai(path = "/admin/permissions/revoke", method = "post", tag = "ApiTags::Permissions")]
    async fn revoke_permission(
        &self,
        req: &Request,
        state: Data<&SharedState>,
        auth: AdminAuth,
        body: Json<PermissionBody>,
    ) -> ApiResult<Json<PermissionChangeResult>> {
        let caller = auth.caller();
        caller.require_write()?;
        let change = crate::permissions::grants::revoke(&state, &caller.initiator(&state, req), &body.0.into()).await?;
        Ok(Json(change.into()))
    }

    /// My permission snapshot
    ///
    /// My role, direct permissions and organizations, with the `ETag` `"v{version}"`. Send it
    /// back in `If-None-Match` to get 304 while nothing changed.
    #[oai(path = "/users/me/permissions", method = "get", tag = "ApiTags::Me")]
    async fn my_permissions(
        &self,
        state: Data<&SharedState>,
        auth: AccountAuth,
        #[oai(name = "If-None-Match")] if_none_match: Header<Option<String>>,
    ) -> ApiResult<SnapshotResponse> {
        let caller = auth.caller();
        caller.require(Need::Read)?;
        let snapshot = snapshot::of_user(&state, &caller.user.id)
            .await?
            .ok_or_else(|| ApiError::unauthorized("invalid_token", "the account no longer exists"))?;
        Ok(snapshot_response(snapshot, if_none_match.0.as_deref()))
    }

    /// List organizations
    ///
    /// Oldest first, paginated with a cursor.
    #[oai(path = "/admin/organizations", method = "get", tag = "ApiTags::Organizations")]
    async fn list_organizations(
        &self,
        state: Data<&SharedState>,
        _auth: AdminAuth,
        limit: Query<Option<u32>>,
        cursor: Query<Option<String>>,
    ) -> ApiResult<Json<OrganizationPage>> {
        let limit = page_limit(limit.0)?;
        let rows = state.db.list_organizations(page_cursor(cursor.0)?, limit + 1).await?;
        let (rows, next_cursor) = paginate(rows, limit, |o| (o.created_at, o.id.as_str()));
        Ok(Json(OrganizationPage { items: rows.into_iter().map(Into::into).collect(), next_cursor }))
    }

    /// Create an organization
    ///
    /// The slug must be unique (409 otherwise).
    #[oai(path = "/admin/organizations", method = "post", tag = "ApiTags::Organizations")]
    async fn create_organization(
        &self,
        req: &Request,
        state: Data<&SharedState>,
        auth: AdminAuth,
        body: Json<CreateOrganizationRequest>,
    ) -> ApiResult<OrganizationCreated> {
        let caller = auth.caller();
        caller.require_write()?;
        let by = caller.initiator(&state, req);
        let organization = organizations::create(&state, &by, &body.name, &body.slug).await?;
        Ok(OrganizationCreated::Created(Json(organization.into())))
    }

    /// Get an organization
    #[oai(path = "/admin/organizations/:id", method = "get", tag = "ApiTags::Organizations")]
    async fn get_organization(
        &self,
        state: Data<&SharedState>,
        _auth: AdminAuth,
        id: Path<String>,
    ) -> ApiResult<Json<OrganizationView>> {
        let organization =
            state.db.organization_by_id(&id).await?.ok_or_else(|| ApiError::not_found("no such organization"))?;
        Ok(Json(organization.into()))
    }

    /// Update an organization
    ///
    /// Name and slug; a new slug must be unique (409 otherwise) and moves the members'
    /// permissions versions.
    #[oai(path = "/admin/organizations/:id", method = "patch", tag = "ApiTags::Organizations")]
    async fn update_organization(
        &self,
        req: &Request,
        state: Data<&SharedState>,
        auth: AdminAuth,
        id: Path<String>,
        body: Json<OrganizationPatch>,
    ) -> ApiResult<Json<OrganizationView>> {
        let caller = auth.caller();
        caller.require_write()?;
        let by = caller.initiator(&state, req);
        let organization = organizations::update(&state, &by, &id, body.name.as_deref(), body.slug.as_deref()).await?;
        Ok(Json(organization.into()))
    }

    /// Delete an organization
    ///
    /// Its memberships and the permissions scoped to it go with it; every affected user's
    /// permissions version moves.
    #[oai(path = "/admin/organizations/:id", method = "delete", tag = "ApiTags::Organizations")]
    async fn delete_organization(
        &self,
        req: &Request,
        state: Data<&SharedState>,
        auth: AdminAuth,
        id: Path<String>,
    ) -> ApiResult<NoContent> {
        let caller = auth.caller();
        caller.require_write()?;
        organizations::delete(&state, &caller.initiator(&state, req), &id).await?;
        Ok(NoContent::NoContent)
    }

    /// List an organization's members
    ///
    /// In joining order, paginated with a cursor.
    #[oai(path = "/admin/organizations/:id/members", method = "get", tag = "ApiTags::Organizations")]
    async fn list_members(
        &self,
        state: Data<&SharedState>,
        _auth: AdminAuth,
        id: Path<String>,
        limit: Query<Option<u32>>,
        cursor: Query<Option<String>>,
    ) -> ApiResult<Json<MemberPage>> {
        let limit = page_limit(limit.0)?;
        let after = page_cursor(cursor.0)?;
        if state.db.organization_by_id(&id).await?.is_none() {
            return Err(ApiError::not_found("no such organization"));
        }
        let rows = state.db.organization_members(&id, after, limit + 1).await?;
        let (rows, next_cursor) = paginate(rows, limit, |m| (m.created_at, m.user_id.as_str()));
        Ok(Json(MemberPage { items: rows.into_iter().map(Into::into).collect(), next_cursor }))
    }

    /// Add a member or change their role
    ///
    /// Idempotent: the same role again answers `changed: false`. A change moves the user's
    /// permissions version.
    #[oai(path = "/admin/organizations/:id/members/:user_id", method = "put", tag = "ApiTags::Organizations")]
    async fn set_member(
        &self,
        req: &Request,
        state: Data<&SharedState>,
        auth: AdminAuth,
        id: Path<String>,
        user_id: Path<String>,
        body: Json<MemberRoleBody>,
    ) -> ApiResult<Json<MembershipChange>> {
        let caller = auth.caller();
        caller.require_write()?;
        let by = caller.initiator(&state, req);
        let changed = organizations::set_member(&state, &by, &id, &user_id, &body.role).await?;
        Ok(Json(MembershipChange { changed, organization_id: id.0, user_id: user_id.0, role: Some(body.0.role) }))
    }

    /// Remove a member
    ///
    /// Idempotent: removing a user who is not a member answers `changed: false`. The user's
    /// permissions scoped to the organization stay until revoked.
    #[oai(path = "/admin/organizations/:id/members/:user_id", method = "delete", tag = "ApiTags::Organizations")]
    async fn remove_member(
        &self,
        req: &Request,
        state: Data<&SharedState>,
        auth: AdminAuth,
        id: Path<String>,
        user_id: Path<String>,
    ) -> ApiResult<Json<MembershipChange>> {
        let caller = auth.caller();
        caller.require_write()?;
        let changed = organizations::remove_member(&state, &caller.initiator(&state, req), &id, &user_id).await?;
        Ok(Json(MembershipChange { changed, organization_id: id.0, user_id: user_id.0, role: None }))
    }
}
