//! /admin/audit: the audit log, newest first. Every change is audited by the core operation it calls.

use poem::web::Data;
use poem_openapi::param::Query;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};

use crate::api::ApiTags;
use crate::api::admin_auth::AdminAuth;
use crate::api::paging::{page_cursor, page_limit, paginate};
use crate::api::problem::ApiResult;
use crate::state::SharedState;
use crate::store::{AuditFilter, AuditStore};

pub struct AdminAuditApi;

#[derive(Object)]
pub struct AuditView {
    pub id: String,
    pub at: i64,
    pub actor_type: String,
    #[oai(nullable)]
    pub actor_id: Option<String>,
    pub action: String,
    #[oai(nullable)]
    pub target_type: Option<String>,
    #[oai(nullable)]
    pub target_id: Option<String>,
    #[oai(nullable)]
    pub ip: Option<String>,
    #[oai(nullable)]
    pub user_agent: Option<String>,
    #[oai(nullable)]
    pub request_id: Option<String>,
    pub details: serde_json::Value,
}

#[derive(Object)]
pub struct AuditPage {
    pub items: Vec<AuditView>,
    #[oai(nullable)]
    pub next_cursor: Option<String>,
}

#[OpenApi(prefix_path = "/admin", tag = "ApiTags::Admin")]
impl AdminAuditApi {
    /// Query the audit log
    ///
    /// Newest first; filter by actor, action, target and time range (unix seconds, inclusive).
    #[oai(path = "/audit", method = "get")]
    #[allow(clippy::too_many_arguments)]
    async fn audit_log(
        &self,
        state: Data<&SharedState>,
        _auth: AdminAuth,
        actor: Query<Option<String>>,
        action: Query<Option<String>>,
        target: Query<Option<String>>,
        from: Query<Option<i64>>,
        until: Query<Option<i64>>,
        limit: Query<Option<u32>>,
        cursor: Query<Option<String>>,
    ) -> ApiResult<Json<AuditPage>> {
        let limit = page_limit(limit.0)?;
        let filter = AuditFilter {
            actor_id: actor.0,
            action: action.0,
            target_id: target.0,
            from: from.0,
            until: until.0,
            before: page_cursor(cursor.0)?,
            limit: limit + 1,
        };
        let (rows, next_cursor) = paginate(state.db.query_audit(&filter).await?, limit, |r| (r.at, &r.id));
        let items = rows
            .into_iter()
            .map(|r| AuditView {
                details: serde_json::from_str(&r.details).unwrap_or_default(),
                id: r.id,
                at: r.at,
                actor_type: r.actor_type,
                actor_id: r.actor_id,
                action: r.action,
                target_type: r.target_type,
                target_id: r.target_id,
                ip: r.ip,
                user_agent: r.user_agent,
                request_id: r.request_id,
            })
            .collect();
        Ok(Json(AuditPage { items, next_cursor }))
    }
}
