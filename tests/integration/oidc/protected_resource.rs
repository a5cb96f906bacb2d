//! oxidp's own API as an OAuth protected resource (RFC 9728, issue #14 item 9): its metadata at
//! `/.well-known/oauth-protected-resource/api`, and the API's 401 answers name it in their
//! `WWW-Authenticate` challenge, so a client can go from a refusal to the authorization server.

use serde_json::{Value, json};

use crate::common::*;
use crate::on_both_backends;

on_both_backends!(metadata_names_the_issuer_scopes_and_bearer_methods, api_401_answers_point_at_the_metadata);

async fn metadata_names_the_issuer_scopes_and_bearer_methods(backend: Backend) {
    let server = TestServer::start(backend).await;
    let response = reqwest::get(server.url("/.well-known/oauth-protected-resource/api")).await.expect("metadata");
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let document = json(response).await;
    let issuer = &server.base;
    assert_eq!(document["resource"], format!("{issuer}/api"), "the audience of API access tokens");
    assert_eq!(document["authorization_servers"], json!([issuer]));
    assert_eq!(document["scopes_supported"], json!(["account", "admin"]));
    assert_eq!(document["bearer_methods_supported"], json!(["header"]));
    assert_eq!(document["resource_name"], "oxidp API");
    assert_eq!(document["resource_documentation"], format!("{issuer}/docs"));
    // The authorization server it names is this one, and it issues tokens with those scopes.
    let discovery = json(reqwest::get(server.url("/.well-known/oauth-authorization-server")).await.expect("as")).await;
    assert_eq!(discovery["issuer"], document["authorization_servers"][0]);
    for scope in ["account", "admin"] {
        assert!(discovery["scopes_supported"].as_array().expect("scopes").contains(&json!(scope)), "{scope}");
    }
}

/// The `resource_metadata` parameter of a Bearer challenge.
fn resource_metadata(challenge: &str) -> String {
    assert!(challenge.starts_with("Bearer "), "{challenge}");
    let (_, rest) = challenge.split_once("resource_metadata=\"").unwrap_or_else(|| panic!("{challenge}"));
    rest.split('"').next().expect("closing quote").to_string()
}

async fn api_401_answers_point_at_the_metadata(backend: Backend) {
    let server = TestServer::start(backend).await;
    let http = reqwest::Client::new();
    let missing = http.get(server.url("/api/v1/users/me")).send().await.expect("GET");
    let invalid = http.get(server.url("/api/v1/users/me")).bearer_auth("not-a-token").send().await.expect("GET");
    let admin = http.get(server.url("/api/v1/admin/users")).bearer_auth("not-a-token").send().await.expect("GET");
    for response in [missing, invalid, admin] {
        assert_eq!(response.status(), 401);
        let challenge = response.headers()["www-authenticate"].to_str().expect("ascii").to_string();
        let url = resource_metadata(&challenge);
        assert_eq!(url, format!("{}/.well-known/oauth-protected-resource/api", server.base));
        let problem: Value = response.json().await.expect("problem JSON");
        assert_eq!(problem["status"], 401);
        let document = json(reqwest::get(&url).await.expect("metadata")).await;
        assert_eq!(document["resource"], format!("{}/api", server.base));
    }
    // Other API errors carry no challenge.
    let not_found = http.get(server.url("/api/v1/nothing-here")).send().await.expect("GET");
    assert_eq!(not_found.status(), 404);
    assert!(not_found.headers().get("www-authenticate").is_none());
}
