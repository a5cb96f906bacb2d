//! Two instances of one deployment (one PostgreSQL, one Redis, one server secret): everything a
//! user or client does at one instance holds at the other. And the housekeeping purge.

use serde_json::json;

use crate::common::*;
use crate::on_both_backends;

async fn pair() -> (TestServer, TestServer) {
    assert!(std::env::var("TEST_REDIS_URL").is_ok(), "TEST_REDIS_URL is not set: run the suite with scripts/test");
    let a = TestServer::start(Backend::Postgres).await;
    let b = a.second_instance().await;
    (a, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_and_sessions_cross_instances() {
    let (a, b) = pair().await;
    a.user("alice@example.com", PASSWORD).await;
    let client = a.client(&["--name", "App", "--redirect-uri", REDIRECT]).await;
    let browser = Browser::new();

    // Authorize at A (login, consent), redeem the code at B.
    let (code, pkce) = obtain_code(&a, &browser, &client, &[]).await;
    let tokens = json(redeem(&b, &client, &code, &pkce.verifier).await).await;
    let access = tokens["access_token"].as_str().expect("access").to_string();
    let refresh = tokens["refresh_token"].as_str().expect("refresh").to_string();
    a.verify_jwt(&access, &client.id, "at+jwt").await;

    // The session made at A is valid at B (cookies ignore the port): prompt=none gives a code.
    let silent = authorize_url(&b, &client, &pkce, &[("prompt", "none")]);
    let redirect = location(&browser.get(&silent).await);
    assert!(query_of(&redirect).contains_key("code"), "session from A accepted at B: {redirect}");

    // Refresh at B, then reuse the old refresh token at A after the grace window: family revoked.
    let rotated =
        json(token_request(&b, &client, &[("grant_type", "refresh_token"), ("refresh_token", &refresh)]).await).await;
    let successor = rotated["refresh_token"].as_str().expect("successor").to_string();
    a.clock.advance(6);
    let reuse = token_request(&a, &client, &[("grant_type", "refresh_token"), ("refresh_token", &refresh)]).await;
    assert_eq!(json(reuse).await["error"], "invalid_grant");
    let after = token_request(&b, &client, &[("grant_type", "refresh_token"), ("refresh_token", &successor)]).await;
    assert_eq!(json(after).await["error"], "invalid_grant", "the family is revoked everywhere");

    // Revoke at A, introspect at B.
    let (code, pkce) = obtain_code(&a, &browser, &client, &[]).await;
    let fresh = json(redeem(&a, &client, &code, &pkce.verifier).await).await;
    let token = fresh["access_token"].as_str().expect("access");
    assert_eq!(json(client_post(&b, "/introspect", &client, &[("token", token)]).await).await["active"], true);
    assert_eq!(client_post(&a, "/revoke", &client, &[("token", token)]).await.status(), 200);
    assert_eq!(json(client_post(&b, "/introspect", &client, &[("token", token)]).await).await["active"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn brute_force_waits_and_limits_count_across_instances() {
    let (a, b) = pair().await;
    a.user("alice@example.com", PASSWORD).await;
    let login = |server: &TestServer, password: &str| {
        let url = server.url("/api/v1/auth/login");
        let body = json!({ "email": "alice@example.com", "password": password });
        async move {
            let response = reqwest::Client::new().post(url).json(&body).send().await.expect("login");
            let retry_after = response.headers().get("retry-after").map(|v| v.to_str().expect("header").to_string());
            (response.status().as_u16(), retry_after)
        }
    };
    let wrong = "wrong password!!";
    for server in [&a, &b, &a] {
        assert_eq!(login(server, wrong).await, (401, None));
    }
    // The wait the third failure set (at A) holds at B, and the next one's at A.
    assert_eq!(login(&b, PASSWORD).await, (429, Some("1".into())));
    a.clock.advance(1);
    assert_eq!(login(&b, wrong).await, (401, None));
    assert_eq!(login(&a, PASSWORD).await, (429, Some("2".into())));
    a.clock.advance(2);
    assert_eq!(login(&a, wrong).await, (401, None));
    // Five failures across both instances lock the account at both.
    let window = a.state.config.login_lock_window;
    assert_eq!(login(&a, PASSWORD).await, (429, Some((window - 3).to_string())));
    assert_eq!(login(&b, PASSWORD).await, (429, Some((window - 3).to_string())));
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

on_both_backends!(housekeeping_purges_on_time_and_not_before);

async fn housekeeping_purges_on_time_and_not_before(backend: Backend) {
    use oxidp::store::GrantStore;
    let server = TestServer::start_with(backend, |config| {
        config.refresh_token_ttl = 1000;
        config.refresh_token_max_ttl = 2000;
    })
    .await;
    server.user("alice@example.com", PASSWORD).await;
    let client = server.client(&["--name", "App", "--redirect-uri", REDIRECT]).await;
    let browser = Browser::new();
    let (code, pkce) = obtain_code(&server, &browser, &client, &[]).await;
    let tokens = json(redeem(&server, &client, &code, &pkce.verifier).await).await;
    let refresh = tokens["refresh_token"].as_str().expect("refresh").to_string();
    let hash = server.state.secret.keyed_hash(oxidp::oauth::REFRESH_HASH_PURPOSE, &refresh);

    // Just before the family's absolute end (2000 s) nothing it needs is gone: a code replay
    // is still recognised, and the refresh token is still known.
    server.clock.advance(1999);
    let purged = oxidp::housekeeping::purge(&server.state).await.expect("purge");
    assert_eq!(purged.codes, 0, "codes stay while their tokens may live");
    assert_eq!(purged.grants, 0);
    assert_eq!(purged.sessions, 0, "the browser session is inside its idle timeout (3600 s)");
    assert!(server.state.db.refresh_token_by_hash(&hash).await.expect("read").is_some());
    let replay = redeem(&server, &client, &code, &pkce.verifier).await;
    assert_eq!(json(replay).await["error"], "invalid_grant");

    server.clock.advance(100);
    let purged = oxidp::housekeeping::purge(&server.state).await.expect("purge");
    assert!(purged.codes >= 1 && purged.grants >= 1, "{purged:?}");
    assert!(
        server.state.db.refresh_token_by_hash(&hash).await.expect("read").is_none(),
        "refresh tokens go with their family"
    );
    server.clock.advance(3601 - 2099);
    let purged = oxidp::housekeeping::purge(&server.state).await.expect("purge");
    match backend {
        Backend::Sqlite => assert_eq!(purged.sessions, 1, "the browser session passed its idle timeout"),
        // In Redis the session key carries a TTL to its end: Redis removes it, not the purge.
        Backend::Postgres => assert_eq!(purged.sessions, 0, "sessions in Redis are not the purge's"),
    }
    let silent = authorize_url(&server, &client, &pkce, &[("prompt", "none")]);
    let redirect = location(&browser.get(&silent).await);
    assert_eq!(query_of(&redirect).get("error").map(String::as_str), Some("login_required"), "{redirect}");
    let again = oxidp::housekeeping::purge(&server.state).await.expect("purge");
    assert_eq!(again, oxidp::store::housekeeping::Purged::default(), "nothing left to purge");
}
