//! The durable delivery queue: outgoing POSTs (back-channel logout tokens now; events and
//! webhooks later) written to the `deliveries` table, attempted by a worker on every instance
//! within a second or two, retried with exponential backoff across restarts, and audited as
//! `<kind>.failed` when given up.
//!
//! To add a kind: enqueue with [`enqueue`] and teach [`render`] how to turn its payload into
//! the form to POST.

pub mod queue;

pub use queue::Queue;

use std::time::Duration;

use serde_json::{Value, json};

use crate::outbound::Limits;
use crate::state::{AppState, SharedState};
use crate::store::{Delivery, DeliveryStore, StoreResult};

/// Deliveries one pass claims at most.
const BATCH: i64 = 32;
/// How long a claimed delivery stays locked to its instance (then another may take it).
const LOCK_SECONDS: i64 = 60;
/// How often the worker looks for due deliveries when nothing wakes it.
const POLL: Duration = Duration::from_secs(1);
/// Finished deliveries are kept this long for operators, then purged.
pub const KEEP_FINISHED: i64 = 7 * 86_400;
/// Time allowed for one attempt.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);

/// Queues a POST of `kind` to `target_url`; the first attempt follows within a second or two.
/// Returns the delivery's id.
pub async fn enqueue(state: &AppState, kind: &str, target_url: &str, payload: &Value) -> StoreResult<String> {
    let now = state.now();
    let delivery = Delivery {
        id: uuid::Uuid::new_v4().to_string(),
        kind: kind.to_string(),
        target_url: target_url.to_string(),
        payload: payload.to_string(),
        attempts: 0,
        next_attempt_at: now,
        last_error: None,
        created_at: now,
        delivered_at: None,
        failed_at: None,
    };
    state.db.insert_delivery(&delivery).await?;
    state.delivery.wake();
    Ok(delivery.id)
}

/// Runs the worker until [`Queue::stop`].
pub fn spawn_worker(state: SharedState) {
    tokio::spawn(async move {
        while !state.delivery.is_stopped() {
            if let Err(error) = run_due(&state).await {
                tracing::warn!(%error, "delivery queue: could not claim deliveries; will retry");
            }
            let _ = tokio::time::timeout(POLL, state.delivery.notified()).await;
        }
    });
}

/// One pass: claims what is due and attempts it, concurrently (a slow receiver delays no other).
/// Returns how many were attempted.
pub async fn run_due(state: &SharedState) -> StoreResult<usize> {
    let now = state.now();
    let claimed = state.db.claim_due_deliveries(now, now + LOCK_SECONDS, BATCH).await?;
    let count = claimed.len();
    let mut attempts = tokio::task::JoinSet::new();
    for delivery in claimed {
        let state = state.clone();
        attempts.spawn(async move { attempt(&state, delivery).await });
    }
    while let Some(done) = attempts.join_next().await {
        if let Ok(Err(error)) = done {
            tracing::warn!(%error, "delivery queue: could not record an attempt");
        }
    }
    Ok(count)
}

/// The wait before attempt `attempts + 1`: `backoff * 2^(attempts - 1)`, capped.
pub fn backoff(state: &AppState, attempts: i64) -> i64 {
    let doublings = u32::try_from(attempts.saturating_sub(1).clamp(0, 40)).unwrap_or(40);
    state.config.delivery_backoff.saturating_mul(1_i64 << doublings).min(state.config.delivery_backoff_max)
}

async fn attempt(state: &AppState, delivery: Delivery) -> StoreResult<()> {
    let attempts = delivery.attempts + 1;
    let outcome = match render(state, &delivery).await {
        Ok(form) => {
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let limits = Limits { timeout: ATTEMPT_TIMEOUT, ..Limits::default() };
            state.outbound.post_form(&delivery.target_url, &form, limits).await.map(|_| ()).map_err(|e| e.to_string())
        }
        Err(error) => Err(error),
    };
    let now = state.now();
    match outcome {
        Ok(()) => state.db.mark_delivered(&delivery.id, attempts, now).await,
        Err(error) if attempts >= state.config.delivery_max_attempts => {
            tracing::warn!(kind = %delivery.kind, %error, attempts, "delivery given up");
            state.db.reschedule_delivery(&delivery.id, attempts, now, &error, Some(now)).await?;
            let payload: Value = serde_json::from_str(&delivery.payload).unwrap_or(Value::Null);
            let client = payload.get("client_id").and_then(Value::as_str).unwrap_or("");
            let details = json!({
                "delivery_id": delivery.id,
                "target_url": delivery.target_url,
                "attempts": attempts,
                "error": error,
            });
            crate::audit::Initiator::system()
                .record(state, &format!("{}.failed", delivery.kind), ("client", client), details)
                .await
        }
        Err(error) => {
            let next = now + backoff(state, attempts);
            state.db.reschedule_delivery(&delivery.id, attempts, next, &error, None).await
        }
    }
}

/// The form of one delivery, made at each attempt (a logout token is minted afresh, so a late
/// retry never carries an expired one).
pub type Rendered<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<Vec<(String, String)>, String>> + Send + 'a>>;

/// Turns the stored payload of one kind of delivery into the form to POST. Each kind's owner
/// installs its renderer at start ([`install_renderer`]), so the queue depends on none of them.
pub trait Renderer: Send + Sync {
    fn kind(&self) -> &'static str;
    fn render<'a>(&'a self, state: &'a AppState, delivery_id: &'a str, payload: &'a Value) -> Rendered<'a>;
}

static RENDERERS: std::sync::Mutex<Vec<&'static dyn Renderer>> = std::sync::Mutex::new(Vec::new());

/// Registers the renderer of a kind (once per kind; later ones for the same kind are ignored).
pub fn install_renderer(renderer: &'static dyn Renderer) {
    let mut renderers = RENDERERS.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if !renderers.iter().any(|known| known.kind() == renderer.kind()) {
        renderers.push(renderer);
    }
}

/// The form to POST for a delivery, by kind.
async fn render(state: &AppState, delivery: &Delivery) -> Result<Vec<(String, String)>, String> {
    let payload: Value = serde_json::from_str(&delivery.payload).map_err(|e| format!("bad payload: {e}"))?;
    let renderer = {
        let renderers = RENDERERS.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        renderers.iter().find(|known| known.kind() == delivery.kind).copied()
    };
    match renderer {
        Some(renderer) => renderer.render(state, &delivery.id, &payload).await,
        None => Err(format!("unknown delivery kind {}", delivery.kind)),
    }
}
