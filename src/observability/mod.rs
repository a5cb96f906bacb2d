//! Prometheus metrics: one process-wide recorder, rendered at `/metrics`.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the recorder once per process (every server in the process shares it).
pub fn install() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let buckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5];
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Full("http_request_duration_seconds".into()), &buckets)
                .ok()?
                .build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok()?;
            Some(handle)
        })
        .as_ref()
}

/// Folds recorded histogram samples into their buckets. Without it, samples pile up in memory
/// between two scrapes (and forever when nobody scrapes).
pub fn spawn_upkeep(every: std::time::Duration) {
    let Some(handle) = install() else { return };
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(every);
        loop {
            interval.tick().await;
            handle.run_upkeep();
        }
    });
}

pub fn render() -> String {
    install().map(PrometheusHandle::render).unwrap_or_default()
}

/// A low-cardinality route label: known paths as they are, ids in API paths as `{id}`.
pub fn route_label(path: &str) -> String {
    if !path.starts_with("/api/") {
        return match path {
            "/.well-known/openid-configuration"
            | "/.well-known/oauth-authorization-server"
            | "/.well-known/oauth-protected-resource/api"
            | "/jwks.json"
            | "/authorize"
            | "/token"
            | "/userinfo"
            | "/revoke"
            | "/introspect"
            | "/par"
            | "/logout"
            | "/login"
            | "/consent"
            | "/healthz"
            | "/readyz"
            | "/metrics"
            | "/docs"
            | "/openapi.json" => path.to_string(),
            _ if path.starts_with("/login/") => "/login/{provider}".into(),
            _ => "other".into(),
        };
    }
    path.split('/')
        .map(|segment| {
            let looks_like_id = segment.len() > 24 || segment.chars().filter(char::is_ascii_digit).count() > 3;
            if looks_like_id { "{id}" } else { segment }
        })
        .collect::<Vec<_>>()
        .join("/")
}

pub fn token_issued(grant_type: &'static str) {
    metrics::counter!("oxidp_tokens_issued_total", "grant_type" => grant_type).increment(1);
}

/// An imported (legacy) password hash was replaced by argon2id at a sign-in.
pub fn legacy_password_rehashed() {
    metrics::counter!("oxidp_legacy_password_rehashes_total").increment(1);
}

pub fn login_failed(channel: &'static str) {
    metrics::counter!("oxidp_login_failures_total", "channel" => channel).increment(1);
}

pub fn refresh_reuse_detected() {
    metrics::counter!("oxidp_refresh_reuse_detected_total").increment(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_labels_hide_ids() {
        assert_eq!(route_label("/token"), "/token");
        assert_eq!(
            route_label("/api/v1/admin/users/6f1c2a9e-1111-4222-8333-944455556666/ban"),
            "/api/v1/admin/users/{id}/ban"
        );
        assert_eq!(route_label("/nope/../x"), "other");
    }
}
