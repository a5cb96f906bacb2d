//! API keys (SPEC §4) over HTTP: created with a Bearer token and shown once, stored only as a
//! keyed hash, limited to their scopes and to the owner's current rights, expired, revoked and
//! malformed keys refused with problem JSON, and the list paginated with a cursor.

use serde_json::{Value, json};

use crate::common::*;
use crate::on_both_backends;

on_both_backends!(
    created_key_is_shown_once_and_stored_only_as_a_hash,
    key_scopes_limit_what_a_key_may_do,
    invalid_key_requests_are_refused_with_the_field,
    expired_revoked_and_malformed_keys_get_401,
    last_used_at_is_recorded_on_use,
    owner_ban_and_demotion_take_effect_at_once,
    key_list_paginates_newest_first,
    a_key_never_has_more_rights_than_the_credential_that_made_it,
    admin_credentials_are_made_only_with_a_recent_admin_token,
);

const KEYS: &str = "/api/v1/users/me/api-keys";
const ME: &str = "/api/v1/users/me";

async fn create_key(server: &TestServer, token: &str, body: Value) -> reqwest::Response {
    reqwest::Client::new().post(server.url(KEYS)).bearer_auth(token).json(&body).send().await.expect("create key")
}

/// Creates a key that must succeed; returns the creation answer.
async fn new_key(server: &TestServer, token: &str, name: &str, scopes: &[&str]) -> Value {
    let response = create_key(server, token, json!({"name": name, "scopes": scopes})).await;
    assert_eq!(response.status(), 201, "create key {name} {scopes:?}");
    json(response).await
}

fn key_of(created: &Value) -> String {
    created["key"].as_str().expect("key in the creation answer").to_string()
}

async fn get_with_key(server: &TestServer, path: &str, key: &str) -> reqwest::Response {
    reqwest::Client::new().get(server.url(path)).header("X-API-Key", key).send().await.expect("GET with key")
}

async fn list_keys(server: &TestServer, token: &str, query: &str) -> Value {
    let response = reqwest::Client::new()
        .get(server.url(&format!("{KEYS}{query}")))
        .bearer_auth(token)
        .send()
        .await
        .expect("list");
    assert_eq!(response.status(), 200, "list keys {query}");
    json(response).await
}

/// Checks an RFC 9457 answer: status, content type, `code` and a non-empty `request_id`.
async fn assert_problem(response: reqwest::Response, status: u16, code: &str) -> Value {
    assert_eq!(response.status(), status, "status of {}", response.url());
    let content_type =
        response.headers().get("content-type").expect("content-type").to_str().expect("ascii").to_string();
    assert!(content_type.starts_with("application/problem+json"), "content type {content_type}");
    let body = json(response).await;
    assert_eq!(body["status"], status, "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert!(body["request_id"].as_str().is_some_and(|id| !id.is_empty()), "request_id in {body}");
    body
}

/// One statement with one bound parameter, on whichever database the server uses.
async fn execute(server: &TestServer, sql: &'static str, first: &str, second: &str) {
    let affected = match &server.state.db {
        oxidp::store::Db::Sqlite(pool) => {
            sqlx::query(sql).bind(first).bind(second).execute(pool).await.expect("sqlite update").rows_affected()
        }
        oxidp::store::Db::Postgres(pool) => {
            sqlx::query(sql).bind(first).bind(second).execute(pool).await.expect("postgres update").rows_affected()
        }
    };
    assert_eq!(affected, 1, "{sql}");
}

/// Every column of every row of `api_keys`, as text.
async fn api_key_rows(server: &TestServer) -> Vec<Vec<Option<String>>> {
    const SQL: &str = "SELECT id, user_id, name, prefix, key_hash, scopes, CAST(created_at AS TEXT), \
                       CAST(expires_at AS TEXT), CAST(last_used_at AS TEXT), CAST(revoked_at AS TEXT) FROM api_keys";
    type Row = (
        String,
        String,
        String,
        String,
        String,
        String,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
    );
    let rows: Vec<Row> = match &server.state.db {
        oxidp::store::Db::Sqlite(pool) => sqlx::query_as(SQL).fetch_all(pool).await.expect("sqlite select"),
        oxidp::store::Db::Postgres(pool) => sqlx::query_as(SQL).fetch_all(pool).await.expect("postgres select"),
    };
    rows.into_iter()
        .map(|(a, b, c, d, e, f, g, h, i, j)| vec![Some(a), Some(b), Some(c), Some(d), Some(e), Some(f), g, h, i, j])
        .collect()
}

async fn created_key_is_shown_once_and_stored_only_as_a_hash(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.user("alice@example.com", PASSWORD).await;
    let token = api_token(&server, "alice@example.com").await;

    let created = new_key(&server, &token, "ci deploy", &["read:users"]).await;
    let key = key_of(&created);
    let body = key.strip_prefix("oxk_").unwrap_or_else(|| panic!("key {key} starts with oxk_"));
    assert_eq!(body.len(), 43, "43 base62 characters in {key}");
    assert!(body.bytes().all(|b| b.is_ascii_alphanumeric()), "base62 only: {key}");
    assert_eq!(created["name"], "ci deploy");
    assert_eq!(created["scopes"], json!(["read:users"]));
    assert!(created["last_used_at"].is_null() && created["revoked_at"].is_null(), "{created}");
    assert!(created["expires_at"].is_null(), "no expiry asked: {created}");
    let id = created["id"].as_str().expect("id").to_string();
    let prefix = created["prefix"].as_str().expect("prefix").to_string();
    assert!(!prefix.is_empty() && prefix.len() < 16 && body.starts_with(&prefix), "short lookup prefix {prefix}");

    // Two keys never share their secret.
    let other = key_of(&new_key(&server, &token, "second", &["read:users"]).await);
    assert_ne!(key, other);

    // The list shows the key without its secret.
    let list = list_keys(&server, &token, "").await;
    let items = list["items"].as_array().expect("items");
    assert_eq!(items.len(), 2);
    let listed = items.iter().find(|item| item["id"] == id.as_str()).expect("created key listed");
    assert_eq!(listed["name"], "ci deploy");
    assert_eq!(listed["prefix"], prefix.as_str());
    assert_eq!(listed["scopes"], json!(["read:users"]));
    assert!(listed.get("key").is_none(), "no secret in the list: {listed}");
    let text = list.to_string();
    assert!(!text.contains(&key) && !text.contains(body) && !text.contains(&other), "no secret in {text}");
    assert!(list["next_cursor"].is_null(), "one page: {list}");

    // The database holds neither key nor its random part, in any column.
    let rows = api_key_rows(&server).await;
    assert_eq!(rows.len(), 2);
    for row in &rows {
        for column in row.iter().flatten() {
            for secret in [&key, &other] {
                let random = &secret["oxk_".len()..];
                assert!(!column.contains(random), "column {column} holds a key");
            }
        }
    }
    let row = rows.iter().find(|row| row[0].as_deref() == Some(id.as_str())).expect("row of the key");
    assert_eq!(row[3].as_deref(), Some(prefix.as_str()), "stored prefix");
    let hash = row[4].as_deref().expect("key_hash");
    assert!(!hash.is_empty() && hash != key && hash != body, "a hash, not the key: {hash}");
    // Nor does the SQLite file (or its write-ahead log), byte for byte.
    if let Backend::Sqlite = backend {
        let path = server.database_url.trim_start_matches("sqlite://").split('?').next().expect("path").to_string();
        for file in [path.clone(), format!("{path}-wal")] {
            if let Ok(bytes) = std::fs::read(&file) {
                for secret in [&key, &other] {
                    let needle = &secret.as_bytes()["oxk_".len()..];
                    assert!(!bytes.windows(needle.len()).any(|w| w == needle), "{file} holds a key");
                }
            }
        }
    }

    // The key works, so it is the real one.
    assert_eq!(get_with_key(&server, ME, &key).await.status(), 200);
}

async fn key_scopes_limit_what_a_key_may_do(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.user("alice@example.com", PASSWORD).await;
    let token = api_token(&server, "alice@example.com").await;
    let http = reqwest::Client::new();

    let reader = key_of(&new_key(&server, &token, "reader", &["read:users"]).await);
    let response = get_with_key(&server, ME, &reader).await;
    assert_eq!(response.status(), 200);
    let me = json(response).await;
    assert_eq!(me["email"], "alice@example.com");

    let response = http
        .patch(server.url(ME))
        .header("X-API-Key", &reader)
        .json(&json!({"name": "Reader"}))
        .send()
        .await
        .expect("patch");
    assert_problem(response, 403, "insufficient_scope").await;
    let response = http.get(server.url(ME)).bearer_auth(&token).send().await.expect("me");
    assert_eq!(json(response).await["name"], "Test User", "the refused PATCH changed nothing");

    let writer = key_of(&new_key(&server, &token, "writer", &["write:users"]).await);
    let response = http
        .patch(server.url(ME))
        .header("X-API-Key", &writer)
        .json(&json!({"name": "Writer"}))
        .send()
        .await
        .expect("patch");
    assert_eq!(response.status(), 200);
    assert_eq!(json(response).await["name"], "Writer");
    let response = get_with_key(&server, ME, &reader).await;
    assert_eq!(json(response).await["name"], "Writer", "the change is seen by the other key");

    // Keys never manage keys, whatever their scopes.
    let both = key_of(&new_key(&server, &token, "both", &["read:users", "write:users"]).await);
    let created = new_key(&server, &token, "victim", &["read:users"]).await;
    let victim_id = created["id"].as_str().expect("id");
    for key in [&reader, &writer, &both] {
        let response = http
            .post(server.url(KEYS))
            .header("X-API-Key", key)
            .json(&json!({"name": "minted by a key", "scopes": ["read:users"]}))
            .send()
            .await
            .expect("create with key");
        assert_problem(response, 403, "bearer_required").await;
        let response = http
            .delete(server.url(&format!("{KEYS}/{victim_id}")))
            .header("X-API-Key", key)
            .send()
            .await
            .expect("delete");
        assert_problem(response, 403, "bearer_required").await;
    }
    let list = list_keys(&server, &token, "").await;
    let names: Vec<&str> =
        list["items"].as_array().expect("items").iter().map(|k| k["name"].as_str().expect("name")).collect();
    assert!(!names.contains(&"minted by a key"), "{names:?}");
    let victim = list["items"].as_array().expect("items").iter().find(|k| k["id"] == victim_id).expect("victim listed");
    assert!(victim["revoked_at"].is_null(), "the key's DELETE revoked nothing: {victim}");
    assert_eq!(get_with_key(&server, ME, &key_of(&created)).await.status(), 200);

    // Without any credential: 401.
    let response = http.get(server.url(ME)).send().await.expect("anonymous");
    assert_eq!(response.status(), 401);
}

async fn invalid_key_requests_are_refused_with_the_field(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.user("alice@example.com", PASSWORD).await;
    server.user_with_role("root@example.com", PASSWORD, true).await;
    let token = api_token(&server, "alice@example.com").await;
    let now = server.clock_now();

    let cases = [
        (json!({"name": "k", "scopes": ["admin"]}), "scopes"),
        (json!({"name": "k", "scopes": ["read:users", "admin"]}), "scopes"),
        (json!({"name": "k", "scopes": ["delete:everything"]}), "scopes"),
        (json!({"name": "k", "scopes": []}), "scopes"),
        (json!({"name": "k", "scopes": ["read:users"], "expires_at": now - 10}), "expires_at"),
        (json!({"name": "k", "scopes": ["read:users"], "expires_at": now}), "expires_at"),
        (json!({"name": "", "scopes": ["read:users"]}), "name"),
        (json!({"name": "   ", "scopes": ["read:users"]}), "name"),
    ];
    for (body, field) in cases {
        let problem = assert_problem(create_key(&server, &token, body.clone()).await, 400, "invalid_field").await;
        assert_eq!(problem["field"], field, "{body} → {problem}");
    }
    // Malformed bodies are problem JSON as well.
    let problem = assert_problem(
        create_key(&server, &token, json!({"name": "k", "scopes": ["read:users"], "owner": "someone"})).await,
        400,
        "invalid_request",
    )
    .await;
    assert!(problem["detail"].is_string(), "{problem}");
    let list = list_keys(&server, &token, "").await;
    assert_eq!(list["items"], json!([]), "no refused request created a key");

    // No credential, or a bad Bearer token: 401.
    let response = reqwest::Client::new()
        .post(server.url(KEYS))
        .json(&json!({"name": "k", "scopes": ["read:users"]}))
        .send()
        .await
        .expect("anonymous create");
    assert_eq!(response.status(), 401);
    let response = create_key(&server, "not-a-token", json!({"name": "k", "scopes": ["read:users"]})).await;
    assert_problem(response, 401, "invalid_token").await;

    // An administrator may create an admin key; a future expiry is kept.
    let admin_token = api_token(&server, "root@example.com").await;
    let response = create_key(
        &server,
        &admin_token,
        json!({"name": "ops", "scopes": ["admin", "read:users"], "expires_at": now + 3600}),
    )
    .await;
    assert_eq!(response.status(), 201);
    let created = json(response).await;
    let mut scopes: Vec<&str> =
        created["scopes"].as_array().expect("scopes").iter().map(|s| s.as_str().expect("scope")).collect();
    scopes.sort();
    assert_eq!(scopes, ["admin", "read:users"]);
    assert_eq!(created["expires_at"], now + 3600);
}

async fn expired_revoked_and_malformed_keys_get_401(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.user("alice@example.com", PASSWORD).await;
    server.user("bob@example.com", PASSWORD).await;
    let token = api_token(&server, "alice@example.com").await;
    let http = reqwest::Client::new();

    // Expiry follows the server's clock.
    let response = create_key(
        &server,
        &token,
        json!({"name": "short", "scopes": ["read:users"], "expires_at": server.clock_now() + 60}),
    )
    .await;
    assert_eq!(response.status(), 201);
    let short = key_of(&json(response).await);
    assert_eq!(get_with_key(&server, ME, &short).await.status(), 200);
    server.clock.advance(61);
    assert_problem(get_with_key(&server, ME, &short).await, 401, "invalid_api_key").await;

    // Revocation.
    let token = api_token(&server, "alice@example.com").await;
    let created = new_key(&server, &token, "revoke me", &["read:users"]).await;
    let key = key_of(&created);
    let id = created["id"].as_str().expect("id");
    assert_eq!(get_with_key(&server, ME, &key).await.status(), 200);
    // Another user cannot revoke it.
    let bob = api_token(&server, "bob@example.com").await;
    let response = http.delete(server.url(&format!("{KEYS}/{id}"))).bearer_auth(&bob).send().await.expect("delete");
    assert_problem(response, 404, "not_found").await;
    assert_eq!(get_with_key(&server, ME, &key).await.status(), 200, "bob's DELETE did not revoke it");

    let response = http.delete(server.url(&format!("{KEYS}/{id}"))).bearer_auth(&token).send().await.expect("delete");
    assert_eq!(response.status(), 204);
    assert_problem(get_with_key(&server, ME, &key).await, 401, "invalid_api_key").await;
    let response = http.delete(server.url(&format!("{KEYS}/{id}"))).bearer_auth(&token).send().await.expect("delete");
    assert_problem(response, 404, "not_found").await;
    let response =
        http.delete(server.url(&format!("{KEYS}/no-such-id"))).bearer_auth(&token).send().await.expect("delete");
    assert_problem(response, 404, "not_found").await;
    let list = list_keys(&server, &token, "").await;
    let listed =
        list["items"].as_array().expect("items").iter().find(|k| k["id"] == id).expect("revoked key still listed");
    assert_eq!(listed["revoked_at"], server.clock_now(), "revocation time shown");

    // Malformed and unknown keys.
    let live = key_of(&new_key(&server, &token, "live", &["read:users"]).await);
    let random = &live["oxk_".len()..];
    let mut altered = live.clone();
    let last = altered.pop().expect("last char");
    altered.push(if last == 'a' { 'b' } else { 'a' });
    let same_prefix_unknown = format!("oxk_{}{}", &random[..8], "Z".repeat(35));
    let bad = [
        "oxk_short".to_string(),
        random.to_string(),
        format!("xyz_{random}"),
        format!("oxk_{}", &"!@#$%^&*()_+-=[]{};:,.<>?/~`|".repeat(2)[..43]),
        format!("oxk_{random}A"),
        format!("oxk_{}", "Q".repeat(43)),
        same_prefix_unknown,
        altered,
        String::new(),
    ];
    for presented in &bad {
        let response = get_with_key(&server, ME, presented).await;
        assert_eq!(response.status(), 401, "key {presented:?}");
        let content_type = response.headers()["content-type"].to_str().expect("ascii").to_string();
        assert!(content_type.starts_with("application/problem+json"), "{presented:?}: {content_type}");
        let body = json(response).await;
        assert!(body["code"].is_string() && body["request_id"].is_string(), "{presented:?}: {body}");
    }
    for presented in &bad[..bad.len() - 1] {
        assert_problem(get_with_key(&server, ME, presented).await, 401, "invalid_api_key").await;
    }
    // The live key still works after all those attempts.
    assert_eq!(get_with_key(&server, ME, &live).await.status(), 200);
}

async fn last_used_at_is_recorded_on_use(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.user("alice@example.com", PASSWORD).await;
    let token = api_token(&server, "alice@example.com").await;
    let created = new_key(&server, &token, "tracked", &["read:users"]).await;
    let unused = new_key(&server, &token, "unused", &["read:users"]).await;
    let key = key_of(&created);
    let listed = |list: &Value, id: &Value| -> Value {
        list["items"].as_array().expect("items").iter().find(|k| k["id"] == *id).expect("listed").clone()
    };

    let list = list_keys(&server, &token, "").await;
    assert!(listed(&list, &created["id"])["last_used_at"].is_null(), "never used: {list}");

    server.clock.advance(30);
    let used_at = server.clock_now();
    assert_eq!(get_with_key(&server, ME, &key).await.status(), 200);
    let list = list_keys(&server, &token, "").await;
    assert_eq!(listed(&list, &created["id"])["last_used_at"], used_at, "{list}");
    assert!(listed(&list, &unused["id"])["last_used_at"].is_null(), "the other key was not used: {list}");

    // A later use moves it on (the Bearer token has expired by then: sign in again).
    server.clock.advance(3600);
    assert_eq!(get_with_key(&server, ME, &key).await.status(), 200);
    let token = api_token(&server, "alice@example.com").await;
    let list = list_keys(&server, &token, "").await;
    let last = listed(&list, &created["id"])["last_used_at"].as_i64().expect("last_used_at");
    assert!(last > used_at && last <= server.clock_now(), "{last} after {used_at}");
}

async fn owner_ban_and_demotion_take_effect_at_once(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = server.user("alice@example.com", PASSWORD).await;
    let token = api_token(&server, "alice@example.com").await;
    let key = key_of(&new_key(&server, &token, "k", &["read:users", "write:users"]).await);
    assert_eq!(get_with_key(&server, ME, &key).await.status(), 200);

    execute(&server, "UPDATE users SET status = $1 WHERE id = $2", "banned", &alice.id).await;
    assert_problem(get_with_key(&server, ME, &key).await, 401, "invalid_api_key").await;
    let response = reqwest::Client::new()
        .patch(server.url(ME))
        .header("X-API-Key", &key)
        .json(&json!({"name": "banned"}))
        .send()
        .await
        .expect("patch");
    assert_problem(response, 401, "invalid_api_key").await;
    // Lifting the ban brings the key back; another inactive status refuses it again.
    execute(&server, "UPDATE users SET status = $1 WHERE id = $2", "active", &alice.id).await;
    assert_eq!(get_with_key(&server, ME, &key).await.status(), 200);
    execute(&server, "UPDATE users SET status = $1 WHERE id = $2", "deactivated", &alice.id).await;
    assert_problem(get_with_key(&server, ME, &key).await, 401, "invalid_api_key").await;

    // A demoted administrator's key keeps what the owner may still do, and loses `admin`.
    let root = server.user_with_role("root@example.com", PASSWORD, true).await;
    let admin_token = api_token(&server, "root@example.com").await;
    let admin_key = key_of(&new_key(&server, &admin_token, "ops", &["admin", "read:users"]).await);
    let caller = oxidp::api::caller::caller_from_api_key(&server.state, &admin_key).await.expect("admin key");
    assert!(scopes_of(&caller).contains(&"admin".to_string()), "{caller:?}");
    assert_eq!(get_with_key(&server, ME, &admin_key).await.status(), 200);

    execute(&server, "UPDATE users SET role = $1 WHERE id = $2", "user", &root.id).await;
    let response = get_with_key(&server, ME, &admin_key).await;
    assert_eq!(response.status(), 200, "read:users survives the demotion");
    assert_eq!(json(response).await["email"], "root@example.com");
    // No HTTP route shows a key's rights yet: ask the same function the routes use.
    let caller = oxidp::api::caller::caller_from_api_key(&server.state, &admin_key).await.expect("demoted key");
    assert_eq!(scopes_of(&caller), vec!["read:users".to_string()], "admin dropped at once");
    // The demoted owner can no longer create admin keys, even with the token from before.
    let problem = assert_problem(
        create_key(&server, &admin_token, json!({"name": "again", "scopes": ["admin"]})).await,
        400,
        "invalid_field",
    )
    .await;
    assert_eq!(problem["field"], "scopes");
}

fn scopes_of(caller: &oxidp::api::caller::Caller) -> Vec<String> {
    match &caller.credential {
        oxidp::api::caller::Credential::ApiKey { scopes, .. } => scopes.clone(),
        other => panic!("not an API key: {other:?}"),
    }
}

async fn key_list_paginates_newest_first(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.user("alice@example.com", PASSWORD).await;
    server.user("bob@example.com", PASSWORD).await;
    let token = api_token(&server, "alice@example.com").await;
    let bob = api_token(&server, "bob@example.com").await;
    new_key(&server, &bob, "bob's", &["read:users"]).await;

    // Five keys, one second apart, so "newest first" is well defined.
    let mut created = Vec::new();
    for n in 0..5 {
        let key = new_key(&server, &token, &format!("key {n}"), &["read:users"]).await;
        created.push(key["id"].as_str().expect("id").to_string());
        server.clock.advance(1);
    }
    let pages = walk(&server, &token, 2).await;
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), vec![2, 2, 1], "pages of 2");
    let seen: Vec<String> = pages.concat();
    let newest_first: Vec<String> = created.iter().rev().cloned().collect();
    assert_eq!(seen, newest_first, "all five exactly once, newest first");

    // Keys created within the same second still appear exactly once each.
    for n in 5..9 {
        let key = new_key(&server, &token, &format!("key {n}"), &["read:users"]).await;
        created.push(key["id"].as_str().expect("id").to_string());
    }
    for limit in [1, 2, 3, 100] {
        let mut seen: Vec<String> = walk(&server, &token, limit).await.concat();
        assert_eq!(seen[4..], newest_first, "the older keys come last, limit {limit}");
        seen.sort();
        let mut all = created.clone();
        all.sort();
        assert_eq!(seen, all, "every key exactly once, limit {limit}");
    }

    // Bad paging arguments are problem JSON.
    let http = reqwest::Client::new();
    for (query, field) in [("?limit=0", "limit"), ("?limit=101", "limit"), ("?cursor=%%%", "cursor")] {
        let response = http.get(server.url(&format!("{KEYS}{query}"))).bearer_auth(&token).send().await.expect("list");
        let problem = assert_problem(response, 400, "invalid_field").await;
        assert_eq!(problem["field"], field, "{query}");
    }
}

/// Every page of the key list with `limit`, following `next_cursor`.
async fn walk(server: &TestServer, token: &str, limit: u32) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..50 {
        let query = match &cursor {
            Some(cursor) => format!("?limit={limit}&cursor={cursor}"),
            None => format!("?limit={limit}"),
        };
        let page = list_keys(server, token, &query).await;
        let items = page["items"].as_array().expect("items");
        assert!(items.len() <= limit as usize, "at most {limit} per page");
        assert!(items.iter().all(|k| k.get("key").is_none()), "no secrets in pages");
        pages.push(items.iter().map(|k| k["id"].as_str().expect("id").to_string()).collect());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => return pages,
        }
    }
    panic!("pagination did not end");
}

/// Issue #12 item 1: a credential never mints a credential with more rights than itself. The
/// attack: a token that may only "manage your account" asks for an `admin` key, which would
/// act as a full administrator and outlive the token.
async fn a_key_never_has_more_rights_than_the_credential_that_made_it(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.user_with_role("root@example.com", PASSWORD, true).await;
    let flags = ["--name", "Account app", "--redirect-uri", REDIRECT, "--first-party", "--scopes", "openid account"];
    let app = server.client(&flags).await;
    let pkce = pkce();
    let url = authorize_url(&server, &app, &pkce, &[("scope", "openid account")]);
    let redirect = run_browser_flow(&server, &Browser::new(), &url, "root@example.com", PASSWORD).await;
    let code = query_of(&redirect).get("code").cloned().expect("code");
    let tokens = json(redeem(&server, &app, &code, &pkce.verifier).await).await;
    let account_only = tokens["access_token"].as_str().expect("access token").to_string();
    assert_eq!(tokens["scope"], "openid account", "{tokens}");

    let escalate = json!({"name": "escalate", "scopes": ["admin"]});
    assert_problem(create_key(&server, &account_only, escalate.clone()).await, 403, "insufficient_scope").await;
    // Within its own rights it still mints.
    new_key(&server, &account_only, "mine", &["read:users", "write:users"]).await;

    // An admin token needs a recent sign-in (OXIDP_STEP_UP_MAX_AGE, 600 s by default).
    let admin = api_token(&server, "root@example.com").await;
    server.clock.advance(601);
    assert_problem(create_key(&server, &admin, escalate.clone()).await, 403, "step_up_required").await;
    let fresh = api_token(&server, "root@example.com").await;
    new_key(&server, &fresh, "admin", &["admin"]).await;

    // An address nobody has proven mints no key at all.
    let registered =
        api_post(&server, "/api/v1/auth/register", None, &json!({"email": "eve@example.com", "password": PASSWORD}))
            .await;
    assert_eq!(registered.status(), 201);
    let unverified = api_token(&server, "eve@example.com").await;
    let body = json!({"name": "squatter", "scopes": ["read:users"]});
    assert_problem(create_key(&server, &unverified, body).await, 403, "email_unverified").await;

    // Nothing was created by the refused requests.
    let listed = list_keys(&server, &fresh, "").await;
    let names: Vec<&str> =
        listed["items"].as_array().expect("items").iter().filter_map(|k| k["name"].as_str()).collect();
    assert_eq!(names.len(), 2, "{names:?}");
}

/// The rule of issue #12 item 1 beyond API keys: an API client and an OAuth client's secret act
/// for the administration, so only an administrator's own recent Bearer token makes them; an
/// admin API key, an API client and a stale token are refused, and nothing is created.
async fn admin_credentials_are_made_only_with_a_recent_admin_token(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.user_with_role("root@example.com", PASSWORD, true).await;
    let fresh = api_token(&server, "root@example.com").await;
    let admin_key = key_of(&new_key(&server, &fresh, "admin", &["admin"]).await);
    let http = reqwest::Client::new();
    let api_clients = server.url("/api/v1/admin/api-clients");
    let clients = server.url("/api/v1/admin/clients");
    let made = http.post(&api_clients).bearer_auth(&fresh).json(&json!({"name": "ops"})).send().await.expect("post");
    assert_eq!(made.status(), 201);
    let made = json(made).await;
    let (client_key, client_secret) =
        (made["client_key"].as_str().expect("key").to_string(), made["api_key"].as_str().expect("secret").to_string());
    let oauth_client = json(
        http.post(&clients)
            .bearer_auth(&fresh)
            .json(&json!({"name": "Web", "redirect_uris": [REDIRECT]}))
            .send()
            .await
            .expect("post"),
    )
    .await;
    let rotate = format!("{clients}/{}/rotate-secret", oauth_client["client_id"].as_str().expect("client_id"));

    // The admin key and the API client may administer, but never make credentials.
    let with_key = |request: reqwest::RequestBuilder| request.header("X-API-Key", &admin_key);
    let with_client = |request: reqwest::RequestBuilder| {
        request.header("X-Client-Key", &client_key).header("X-API-Key", &client_secret)
    };
    assert_eq!(with_key(http.get(server.url("/api/v1/admin/users"))).send().await.expect("get").status(), 200);
    for (who, request) in [
        ("key: API client", with_key(http.post(&api_clients)).json(&json!({"name": "k"}))),
        ("key: OAuth client", with_key(http.post(&clients)).json(&json!({"name": "k", "redirect_uris": [REDIRECT]}))),
        ("key: rotate", with_key(http.post(&rotate))),
        ("client: API client", with_client(http.post(&api_clients)).json(&json!({"name": "c"}))),
        ("client: rotate", with_client(http.post(&rotate))),
    ] {
        let body = assert_problem(request.send().await.expect(who), 403, "bearer_required").await;
        assert!(body["detail"].as_str().is_some_and(|d| d.contains("Bearer")), "{who}: {body}");
    }
    // An administrator's token from an old sign-in must sign in again.
    server.clock.advance(601);
    let stale = http.post(&api_clients).bearer_auth(&fresh).json(&json!({"name": "late"})).send().await;
    assert_problem(stale.expect("post"), 403, "step_up_required").await;
    let stale = http.post(&rotate).bearer_auth(&fresh).send().await;
    assert_problem(stale.expect("post"), 403, "step_up_required").await;
    let renewed = api_token(&server, "root@example.com").await;
    let rotated = http.post(&rotate).bearer_auth(&renewed).send().await.expect("rotate");
    assert_eq!(rotated.status(), 200);

    // Nothing was made by the refused requests.
    let listed = json(http.get(&api_clients).bearer_auth(&renewed).send().await.expect("list")).await;
    assert_eq!(listed["items"].as_array().map(Vec::len), Some(1), "{listed}");
    let listed = json(http.get(&clients).bearer_auth(&renewed).send().await.expect("list")).await;
    let names: Vec<&str> =
        listed["items"].as_array().expect("items").iter().filter_map(|c| c["name"].as_str()).collect();
    assert!(!names.contains(&"k"), "{names:?}");
}
