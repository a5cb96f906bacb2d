//! The audit log (SPEC §8): security events and every mutation, append-only from the API.
//!
//! Core operations that change something take an [`Initiator`] and write their entry
//! themselves, so a change is audited the same whatever the entry point (API, pages, CLI).
//! Token issuance and housekeeping purges are not audited.

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
    /// The entry point when it is not a request (`cli`); recorded in the details.
    pub via: Option<&'static str>,
}

/// Who makes a change, and from where.
#[derive(Debug, Clone)]
pub struct Initiator {
    pub actor: Actor,
    pub origin: Origin,
}

impl Initiator {
    pub fn new(actor: Actor, origin: Origin) -> Initiator {
        Initiator { actor, origin }
    }

    /// An operator at the command line.
    pub fn cli() -> Initiator {
        Initiator { actor: Actor::System, origin: Origin { via: Some("cli"), ..Origin::default() } }
    }

    /// oxidp itself (start-up, background work).
    pub fn system() -> Initiator {
        Initiator { actor: Actor::System, origin: Origin::default() }
    }

    /// The acting user's id, when a user acts.
    pub fn user_id(&self) -> Option<&str> {
        match &self.actor {
            Actor::User(id) => Some(id),
            _ => None,
        }
    }

    /// Records `action` on `target` by this initiator.
    pub async fn record(
        &self,
        state: &AppState,
        action: &str,
        target: (&str, &str),
        details: Value,
    ) -> StoreResult<()> {
        let event = Event { actor: self.actor.clone(), action, target: Some(target), details };
        record(state, &self.origin, event).await
    }
}

pub struct Event<'a> {
    pub actor: Actor,
    pub action: &'a str,
    pub target: Option<(&'a str, &'a str)>,
    pub details: Value,
}

pub async fn record(state: &AppState, origin: &Origin, event: Event<'_>) -> StoreResult<()> {
    let (actor_type, actor_id) = event.actor.parts();
    let mut details = event.details;
    if let (Some(via), Some(map)) = (origin.via, details.as_object_mut()) {
        map.insert("via".into(), Value::from(via));
    }
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
        details: details.to_string(),
    };
    state.db.insert_audit(&entry).await
}
