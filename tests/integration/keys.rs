//! Signing keys: JWKS contents, two-step rotation, and instances picking up keys without restart.

use serde_json::Value;

use crate::common::*;
use crate::on_both_backends;

on_both_backends!(
    jwks_publishes_public_keys_only,
    rotation_publishes_first_then_signs,
    second_instance_picks_up_a_rotated_key
);

async fn jwks(server: &TestServer) -> Vec<Value> {
    let response = reqwest::get(server.url("/jwks.json")).await.expect("jwks");
    assert_eq!(response.status(), 200);
    let cache = response.headers()["cache-control"].to_str().expect("header").to_string();
    assert!(cache.contains("max-age=300"), "{cache}");
    json(response).await["keys"].as_array().expect("keys").clone()
}

/// The RS256 keys (ES256 and EdDSA keys are tested in signing_algs.rs and rotate on their own).
async fn rsa_jwks(server: &TestServer) -> Vec<Value> {
    jwks(server).await.into_iter().filter(|key| key["alg"] == "RS256").collect()
}

fn kids(keys: &[Value]) -> Vec<String> {
    keys.iter().map(|key| key["kid"].as_str().expect("kid").to_string()).collect()
}

async fn client_token(server: &TestServer, client: &TestClient) -> String {
    let response = token_request(server, client, &[("grant_type", "client_credentials")]).await;
    assert_eq!(response.status(), 200);
    json(response).await["access_token"].as_str().expect("token").to_string()
}

fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token).expect("header").kid.expect("kid")
}

async fn jwks_publishes_public_keys_only(backend: Backend) {
    let server = TestServer::start(backend).await;
    let all = jwks(&server).await;
    for key in &all {
        let key = key.as_object().expect("object");
        for private in ["d", "p", "q", "dp", "dq", "qi"] {
            assert!(!key.contains_key(private), "private member {private} published");
        }
    }
    let keys = rsa_jwks(&server).await;
    assert_eq!(keys.len(), 1);
    let key = keys[0].as_object().expect("object");
    assert_eq!(key["kty"], "RSA");
    assert_eq!(key["alg"], "RS256");
    assert_eq!(key["use"], "sig");
    for private in ["d", "p", "q", "dp", "dq", "qi"] {
        assert!(!key.contains_key(private), "private member {private} published");
    }
    // The kid is the RFC 7638 thumbprint of the published key.
    let jwk = josekit::jwk::Jwk::from_map(key.clone()).expect("jwk");
    assert_eq!(oxidp::keys::thumbprint(&jwk).as_deref(), key["kid"].as_str());
    let modulus = oxidp::crypto::b64url_decode(key["n"].as_str().expect("n")).expect("base64url");
    assert_eq!(modulus.len() * 8, 2048);
}

async fn rotation_publishes_first_then_signs(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = server.client(&["--name", "svc", "--grant-types", "client_credentials", "--scopes", "api"]).await;
    let old_token = client_token(&server, &client).await;
    let old_kid = kid_of(&old_token);

    let rotated = server.state.keys.rotate().await.expect("rotate");
    assert_eq!(rotated.activates_at, server.clock_now() + 300 + 30, "JWKS max-age plus the reload interval");
    let published = kids(&rsa_jwks(&server).await);
    assert!(published.contains(&old_kid) && published.contains(&rotated.kid), "both published: {published:?}");
    assert_eq!(kid_of(&client_token(&server, &client).await), old_kid, "the new key does not sign before activation");

    server.clock.advance(331);
    let new_token = client_token(&server, &client).await;
    assert_eq!(kid_of(&new_token), rotated.kid, "the new key signs after activation");
    // Tokens of the old key still verify against the JWKS, offline.
    server.verify_jwt(&old_token, &client.id, "at+jwt").await;
    server.verify_jwt(&new_token, &client.id, "at+jwt").await;
    let listed = server.state.keys.list().await.expect("list");
    let status_of = |kid: &str| listed.iter().find(|k| k.kid == kid).map(|k| k.status).expect("listed");
    assert_eq!(status_of(&old_kid), "retired");
    assert_eq!(status_of(&rotated.kid), "active");

    // Once every token the old key signed has expired, it is no longer published.
    server.clock.advance(901);
    assert_eq!(kids(&rsa_jwks(&server).await), vec![rotated.kid.clone()]);
}

async fn second_instance_picks_up_a_rotated_key(backend: Backend) {
    let first = TestServer::start_with(backend, |config| config.key_refresh_interval = 1).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let second = TestServer::start_on(first.database_url.clone(), dir, |config| config.key_refresh_interval = 1).await;
    oxidp::server::spawn_key_reload(second.state.clone());
    assert_eq!(kids(&jwks(&first).await), kids(&jwks(&second).await), "one key shared by both instances");

    let rotated = first.state.keys.rotate().await.expect("rotate");
    let mut seen = false;
    for _ in 0..50 {
        if kids(&jwks(&second).await).contains(&rotated.kid) {
            seen = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(seen, "the second instance published the key rotated at the first without a restart");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_rotated_at_one_instance_is_used_by_the_other() {
    let (a, b) = pair().await;
    oxidp::server::spawn_key_reload(b.state.clone());
    let client = a.client(&["--name", "svc", "--grant-types", "client_credentials", "--scopes", "api"]).await;
    let rotated = a.state.keys.rotate().await.expect("rotate");
    // Published by B (reloads every OXIDP_KEY_REFRESH_INTERVAL; the test reloads at once).
    b.state.keys.reload().await.expect("reload");
    let jwks: serde_json::Value = reqwest::get(b.url("/jwks.json")).await.expect("jwks").json().await.expect("json");
    assert!(jwks["keys"].as_array().expect("keys").iter().any(|k| k["kid"] == rotated.kid.as_str()));
    a.clock.advance(331);
    let token = json(token_request(&b, &client, &[("grant_type", "client_credentials")]).await).await;
    let kid = jsonwebtoken::decode_header(token["access_token"].as_str().expect("token")).expect("header").kid;
    assert_eq!(kid.as_deref(), Some(rotated.kid.as_str()), "B signs with the key rotated at A once it is active");
    a.verify_jwt(token["access_token"].as_str().expect("token"), &client.id, "at+jwt").await;
}
