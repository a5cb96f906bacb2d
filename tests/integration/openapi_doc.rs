//! The OpenAPI document: the checked-in copy is current, every operation is complete, every
//! documented operation exists on the running server, and the docs pages carry their CSP.

use serde_json::Value;

use crate::common::*;
use crate::on_both_backends;

on_both_backends!(documented_operations_exist_and_answer_problem_json, docs_pages_are_served_with_their_own_csp);

#[test]
fn checked_in_document_is_current() {
    let generated = oxidp::api::document(&oxidp::config::Config::default());
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json");
    let stored = std::fs::read_to_string(path).expect("openapi/openapi.json exists");
    assert!(
        generated.trim() == stored.trim(),
        "openapi/openapi.json is stale: regenerate it with `cargo run -- openapi > openapi/openapi.json`"
    );
}

fn document() -> Value {
    serde_json::from_str(&oxidp::api::document(&oxidp::config::Config::default())).expect("JSON")
}

fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("path item") {
            out.push((path.clone(), method.clone(), operation.clone()));
        }
    }
    out
}

#[test]
fn every_operation_is_complete() {
    let doc = document();
    let operations = operations(&doc);
    assert!(operations.len() >= 13, "all account operations are documented");
    for (path, method, operation) in &operations {
        let name = format!("{method} {path}");
        assert!(operation["summary"].as_str().is_some_and(|s| !s.is_empty()), "{name} has a summary");
        let responses = operation["responses"].as_object().expect("responses");
        for status in ["400", "401", "403", "404", "413", "429"] {
            let content = &responses.get(status).unwrap_or_else(|| panic!("{name} documents {status}"))["content"];
            assert!(content.get("application/problem+json").is_some(), "{name} {status} is problem JSON");
        }
        if path.starts_with("/users/me") {
            let security = operation["security"].as_array().unwrap_or_else(|| panic!("{name} has security"));
            let schemes: Vec<&str> =
                security.iter().flat_map(|s| s.as_object().expect("req").keys()).map(String::as_str).collect();
            for scheme in ["bearer", "api_key", "oauth2"] {
                assert!(schemes.contains(&scheme), "{name} accepts {scheme}");
            }
        }
        if let Some(body) = operation.get("requestBody") {
            let types: Vec<&String> = body["content"].as_object().expect("content").keys().collect();
            assert!(types.iter().all(|t| t.starts_with("application/json")), "{name} takes JSON: {types:?}");
        }
        if path.starts_with("/admin") {
            let security = operation["security"].as_array().unwrap_or_else(|| panic!("{name} has security"));
            let schemes: Vec<&str> =
                security.iter().flat_map(|s| s.as_object().expect("req").keys()).map(String::as_str).collect();
            for scheme in ["bearer", "api_key", "api_client"] {
                assert!(schemes.contains(&scheme), "{name} accepts {scheme}");
            }
        }
    }
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["api_key"]["name"], "X-API-Key");
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    assert_eq!(schemes["oauth2"]["flows"]["authorizationCode"]["authorizationUrl"], "/authorize");
}

async fn documented_operations_exist_and_answer_problem_json(backend: Backend) {
    // The internal routes exist only while a secret is configured (without one they answer 404).
    let server = TestServer::start_with(backend, |c| c.internal_secret = Some("internal-secret".into())).await;
    let served: Value = reqwest::get(server.url("/openapi.json")).await.expect("spec").json().await.expect("json");
    assert_eq!(served["servers"][0]["url"], format!("{}/api/v1", server.base).as_str());
    let http = reqwest::Client::new();
    for (path, method, _) in operations(&document()) {
        let url = server.url(&format!("/api/v1{}", path.replace("{id}", "00000000-0000-0000-0000-000000000000")));
        let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
        // No credentials and an empty JSON object: every operation exists and refuses with problem JSON.
        let response = http.request(method.clone(), &url).json(&serde_json::json!({})).send().await.expect("request");
        let status = response.status().as_u16();
        assert!(status != 404 && status != 405, "{method} {path} is routed (got {status})");
        assert!((400..500).contains(&status), "{method} {path}: {status}");
        assert_eq!(response.headers()["content-type"], "application/problem+json", "{method} {path}");
        let body: Value = response.json().await.expect("problem");
        assert!(body["request_id"].is_string() && body["code"].is_string(), "{method} {path}: {body}");
    }
    // Routes that are not documented do not exist.
    for path in ["/api/v1/users", "/api/v1/users/me/unknown", "/api/v1/auth"] {
        let response = http.get(server.url(path)).send().await.expect("request");
        assert_eq!(response.status(), 404, "{path}");
        assert_eq!(response.headers()["content-type"], "application/problem+json");
    }
}

async fn docs_pages_are_served_with_their_own_csp(backend: Backend) {
    let server = TestServer::start(backend).await;
    for path in ["/docs", "/docs/oauth-receiver.html"] {
        let response = reqwest::get(server.url(path)).await.expect("docs");
        assert_eq!(response.status(), 200, "{path}");
        let csp = response.headers()["content-security-policy"].to_str().expect("csp").to_string();
        let html = response.text().await.expect("html");
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(
            !csp.contains("'unsafe-inline'")
                || !csp.split(';').any(|d| d.trim().starts_with("script-src") && d.contains("unsafe-inline"))
        );
        // Each inline script is allowed by exactly its hash.
        use base64::Engine;
        use sha2::Digest;
        let mut rest = html.as_str();
        while let Some(open) = rest.find("<script") {
            let tag = &rest[open..];
            let body = &tag[tag.find('>').expect("tag end") + 1..];
            let close = body.find("</script>").expect("close");
            let content = &body[..close];
            rest = &body[close + 9..];
            let hash = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(content.as_bytes()));
            assert!(csp.contains(&format!("'sha256-{hash}'")), "{path}: script allowed by hash");
        }
    }
    let html = reqwest::get(server.url("/docs")).await.expect("docs").text().await.expect("html");
    assert!(html.contains("usePkceWithAuthorizationCodeGrant: true") && html.contains("oxidp-api"));
}
