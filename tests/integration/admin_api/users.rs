//! User administration (`src/admin/users.rs`): listing, ban (every credential cut off at once),
//! soft delete, restore and erase, and the guards that keep an administrator: nobody removes
//! their own rights, and the last active administrator stays.

use serde_json::{Value, json};

use super::api_client;
use crate::common::*;
use crate::on_both_backends;

on_both_backends!(
    users_list_filter_and_cursor,
    ban_cuts_off_every_credential_at_once,
    soft_delete_restore_and_erase,
    administrators_cannot_remove_themselves,
    the_last_active_administrator_cannot_be_removed,
    concurrent_removals_leave_one_administrator,
);

async fn users_list_filter_and_cursor(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = admin_token(&server).await;
    for n in 0..5 {
        server.user(&format!("member{n}@corp.example"), PASSWORD).await;
        server.clock.advance(1);
    }
    server.user("outsider@other.example", PASSWORD).await;
    let http = reqwest::Client::new();
    let mut seen = Vec::new();
    let mut next = Some(String::new());
    while let Some(cursor) = next {
        let mut url = server.url("/api/v1/admin/users?email=CORP.example&limit=2");
        if !cursor.is_empty() {
            url.push_str(&format!("&cursor={cursor}"));
        }
        let page = json(http.get(url).bearer_auth(&admin).send().await.expect("list")).await;
        for user in page["items"].as_array().expect("items") {
            seen.push(user["email"].as_str().expect("email").to_string());
        }
        next = page["next_cursor"].as_str().map(str::to_string);
    }
    assert_eq!(seen, (0..5).map(|n| format!("member{n}@corp.example")).collect::<Vec<_>>());
    let admins =
        json(http.get(server.url("/api/v1/admin/users?role=admin")).bearer_auth(&admin).send().await.expect("list"))
            .await;
    assert_eq!(admins["items"].as_array().expect("items").len(), 1);
    for bad in ["limit=0", "limit=101", "cursor=%%%"] {
        let response =
            http.get(server.url(&format!("/api/v1/admin/users?{bad}"))).bearer_auth(&admin).send().await.expect("list");
        assert_eq!(response.status(), 400, "{bad}");
    }
    let response = http.get(server.url("/api/v1/admin/users/nope")).bearer_auth(&admin).send().await.expect("get");
    assert_eq!(response.status(), 404);
    let response = http
        .patch(server.url(&format!("/api/v1/admin/users/{}", "nope")))
        .bearer_auth(&admin)
        .json(&json!({ "role": "emperor" }))
        .send()
        .await
        .expect("patch");
    assert_eq!(response.status(), 400);
    assert_eq!(json(response).await["field"], "role");
}

async fn ban_cuts_off_every_credential_at_once(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = admin_token(&server).await;
    let user = server.user("alice@example.com", PASSWORD).await;
    let client = server.client(&["--name", "App", "--redirect-uri", REDIRECT]).await;
    let browser = Browser::new();
    let (code, pkce) = obtain_code(&server, &browser, &client, &[]).await;
    let tokens = json(redeem(&server, &client, &code, &pkce.verifier).await).await;
    let access = tokens["access_token"].as_str().expect("access").to_string();
    let refresh = tokens["refresh_token"].as_str().expect("refresh").to_string();
    let account_token = api_token(&server, "alice@example.com").await;
    let http = reqwest::Client::new();
    let key = json(
        http.post(server.url("/api/v1/users/me/api-keys"))
            .bearer_auth(&account_token)
            .json(&json!({ "name": "k", "scopes": ["read:users"] }))
            .send()
            .await
            .expect("key"),
    )
    .await["key"]
        .as_str()
        .expect("key")
        .to_string();

    let response = http
        .post(server.url(&format!("/api/v1/admin/users/{}/ban", user.id)))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("ban");
    assert_eq!(response.status(), 200);
    assert_eq!(json(response).await["status"], "banned");

    let introspection = json(client_post(&server, "/introspect", &client, &[("token", &access)]).await).await;
    assert_eq!(introspection["active"], false);
    let refreshed =
        token_request(&server, &client, &[("grant_type", "refresh_token"), ("refresh_token", &refresh)]).await;
    assert_eq!(json(refreshed).await["error"], "invalid_grant");
    assert_eq!(
        http.get(server.url("/api/v1/users/me")).header("X-API-Key", &key).send().await.expect("me").status(),
        401
    );
    assert_eq!(
        http.get(server.url("/api/v1/users/me")).bearer_auth(&account_token).send().await.expect("me").status(),
        401
    );
    let again = http
        .post(server.url("/api/v1/auth/login"))
        .json(&json!({ "email": "alice@example.com", "password": PASSWORD }))
        .send()
        .await
        .expect("login");
    assert_eq!(again.status(), 401);
    // prompt=none with the old browser session: the session no longer counts.
    let response = browser.get(&authorize_url(&server, &client, &pkce, &[("prompt", "none")])).await;
    assert_eq!(query_of(&location(&response))["error"], "login_required");

    let response = http
        .post(server.url(&format!("/api/v1/admin/users/{}/unban", user.id)))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("unban");
    assert_eq!(response.status(), 200);
    api_token(&server, "alice@example.com").await;
    let response = http
        .post(server.url(&format!("/api/v1/admin/users/{}/unban", user.id)))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("unban");
    assert_eq!(response.status(), 409, "unbanning an active user");
}

async fn soft_delete_restore_and_erase(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = admin_token(&server).await;
    let user = server.user("carol@example.com", PASSWORD).await;
    let http = reqwest::Client::new();
    let base = server.url(&format!("/api/v1/admin/users/{}", user.id));
    let deleted = http.delete(&base).bearer_auth(&admin).send().await.expect("delete");
    assert_eq!(json(deleted).await["status"], "deleted");
    let refused = http
        .post(server.url("/api/v1/auth/login"))
        .json(&json!({ "email": "carol@example.com", "password": PASSWORD }))
        .send()
        .await
        .expect("login");
    assert_eq!(refused.status(), 401);
    let restored = http.post(format!("{base}/restore")).bearer_auth(&admin).send().await.expect("restore");
    assert_eq!(json(restored).await["status"], "active");
    let carol = api_token(&server, "carol@example.com").await;
    // Carol acts, so the audit log holds her id.
    http.patch(server.url("/api/v1/users/me"))
        .bearer_auth(&carol)
        .json(&json!({ "name": "Carol" }))
        .send()
        .await
        .expect("patch");
    http.patch(&base).bearer_auth(&admin).json(&json!({ "role": "moderator" })).send().await.expect("patch");

    let erased = http.post(format!("{base}/erase")).bearer_auth(&admin).send().await.expect("erase");
    assert_eq!(erased.status(), 200);
    let pseudonym = json(erased).await["pseudonym"].as_str().expect("pseudonym").to_string();
    assert_eq!(http.get(&base).bearer_auth(&admin).send().await.expect("get").status(), 404);
    // No personal data remains: nothing in the database mentions her id or email.
    let dump = database_dump(&server).await;
    assert!(!dump.contains("carol@example.com"), "email erased");
    assert!(!dump.contains(&format!("'{}'", user.id)) && !dump.contains(&user.sub), "ids erased");
    assert!(dump.contains(&pseudonym), "audit rows pseudonymised");
}

/// An admin-API request with a Bearer token or API-client headers, answering (status, body).
async fn admin_call(
    server: &TestServer,
    method: reqwest::Method,
    path: &str,
    caller: &Caller<'_>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = reqwest::Client::new().request(method, server.url(&format!("/api/v1/admin{path}")));
    request = match caller {
        Caller::Token(token) => request.bearer_auth(token),
        Caller::ApiClient(key, secret) => request.header("X-Client-Key", *key).header("X-API-Key", *secret),
    };
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("admin request");
    let status = response.status().as_u16();
    let content_type = response.headers().get("content-type").map(|v| v.to_str().expect("ct").to_string());
    let body = json(response).await;
    if status >= 400 {
        assert_eq!(content_type.as_deref(), Some("application/problem+json"), "{body}");
    }
    (status, body)
}

enum Caller<'a> {
    Token(&'a str),
    ApiClient(&'a str, &'a str),
}

/// Every change that would take an administrator's rights away, as (method, path suffix, body).
fn removals() -> Vec<(reqwest::Method, &'static str, Option<Value>)> {
    use reqwest::Method;
    vec![
        (Method::POST, "/ban", None),
        (Method::DELETE, "", None),
        (Method::POST, "/erase", None),
        (Method::PATCH, "", Some(json!({ "role": "user" }))),
        (Method::PATCH, "", Some(json!({ "role": "moderator" }))),
        (Method::PATCH, "", Some(json!({ "status": "banned" }))),
        (Method::PATCH, "", Some(json!({ "status": "deleted", "name": "Gone" }))),
    ]
}

fn assert_refused(answer: &(u16, Value), code: &str, what: &str) {
    assert_eq!(answer.0, 409, "{what}: {}", answer.1);
    assert_eq!(answer.1["code"], code, "{what}: {}", answer.1);
    assert_eq!(answer.1["type"], "about:blank");
    assert!(answer.1["detail"].as_str().is_some_and(|d| d.contains("administrator")), "{what}: {}", answer.1);
}

async fn audited_changes_of(server: &TestServer, user_id: &str) -> Vec<String> {
    use oxidp::store::{AuditFilter, AuditStore};
    let filter = AuditFilter { limit: 200, ..AuditFilter::default() };
    let entries = server.state.db.query_audit(&filter).await.expect("audit");
    entries
        .into_iter()
        // The harness creates users as the command line does, which is audited too.
        .filter(|e| {
            e.target_id.as_deref() == Some(user_id) && e.action.starts_with("user.") && e.action != "user.create"
        })
        .map(|e| e.action)
        .collect()
}

async fn administrators_cannot_remove_themselves(backend: Backend) {
    use oxidp::store::UserStore;
    let server = TestServer::start(backend).await;
    // Another active administrator exists, so only the own-account rule can refuse.
    server.user_with_role("second@example.com", PASSWORD, true).await;
    let root = server.user_with_role("root@example.com", PASSWORD, true).await;
    let token = api_token(&server, "root@example.com").await;
    let me = format!("/users/{}", root.id);
    for (method, suffix, body) in removals() {
        let what = format!("{method} {suffix} {body:?}");
        let answer = admin_call(&server, method, &format!("{me}{suffix}"), &Caller::Token(&token), body).await;
        assert_refused(&answer, "own_account", &what);
    }
    // The same through the administrator's API key.
    let created = reqwest::Client::new()
        .post(server.url("/api/v1/users/me/api-keys"))
        .bearer_auth(&token)
        .json(&json!({ "name": "ops", "scopes": ["admin"] }))
        .send()
        .await
        .expect("key");
    let key = json(created).await["key"].as_str().expect("key").to_string();
    let banned = reqwest::Client::new()
        .post(server.url(&format!("/api/v1/admin{me}/ban")))
        .header("X-API-Key", &key)
        .send()
        .await
        .expect("ban");
    assert_eq!((banned.status().as_u16(), json(banned).await["code"].clone()), (409, json!("own_account")));

    // Nothing changed and nothing was audited; the administrator still works.
    let user = server.state.db.user_by_id(&root.id).await.expect("read").expect("still there");
    assert_eq!(
        (user.role.as_str(), user.status.as_str(), user.name.as_deref()),
        ("admin", "active", Some("Test User"))
    );
    assert_eq!(audited_changes_of(&server, &root.id).await, Vec::<String>::new());
    assert_eq!(admin_call(&server, reqwest::Method::GET, "/users", &Caller::Token(&token), None).await.0, 200);
    // What does not take the rights away is allowed on oneself.
    let renamed =
        admin_call(&server, reqwest::Method::PATCH, &me, &Caller::Token(&token), Some(json!({ "name": "Root" }))).await;
    assert_eq!((renamed.0, renamed.1["name"].clone()), (200, json!("Root")));
    let same = json!({ "role": "admin", "status": "active" });
    assert_eq!(admin_call(&server, reqwest::Method::PATCH, &me, &Caller::Token(&token), Some(same)).await.0, 200);
}

async fn the_last_active_administrator_cannot_be_removed(backend: Backend) {
    use reqwest::Method;
    let server = TestServer::start(backend).await;
    let root = server.user_with_role("root@example.com", PASSWORD, true).await;
    let token = api_token(&server, "root@example.com").await;
    let (key, secret) = api_client(&server, &token, json!({ "name": "ops" })).await;
    let client = Caller::ApiClient(&key, &secret);
    let root_path = format!("/users/{}", root.id);

    // An API client (no user of its own) may not remove the only administrator.
    for (method, suffix, body) in removals() {
        let what = format!("{method} {suffix} {body:?}");
        let answer = admin_call(&server, method, &format!("{root_path}{suffix}"), &client, body).await;
        assert_refused(&answer, "last_admin", &what);
    }
    // The refused erase touched nothing: the administrator's token still works.
    assert_eq!(admin_call(&server, Method::GET, "/users", &Caller::Token(&token), None).await.0, 200);
    assert_eq!(audited_changes_of(&server, &root.id).await, Vec::<String>::new());

    // With a second administrator, one may ban the other.
    let alice = server.user("alice@example.com", PASSWORD).await;
    let alice_path = format!("/users/{}", alice.id);
    let promote = Some(json!({ "role": "admin" }));
    assert_eq!(admin_call(&server, Method::PATCH, &alice_path, &Caller::Token(&token), promote).await.0, 200);
    let alice_token = api_token(&server, "alice@example.com").await;
    let banned =
        admin_call(&server, Method::POST, &format!("{root_path}/ban"), &Caller::Token(&alice_token), None).await;
    assert_eq!((banned.0, banned.1["status"].clone()), (200, json!("banned")));
    // A banned administrator does not count: now alice is the last active one.
    let demote = Some(json!({ "role": "user" }));
    assert_refused(
        &admin_call(&server, Method::PATCH, &alice_path, &client, demote.clone()).await,
        "last_admin",
        "demote",
    );
    // Unbanned, root is active again: two administrators, so the API client may demote alice.
    let unban = format!("{root_path}/unban");
    assert_eq!(admin_call(&server, Method::POST, &unban, &Caller::Token(&alice_token), None).await.0, 200);
    let demoted = admin_call(&server, Method::PATCH, &alice_path, &client, demote).await;
    assert_eq!((demoted.0, demoted.1["role"].clone()), (200, json!("user")));
    // A banned administrator can be erased even when only one other is active.
    let old = server.user_with_role("old@example.com", PASSWORD, true).await;
    let old_path = format!("/users/{}", old.id);
    assert_eq!(admin_call(&server, Method::POST, &format!("{old_path}/ban"), &client, None).await.0, 200);
    assert_eq!(admin_call(&server, Method::POST, &format!("{old_path}/erase"), &client, None).await.0, 200);
    let actions = audited_changes_of(&server, &root.id).await;
    assert!(actions.contains(&"user.ban".to_string()) && actions.contains(&"user.unban".to_string()), "{actions:?}");
}

/// Two removals at once, each allowed while the other has not happened: exactly one wins.
async fn concurrent_removals_leave_one_administrator(backend: Backend) {
    use oxidp::admin::users::{self as admin_users, AdminError, Guard};
    use oxidp::store::UserStore;
    let server = TestServer::start(backend).await;
    let a = server.user_with_role("a@example.com", PASSWORD, true).await;
    let b = server.user_with_role("b@example.com", PASSWORD, true).await;
    for round in 0..8 {
        let (first, second) = if round % 2 == 0 { (&a.id, &b.id) } else { (&b.id, &a.id) };
        let by = oxidp::audit::Initiator::system();
        let (one, other) = tokio::join!(
            admin_users::ban(&server.state, &by, first),
            admin_users::soft_delete(&server.state, &by, second)
        );
        let refused = [one.as_ref().err(), other.as_ref().err()]
            .into_iter()
            .filter(|error| matches!(error, Some(AdminError::Guarded(Guard::LastAdmin))))
            .count();
        assert_eq!((one.is_ok() as u8 + other.is_ok() as u8, refused), (1, 1), "round {round}: {one:?} {other:?}");
        let filter = oxidp::store::UserFilter {
            role: Some("admin".into()),
            status: Some("active".into()),
            limit: 10,
            ..Default::default()
        };
        assert_eq!(server.state.db.list_users(&filter).await.expect("list").len(), 1, "round {round}");
        for id in [&a.id, &b.id] {
            server.state.db.set_role_and_status(id, None, Some("active"), server.clock_now()).await.expect("reset");
        }
    }
}

/// Every text column of the tables that can hold personal data, as one string.
async fn database_dump(server: &TestServer) -> String {
    use oxidp::store::Db;
    let tables = [
        "users",
        "sessions",
        "consents",
        "api_keys",
        "audit_log",
        "identities",
        "memberships",
        "permissions",
        "one_time_tokens",
    ];
    let mut dump = String::new();
    for table in tables {
        let sql = format!("SELECT * FROM {table}");
        let rows: Vec<String> = match &server.state.db {
            Db::Sqlite(pool) => {
                use sqlx::Row;
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .fetch_all(pool)
                    .await
                    .expect("dump")
                    .iter()
                    .map(|row| {
                        (0..row.columns().len())
                            .map(|i| row.try_get::<String, _>(i).map(|v| format!("'{v}'")).unwrap_or_default())
                            .collect::<Vec<_>>()
                            .join(",")
                    })
                    .collect()
            }
            Db::Postgres(pool) => {
                use sqlx::Row;
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .fetch_all(pool)
                    .await
                    .expect("dump")
                    .iter()
                    .map(|row| {
                        (0..row.columns().len())
                            .map(|i| row.try_get::<String, _>(i).map(|v| format!("'{v}'")).unwrap_or_default())
                            .collect::<Vec<_>>()
                            .join(",")
                    })
                    .collect()
            }
        };
        dump.push_str(&rows.join("\n"));
    }
    dump
}
