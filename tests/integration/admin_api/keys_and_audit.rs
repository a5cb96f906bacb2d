//! Signing keys (one per algorithm, rotation) and the audit log (newest first, filters) through
//! the admin API.

use serde_json::json;

use super::api_client;
use crate::common::*;
use crate::on_both_backends;

on_both_backends!(keys_and_audit_log);

async fn keys_and_audit_log(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = admin_token(&server).await;
    let http = reqwest::Client::new();
    let keys = json(http.get(server.url("/api/v1/admin/keys")).bearer_auth(&admin).send().await.expect("keys")).await;
    // One key per offered algorithm (RS256, ES256, EdDSA), each active.
    let keys = keys.as_array().expect("list");
    assert_eq!(keys.len(), 3);
    assert!(keys.iter().all(|key| key["status"] == "active"), "{keys:?}");
    let rotated = http.post(server.url("/api/v1/admin/keys/rotate")).bearer_auth(&admin).send().await.expect("rotate");
    assert_eq!(rotated.status(), 200);
    let rotated = json(rotated).await;
    let kid = rotated["kid"].as_str().expect("kid");
    let keys = json(http.get(server.url("/api/v1/admin/keys")).bearer_auth(&admin).send().await.expect("keys")).await;
    assert!(keys.as_array().expect("list").iter().any(|k| k["kid"] == kid && k["status"] == "pending"));

    let before = server.clock_now();
    server.clock.advance(10);
    api_client(&server, &admin, json!({ "name": "audited" })).await;
    let all = json(http.get(server.url("/api/v1/admin/audit")).bearer_auth(&admin).send().await.expect("audit")).await;
    let actions: Vec<&str> =
        all["items"].as_array().expect("items").iter().map(|e| e["action"].as_str().expect("action")).collect();
    assert_eq!(actions.first(), Some(&"api_client.create"), "newest first: {actions:?}");
    assert!(actions.contains(&"key.rotate"));
    let entry = &all["items"][0];
    assert_eq!(entry["actor_type"], "user");
    assert!(entry["request_id"].is_string() && entry["ip"] == "127.0.0.1");
    let recent = json(
        http.get(server.url(&format!("/api/v1/admin/audit?from={}", before + 5)))
            .bearer_auth(&admin)
            .send()
            .await
            .expect("audit"),
    )
    .await;
    assert_eq!(recent["items"].as_array().expect("items").len(), 1, "time range filter");
    let by_action = json(
        http.get(server.url("/api/v1/admin/audit?action=key.rotate")).bearer_auth(&admin).send().await.expect("audit"),
    )
    .await;
    assert_eq!(by_action["items"].as_array().expect("items").len(), 1);
    assert_eq!(by_action["items"][0]["target_id"], kid);
}
