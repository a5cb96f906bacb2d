//! /userinfo (`src/oidc/userinfo.rs`) and the access tokens it accepts: the claims match the ID
//! token; tampered, expired and missing tokens are refused, and an ID token is no access token
//! there, at the account API or at introspection (RFC 9068 §4, RFC 8725 §3.11).

use serde_json::json;

use crate::common::*;
use crate::on_both_backends;

on_both_backends!(userinfo_matches_id_token_and_rejects_bad_tokens, id_token_is_not_an_access_token,);

const ALICE: &str = "alice@example.com";

async fn setup(backend: Backend) -> (TestServer, TestClient, Browser) {
    let server = TestServer::start(backend).await;
    server.user("alice@example.com", PASSWORD).await;
    let client = server.client(&["--name", "Test App", "--redirect-uri", REDIRECT]).await;
    (server, client, Browser::new())
}

async fn userinfo_matches_id_token_and_rejects_bad_tokens(backend: Backend) {
    let (server, client, browser) = setup(backend).await;
    let (code, pkce) = obtain_code(&server, &browser, &client, &[]).await;
    let body = json(redeem(&server, &client, &code, &pkce.verifier).await).await;
    let access_token = body["access_token"].as_str().expect("access token");
    let id = server.verify_jwt(body["id_token"].as_str().expect("id token"), &client.id, "JWT").await;

    let http = reqwest::Client::new();
    let info = http.get(server.url("/userinfo")).bearer_auth(access_token).send().await.expect("userinfo");
    assert_eq!(info.status(), 200);
    let info = json(info).await;
    assert_eq!(info["sub"], id["sub"]);
    assert_eq!(info["email"], "alice@example.com");
    assert_eq!(info["name"], "Test User");

    let mut tampered = access_token.to_string();
    tampered.pop();
    tampered.push(if access_token.ends_with('A') { 'B' } else { 'A' });
    for bad in [tampered.as_str(), "not-a-jwt", id["sub"].as_str().expect("sub")] {
        let response = http.get(server.url("/userinfo")).bearer_auth(bad).send().await.expect("userinfo");
        assert_eq!(response.status(), 401);
        let challenge = response.headers()["www-authenticate"].to_str().expect("header").to_string();
        assert!(challenge.starts_with("Bearer ") && challenge.contains("error=\"invalid_token\""), "{challenge}");
    }
    // The ID token is not an access token.
    let response = http
        .get(server.url("/userinfo"))
        .bearer_auth(body["id_token"].as_str().expect("id"))
        .send()
        .await
        .expect("userinfo");
    assert_eq!(response.status(), 401);
    let response = http.get(server.url("/userinfo")).send().await.expect("userinfo");
    assert_eq!(response.status(), 401);
    // Expired: the clock moves past the token's lifetime.
    server.clock.advance(901);
    let response = http.get(server.url("/userinfo")).bearer_auth(access_token).send().await.expect("userinfo");
    assert_eq!(response.status(), 401);
}

async fn id_token_is_not_an_access_token(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.user(ALICE, PASSWORD).await;
    // A first-party client may ask for the account API: its ID token names the same user.
    let client = server
        .client(&["--name", "First", "--redirect-uri", REDIRECT, "--first-party", "--scopes", "openid email account"])
        .await;
    let browser = Browser::new();
    let (code, pkce) = obtain_code(&server, &browser, &client, &[("scope", "openid email account")]).await;
    let tokens = json(redeem(&server, &client, &code, &pkce.verifier).await).await;
    let (access, id_token) =
        (tokens["access_token"].as_str().expect("access"), tokens["id_token"].as_str().expect("id token"));
    let http = reqwest::Client::new();
    let me = |token: &str| http.get(server.url("/api/v1/users/me")).bearer_auth(token.to_string()).send();
    let userinfo = |token: &str| http.get(server.url("/userinfo")).bearer_auth(token.to_string()).send();
    assert_eq!(me(access).await.expect("me").status(), 200, "the access token works");
    assert_eq!(userinfo(access).await.expect("userinfo").status(), 200);
    assert_eq!(me(id_token).await.expect("me").status(), 401, "the ID token is no access token");
    assert_eq!(userinfo(id_token).await.expect("userinfo").status(), 401);
    let answer = json(client_post(&server, "/introspect", &client, &[("token", id_token)]).await).await;
    assert_eq!(answer, json!({ "active": false }));
}
