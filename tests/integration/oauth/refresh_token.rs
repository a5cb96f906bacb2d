//! The refresh-token grant (`src/oauth/grants/refresh_token.rs`): rotation, the concurrent-refresh
//! grace window, reuse detection, the rule for issuing refresh tokens at all, scope, lifetimes,
//! the binding to the client, and revocation of the grant through its refresh token. Elsewhere:
//! the JSON API's `/auth/refresh` and `/auth/logout` for the built-in `oxidp-api` client
//! (account_api/auth.rs), reuse across two instances (scale_out.rs), and the audit of reuse
//! (observability.rs).

use serde_json::json;

use super::{code_flow, expect_oauth_error, expect_token, introspect, revoke};
use crate::common::*;
use crate::on_both_backends;

on_both_backends!(
    refresh_rotates_and_old_token_within_grace_returns_same_successor,
    refresh_reuse_after_grace_revokes_the_family,
    concurrent_refreshes_agree_on_one_successor,
    refresh_token_only_with_offline_access_and_the_grant,
    refresh_can_narrow_scope_but_not_widen_it,
    refresh_tokens_expire_sliding_and_absolute,
    refresh_token_of_another_client_is_refused,
    revoking_the_refresh_token_revokes_the_grant,
);

pub(super) async fn setup(backend: Backend) -> (TestServer, TestClient, Browser) {
    let server = TestServer::start(backend).await;
    server.user("alice@example.com", PASSWORD).await;
    let client = server.client(&["--name", "App", "--redirect-uri", REDIRECT]).await;
    (server, client, Browser::new())
}

async fn first_tokens(server: &TestServer, client: &TestClient, browser: &Browser) -> serde_json::Value {
    let (code, pkce) = obtain_code(server, browser, client, &[]).await;
    let response = redeem(server, client, &code, &pkce.verifier).await;
    assert_eq!(response.status(), 200);
    json(response).await
}

pub(super) async fn refresh(server: &TestServer, client: &TestClient, token: &str) -> reqwest::Response {
    token_request(server, client, &[("grant_type", "refresh_token"), ("refresh_token", token)]).await
}

pub(super) async fn is_active(server: &TestServer, client: &TestClient, token: &str) -> bool {
    let answer = json(client_post(server, "/introspect", client, &[("token", token)]).await).await;
    answer["active"].as_bool().expect("active is a boolean")
}

async fn refresh_rotates_and_old_token_within_grace_returns_same_successor(backend: Backend) {
    let (server, client, browser) = setup(backend).await;
    let first = first_tokens(&server, &client, &browser).await;
    let original = first["refresh_token"].as_str().expect("refresh token");

    let response = refresh(&server, &client, original).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let second = json(response).await;
    let successor = second["refresh_token"].as_str().expect("rotated refresh token");
    assert_ne!(successor, original, "refresh tokens rotate");
    assert!(second["id_token"].is_string(), "openid grants get a fresh ID token");
    assert!(!is_active(&server, &client, original).await, "a rotated token is no longer active");

    // Inside the grace window the old token yields the same successor (a concurrent refresh).
    server.clock.advance(3);
    let again = json(refresh(&server, &client, original).await).await;
    assert_eq!(again["refresh_token"].as_str(), Some(successor));
    assert!(is_active(&server, &client, successor).await);

    let third = json(refresh(&server, &client, successor).await).await;
    assert!(third["access_token"].is_string());
}

async fn refresh_reuse_after_grace_revokes_the_family(backend: Backend) {
    let (server, client, browser) = setup(backend).await;
    let first = first_tokens(&server, &client, &browser).await;
    let original = first["refresh_token"].as_str().expect("refresh token");
    let second = json(refresh(&server, &client, original).await).await;
    let successor = second["refresh_token"].as_str().expect("successor").to_string();
    let access = second["access_token"].as_str().expect("access").to_string();
    assert!(is_active(&server, &client, &access).await);

    server.clock.advance(6);
    let reuse = refresh(&server, &client, original).await;
    assert_eq!(reuse.status(), 400);
    assert_eq!(json(reuse).await["error"], "invalid_grant");

    // The whole family is gone: the successor, and the access tokens of the grant.
    let response = refresh(&server, &client, &successor).await;
    assert_eq!(json(response).await["error"], "invalid_grant");
    assert!(!is_active(&server, &client, &access).await);
    assert!(!is_active(&server, &client, first["access_token"].as_str().expect("first access")).await);
}

async fn concurrent_refreshes_agree_on_one_successor(backend: Backend) {
    let (server, client, browser) = setup(backend).await;
    let first = first_tokens(&server, &client, &browser).await;
    let original = first["refresh_token"].as_str().expect("refresh token").to_string();
    let mut requests = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let (url, id, secret, token) =
            (server.url("/token"), client.id.clone(), client.secret.clone(), original.clone());
        requests.spawn(async move {
            reqwest::Client::new()
                .post(url)
                .basic_auth(id, secret)
                .form(&[("grant_type", "refresh_token"), ("refresh_token", token.as_str())])
                .send()
                .await
                .expect("refresh")
        });
    }
    let mut successors = Vec::new();
    while let Some(response) = requests.join_next().await {
        let response = response.expect("task");
        assert_eq!(response.status(), 200);
        successors.push(json(response).await["refresh_token"].as_str().expect("successor").to_string());
    }
    successors.dedup();
    assert_eq!(successors.len(), 1, "every concurrent refresh got the same successor");
    assert!(is_active(&server, &client, &successors[0]).await);
}

async fn refresh_token_only_with_offline_access_and_the_grant(backend: Backend) {
    let (server, client, browser) = setup(backend).await;
    let (code, pkce) = obtain_code(&server, &browser, &client, &[("scope", "openid email")]).await;
    let tokens = json(redeem(&server, &client, &code, &pkce.verifier).await).await;
    assert!(tokens["access_token"].is_string());
    assert!(tokens.get("refresh_token").is_none(), "no offline_access, no refresh token: {tokens}");

    let no_grant = server
        .client(&["--name", "No refresh", "--redirect-uri", REDIRECT, "--grant-types", "authorization_code"])
        .await;
    let (code, pkce) = obtain_code(&server, &browser, &no_grant, &[]).await;
    let tokens = json(redeem(&server, &no_grant, &code, &pkce.verifier).await).await;
    assert!(tokens.get("refresh_token").is_none(), "client without the refresh_token grant: {tokens}");
}

async fn refresh_can_narrow_scope_but_not_widen_it(backend: Backend) {
    let (server, client, browser) = setup(backend).await;
    let first = first_tokens(&server, &client, &browser).await;
    let original = first["refresh_token"].as_str().expect("refresh token");
    let narrowed = token_request(
        &server,
        &client,
        &[("grant_type", "refresh_token"), ("refresh_token", original), ("scope", "openid")],
    )
    .await;
    assert_eq!(narrowed.status(), 200);
    let narrowed = json(narrowed).await;
    assert_eq!(narrowed["scope"], "openid");
    let successor = narrowed["refresh_token"].as_str().expect("successor");
    let widened = token_request(
        &server,
        &client,
        &[("grant_type", "refresh_token"), ("refresh_token", successor), ("scope", "openid phone")],
    )
    .await;
    assert_eq!(widened.status(), 400);
    assert_eq!(json(widened).await["error"], "invalid_scope");
}

async fn refresh_tokens_expire_sliding_and_absolute(backend: Backend) {
    let server = TestServer::start_with(backend, |config| {
        config.refresh_token_ttl = 1000;
        config.refresh_token_max_ttl = 2500;
    })
    .await;
    server.user("alice@example.com", PASSWORD).await;
    let client = server.client(&["--name", "App", "--redirect-uri", REDIRECT]).await;
    let browser = Browser::new();
    let first = first_tokens(&server, &client, &browser).await;
    let mut token = first["refresh_token"].as_str().expect("refresh").to_string();
    // Sliding: each use inside 1000 s extends it...
    for _ in 0..2 {
        server.clock.advance(900);
        let response = refresh(&server, &client, &token).await;
        assert_eq!(response.status(), 200);
        token = json(response).await["refresh_token"].as_str().expect("successor").to_string();
    }
    // ...until the family's absolute end (2500 s after the code exchange).
    server.clock.advance(800);
    let response = refresh(&server, &client, &token).await;
    assert_eq!(response.status(), 400);
    assert_eq!(json(response).await["error"], "invalid_grant");

    // An unused token expires after the sliding lifetime.
    let fresh = first_tokens(&server, &client, &browser).await;
    server.clock.advance(1001);
    let response = refresh(&server, &client, fresh["refresh_token"].as_str().expect("refresh")).await;
    assert_eq!(json(response).await["error"], "invalid_grant");
}

async fn refresh_token_of_another_client_is_refused(backend: Backend) {
    let (server, client, browser) = setup(backend).await;
    let other = server.client(&["--name", "Other", "--redirect-uri", REDIRECT]).await;
    let first = first_tokens(&server, &client, &browser).await;
    let stolen = first["refresh_token"].as_str().expect("refresh");
    let response = refresh(&server, &other, stolen).await;
    assert_eq!(response.status(), 400);
    assert_eq!(json(response).await["error"], "invalid_grant");
    // The rightful client can still use it.
    assert_eq!(refresh(&server, &client, stolen).await.status(), 200);
}

async fn revoking_the_refresh_token_revokes_the_grant(backend: Backend) {
    let flow = code_flow(backend).await;
    let (server, client) = (&flow.server, &flow.client);

    // A refresh first, so the grant has two access tokens and a rotated refresh token.
    let response =
        token_request(server, client, &[("grant_type", "refresh_token"), ("refresh_token", &flow.refresh_token)]).await;
    let refreshed = expect_token(response).await;
    let second_access = refreshed["access_token"].as_str().expect("access").to_string();
    let second_refresh = refreshed["refresh_token"].as_str().expect("refresh").to_string();
    for token in [&flow.access_token, &second_access, &second_refresh] {
        assert_eq!(introspect(server, client, token).await["active"], true);
    }

    revoke(server, client, &second_refresh).await;
    for token in [&flow.access_token, &second_access, &second_refresh, &flow.refresh_token] {
        assert_eq!(introspect(server, client, token).await, json!({ "active": false }), "the whole grant is revoked");
    }
    let http = reqwest::Client::new();
    for token in [&flow.access_token, &second_access] {
        let response = http.get(server.url("/userinfo")).bearer_auth(token).send().await.expect("userinfo");
        assert_eq!(response.status(), 401);
    }
    let response =
        token_request(server, client, &[("grant_type", "refresh_token"), ("refresh_token", &second_refresh)]).await;
    expect_oauth_error(response, 400, "invalid_grant").await;
}
