//! The audit log (SPEC §8): security events and every mutation, append-only from the API.

use serde_json::Value;

use crate::state::AppState;
use crate::store::{AuditEntry, AuditStore, StoreResult};

/// Who acted.
#[derive(Debug, Clone)]
pub enum Actor {
    User(String),
    Client(String),
    ApiClient(String),
    System,
    Anonymous,
}

impl Actor {
    fn parts(&self) -> (&'static str, Option<String>) {
        match self {
            Actor::User(id) => ("user", Some(id.clone())),
            Actor::Client(id) => ("client", Some(id.clone())),
            Actor::ApiClient(id) => ("api_client", Some(id.clone())),
            Actor::System => ("system", None),
            Actor::Anonymous => ("anonymous", None),
        }
    }
}

/// Where a request came from.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
}

pub struct Event<'a> {
    pub actor: Actor,
    pub action: &'a str,
    pub target: Option<(&'a str, &'a str)>,
    pub details: Value,
}

pub async fn record(state: &AppState, origin: &Origin, event: Event<'_>) -> StoreResult<()> {
    let (actor_type, actor_id) = event.actor.parts();
    let entry = AuditEntry {
        // Time-ordered ids keep entries of the same second in the order they were written.
        id: uuid::Uuid::now_v7().to_string(),
        at: state.now(),
        actor_type: actor_type.into(),
        actor_id,
        action: event.action.into(),
        target_type: event.target.map(|(kind, _)| kind.to_string()),
        target_id: event.target.map(|(_, id)| id.to_string()),
        ip: origin.ip.clone(),
        user_agent: origin.user_agent.as_ref().map(|ua| ua.chars().take(512).collect()),
        request_id: origin.request_id.clone(),
        details: event.details.to_string(),
    };
    state.db.insert_audit(&entry).await
}
