use poem::http::StatusCode;
use poem::http::header::CONTENT_TYPE;
use poem::web::Data;
use poem::{Response, handler};
use serde_json::json;

use crate::state::SharedState;

/// Prometheus metrics; pool gauges are sampled at scrape time.
#[handler]
pub fn metrics(Data(state): Data<&SharedState>) -> Response {
    let (size, idle) = state.db.pool_usage();
    ::metrics::gauge!("oxidp_db_pool_connections", "state" => "idle").set(idle as f64);
    ::metrics::gauge!("oxidp_db_pool_connections", "state" => "in_use")
        .set((size as usize).saturating_sub(idle) as f64);
    Response::builder().header(CONTENT_TYPE, "text/plain; version=0.0.4").body(crate::observability::render())
}

/// The process is alive.
#[handler]
pub fn healthz() -> Response {
    Response::builder().header(CONTENT_TYPE, "application/json").body(r#"{"status":"ok"}"#)
}

/// Ready to serve: the database answers and a signing key is active.
#[handler]
pub async fn readyz(Data(state): Data<&SharedState>) -> Response {
    let database = state.db.ping().await;
    let keys = state.keys.has_active_key();
    // Redis is reported, not required: without it logins fail closed but the rest serves.
    let cache_reachable = state.kv.is_reachable().await;
    let ready = database && keys;
    let body = json!({
        "status": if ready { "ready" } else { "unavailable" },
        "database": if database { "ok" } else { "unavailable" },
        "signing_keys": if keys { "ok" } else { "missing" },
        "cache": state.kv.backend(),
        "sessions": state.sessions.backend(),
        "redis": match &state.kv {
            crate::kv::Kv::Memory(_) => "not configured",
            crate::kv::Kv::Redis(_) if cache_reachable => "ok",
            crate::kv::Kv::Redis(_) => "unavailable",
        },
    });
    Response::builder()
        .status(if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE })
        .header(CONTENT_TYPE, "application/json")
        .body(body.to_string())
}
