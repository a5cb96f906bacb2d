//! Browser sessions in Redis (`OXIDP_REDIS_URL` set): where they are, how long Redis keeps
//! them, and that every way of ending a session removes them there. The session behaviour
//! itself (idle timeout, absolute lifetime, listing, revoking, rotation) is tested on both
//! backends in lifetime.rs and account_api/me.rs; the PostgreSQL servers of those tests use Redis.

use std::collections::HashMap;

use redis::AsyncCommands;
use serde_json::json;

use crate::common::*;

const SESSION_TTL: i64 = 1000;
const IDLE_TTL: i64 = 600;

async fn server() -> TestServer {
    assert!(std::env::var("TEST_REDIS_URL").is_ok(), "TEST_REDIS_URL is not set: run the suite with scripts/test");
    TestServer::start_with(Backend::Postgres, |config| {
        config.session_ttl = SESSION_TTL;
        config.session_idle_ttl = IDLE_TTL;
    })
    .await
}

/// A connection to the test Redis, and the server's key prefix.
async fn redis_of(server: &TestServer) -> (redis::aio::MultiplexedConnection, String) {
    let url = server.state.config.redis_url.clone().expect("the server uses Redis");
    let client = redis::Client::open(url).expect("redis URL");
    let connection = client.get_multiplexed_async_connection().await.expect("connect to Redis");
    (connection, server.state.config.redis_key_prefix.clone())
}

/// The server's session keys in Redis (record and per-user index keys), without the prefix.
async fn session_keys(server: &TestServer) -> Vec<String> {
    let (mut redis, prefix) = redis_of(server).await;
    let keys: Vec<String> = redis.keys(format!("{prefix}*")).await.expect("KEYS");
    let mut keys: Vec<String> = keys
        .into_iter()
        .filter_map(|key| key.strip_prefix(&prefix).map(str::to_string))
        .filter(|key| key.starts_with("session:") || key.starts_with("user-sessions:"))
        .collect();
    keys.sort();
    keys
}

async fn table_rows(server: &TestServer) -> i64 {
    let pool = sqlx::PgPool::connect(&server.database_url).await.expect("connect");
    let (count,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM sessions").fetch_one(&pool).await.expect("count");
    pool.close().await;
    count
}

/// Signs in through the login page; returns the browser and its session cookie.
async fn sign_in(server: &TestServer, client: &TestClient, email: &str) -> (Browser, String) {
    let (http, jar) = http_with_jar();
    let browser = Browser { http };
    let redirect =
        run_browser_flow(server, &browser, &authorize_url(server, client, &pkce(), &[]), email, PASSWORD).await;
    assert!(query_of(&redirect).contains_key("code"), "signed in: {redirect}");
    let cookie = jar_cookie(server, &jar, "oxidp_session").expect("session cookie");
    (browser, cookie)
}

/// `prompt=none`: true when the browser's session signs the client in.
async fn silent(server: &TestServer, browser: &Browser, client: &TestClient) -> bool {
    let response = browser.get(&authorize_url(server, client, &pkce(), &[("prompt", "none")])).await;
    let params = query_of(&location(&response));
    match (params.contains_key("code"), params.get("error").map(String::as_str)) {
        (true, _) => true,
        (false, Some("login_required")) => false,
        other => panic!("unexpected answer to prompt=none: {other:?} {params:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_lives_in_redis_with_a_ttl_to_its_end() {
    let server = server().await;
    let alice = server.user("alice@example.com", PASSWORD).await;
    let client = server.client(&["--name", "App", "--redirect-uri", REDIRECT]).await;
    let (browser, cookie) = sign_in(&server, &client, "alice@example.com").await;
    let token_hash = server.state.secret.keyed_hash(oxidp::session::TOKEN_HASH_PURPOSE, &cookie);

    // In Redis, keyed by the cookie's keyed hash, with an index for the user; not in the table.
    let record_key = format!("session:{token_hash}");
    let index_key = format!("user-sessions:{}", alice.id);
    assert_eq!(session_keys(&server).await, vec![record_key.clone(), index_key.clone()]);
    assert_eq!(table_rows(&server).await, 0, "no row in the sessions table");
    let (mut redis, prefix) = redis_of(&server).await;
    let record: HashMap<String, String> = redis.hgetall(format!("{prefix}{record_key}")).await.expect("HGETALL");
    assert_eq!(record["user_id"], alice.id);
    assert_eq!(record["amr"], "pwd");
    assert_eq!(record["token_hash"], token_hash);
    let login_at = server.clock_now();
    assert_eq!(record["created_at"], login_at.to_string());
    assert_eq!(record["expires_at"], (login_at + SESSION_TTL).to_string());
    let index: HashMap<String, String> = redis.hgetall(format!("{prefix}{index_key}")).await.expect("HGETALL");
    assert_eq!(index, HashMap::from([(record["id"].clone(), token_hash.clone())]));
    // The cookie itself is nowhere in Redis.
    for key in session_keys(&server).await {
        let value: HashMap<String, String> = redis.hgetall(format!("{prefix}{key}")).await.expect("HGETALL");
        assert!(!key.contains(&cookie) && !value.values().any(|v| v.contains(&cookie)), "{key}");
    }

    let ttl_connection = redis.clone();
    // Redis keeps the session until its idle end (600 s < absolute 1000 s), the index until
    // the absolute end.
    let ttl = |key: String| {
        let mut redis = ttl_connection.clone();
        let key = format!("{prefix}{key}");
        async move { redis.ttl::<_, i64>(key).await.expect("TTL") }
    };
    let first = ttl(record_key.clone()).await;
    assert!((IDLE_TTL - 2..=IDLE_TTL).contains(&first), "session TTL {first}");
    let index_ttl = ttl(index_key.clone()).await;
    assert!((SESSION_TTL - 2..=SESSION_TTL).contains(&index_ttl), "index TTL {index_ttl}");

    // Used 450 s later: the TTL is renewed, capped by the absolute end (1000 - 450 = 550 < 600).
    server.clock.advance(450);
    assert!(silent(&server, &browser, &client).await);
    let record: HashMap<String, String> = redis.hgetall(format!("{prefix}{record_key}")).await.expect("HGETALL");
    assert_eq!(record["last_seen_at"], (login_at + 450).to_string());
    let renewed = ttl(record_key.clone()).await;
    assert!((SESSION_TTL - 450 - 2..=SESSION_TTL - 450).contains(&renewed), "renewed TTL {renewed}");

    // Used again after 100 s: the idle end (550 + 600) is past the absolute end, still capped.
    server.clock.advance(100);
    assert!(silent(&server, &browser, &client).await);
    let renewed = ttl(record_key.clone()).await;
    assert!((SESSION_TTL - 550 - 2..=SESSION_TTL - 550).contains(&renewed), "renewed TTL {renewed}");

    // Past the absolute end by the server's clock: ended at once, before Redis would expire it.
    server.clock.advance(SESSION_TTL - 550);
    assert!(!silent(&server, &browser, &client).await);
    assert!(session_keys(&server).await.is_empty(), "the ended session (and the emptied index) left Redis");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_logout_password_change_and_ban_end_sessions_in_redis() {
    let server = server().await;
    let admin = {
        server.user_with_role("root@example.com", PASSWORD, true).await;
        api_token(&server, "root@example.com").await
    };
    server.user("alice@example.com", PASSWORD).await;
    let client = server.client(&["--name", "App", "--redirect-uri", REDIRECT]).await;
    let (first, _) = sign_in(&server, &client, "alice@example.com").await;
    server.clock.advance(1);
    let (second, _) = sign_in(&server, &client, "alice@example.com").await;
    server.clock.advance(1);
    let (third, _) = sign_in(&server, &client, "alice@example.com").await;
    assert_eq!(session_keys(&server).await.len(), 4, "three sessions and one index");

    // Listed and ended through the account API.
    let token = api_token(&server, "alice@example.com").await;
    let http = reqwest::Client::new();
    let sessions = |token: String| {
        let request = http.get(server.url("/api/v1/users/me/sessions")).bearer_auth(token);
        async move { json(request.send().await.expect("list")).await["items"].as_array().expect("items").clone() }
    };
    let listed = sessions(token.clone()).await;
    assert_eq!(listed.len(), 3);
    let newest = listed[0]["id"].as_str().expect("id").to_string();
    let response = http
        .delete(server.url(&format!("/api/v1/users/me/sessions/{newest}")))
        .bearer_auth(&token)
        .send()
        .await
        .expect("delete");
    assert_eq!(response.status(), 204);
    assert!(!silent(&server, &third, &client).await, "the newest session was the third browser's");
    assert_eq!(sessions(token.clone()).await.len(), 2);
    assert_eq!(session_keys(&server).await.len(), 3);

    // Logout at /logout ends that browser's session.
    let page = first.get(&server.url("/logout")).await.text().await.expect("page");
    let csrf = form_field(&page, "csrf").expect("csrf on the logout page");
    let response = first.post_form(&server.url("/logout"), &[("csrf", &csrf), ("confirm", "yes")]).await;
    assert_eq!(response.status(), 200);
    assert!(!silent(&server, &first, &client).await);
    assert!(silent(&server, &second, &client).await);
    assert_eq!(sessions(token.clone()).await.len(), 1);

    // A password change ends the other sessions.
    let response = http
        .post(server.url("/api/v1/users/me/password"))
        .bearer_auth(&token)
        .json(&json!({ "current_password": PASSWORD, "new_password": "a brand new passphrase 42" }))
        .send()
        .await
        .expect("change password");
    assert_eq!(response.status(), 204);
    assert!(!silent(&server, &second, &client).await);
    assert!(session_keys(&server).await.iter().all(|key| !key.starts_with("session:")));

    // A ban ends them all (and the index with them).
    let bob = server.user("bob@example.com", PASSWORD).await;
    let (bobs, _) = sign_in(&server, &client, "bob@example.com").await;
    let (bobs_other, _) = sign_in(&server, &client, "bob@example.com").await;
    let response = http
        .post(server.url(&format!("/api/v1/admin/users/{}/ban", bob.id)))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("ban");
    assert_eq!(response.status(), 200);
    assert!(!silent(&server, &bobs, &client).await && !silent(&server, &bobs_other, &client).await);
    let keys = session_keys(&server).await;
    assert!(keys.iter().all(|key| !key.contains(&bob.id) && !key.starts_with("session:")), "{keys:?}");
    assert_eq!(table_rows(&server).await, 0);
}
