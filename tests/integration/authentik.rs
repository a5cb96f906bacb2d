//! `POST /api/v1/internal/authentik/users/ensure` against a small Authentik look-alike that
//! speaks its admin API (`/api/v3/core/users/`: paginated search, create, partial update,
//! Bearer token). Idempotent, safe under concurrency, and Authentik's failures are reported
//! (502 when it refuses, 503 when it cannot be reached).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use oxidp::config::AuthentikConfig;
use oxidp::store::{IdentityStore, UserStore};
use poem::http::StatusCode;
use poem::web::{Data, Json, Path, Query};
use poem::{EndpointExt, Request, Response, Route, get, handler, patch};
use serde_json::{Value, json};

use crate::common::*;
use crate::federation::{serve_mock, silent_listener};
use crate::on_both_backends;
use crate::permissions::SECRET;

on_both_backends!(
    ensure_creates_then_updates_only_what_differs,
    authentik_failures_are_reported,
    upsert_defaults_to_the_configured_authentik_provider,
);

const ENSURE: &str = "/api/v1/internal/authentik/users/ensure";
const TOKEN: &str = "ak-admin-token";

#[derive(Default)]
struct Authentik {
    users: Vec<Value>,
    next_pk: i64,
    /// (method, path) of every request.
    requests: Vec<(String, String)>,
    patches: Vec<Value>,
}

type Shared = Arc<Mutex<Authentik>>;

fn authorized(req: &Request, state: &Shared) -> bool {
    state.lock().expect("lock").requests.push((req.method().to_string(), req.uri().path().to_string()));
    req.header("authorization") == Some(&format!("Bearer {TOKEN}"))
}

fn answer(status: StatusCode, body: Value) -> Response {
    Response::builder().status(status).content_type("application/json").body(body.to_string())
}

fn forbidden() -> Response {
    answer(StatusCode::FORBIDDEN, json!({ "detail": "Token invalid/expired" }))
}

#[handler]
fn list_users(req: &Request, Data(state): Data<&Shared>, Query(query): Query<HashMap<String, String>>) -> Response {
    if !authorized(req, state) {
        return forbidden();
    }
    let state = state.lock().expect("lock");
    let matching: Vec<&Value> = state
        .users
        .iter()
        .filter(|user| query.get("username").is_none_or(|name| user["username"] == name.as_str()))
        .collect();
    // Authentik pages its lists; one user per page here.
    let page: usize = query.get("page").and_then(|p| p.parse().ok()).unwrap_or(1);
    let results: Vec<&Value> = matching.iter().skip(page - 1).take(1).copied().collect();
    let next = if page < matching.len() { page + 1 } else { 0 };
    answer(
        StatusCode::OK,
        json!({
            "pagination": { "next": next, "previous": page - 1, "count": matching.len(), "current": page,
                            "total_pages": matching.len().max(1), "start_index": page, "end_index": page },
            "results": results,
        }),
    )
}

#[handler]
fn create_user(req: &Request, Data(state): Data<&Shared>, Json(body): Json<Value>) -> Response {
    if !authorized(req, state) {
        return forbidden();
    }
    let mut state = state.lock().expect("lock");
    let (Some(username), Some(name)) = (body["username"].as_str(), body["name"].as_str()) else {
        return answer(StatusCode::BAD_REQUEST, json!({ "name": ["This field is required."] }));
    };
    if state.users.iter().any(|user| user["username"] == username) {
        return answer(StatusCode::BAD_REQUEST, json!({ "username": ["This field must be unique."] }));
    }
    state.next_pk += 1;
    let user = json!({
        "pk": state.next_pk,
        "username": username,
        "name": name,
        "email": body["email"].as_str().unwrap_or(""),
        "is_active": body["is_active"].as_bool().unwrap_or(true),
        "uid": format!("uid-{}", state.next_pk),
        "path": "users",
        "type": "internal",
        "groups": [],
        "attributes": {},
    });
    state.users.push(user.clone());
    answer(StatusCode::CREATED, user)
}

#[handler]
fn update_user(req: &Request, Data(state): Data<&Shared>, Path(pk): Path<i64>, Json(body): Json<Value>) -> Response {
    if !authorized(req, state) {
        return forbidden();
    }
    let mut state = state.lock().expect("lock");
    state.patches.push(body.clone());
    let Some(user) = state.users.iter_mut().find(|user| user["pk"] == pk) else {
        return answer(StatusCode::NOT_FOUND, json!({ "detail": "Not found." }));
    };
    for (key, value) in body.as_object().into_iter().flatten() {
        user[key] = value.clone();
    }
    answer(StatusCode::OK, user.clone())
}

async fn authentik_mock() -> (String, Shared) {
    let shared: Shared = Arc::default();
    let app = Route::new()
        .at("/api/v3/core/users/", get(list_users).post(create_user))
        .at("/api/v3/core/users/:pk/", patch(update_user))
        .data(shared.clone());
    (serve_mock(app).await, shared)
}

async fn server_with(backend: Backend, base_url: Option<String>, token: &str, timeout: Option<u64>) -> TestServer {
    let token = token.to_string();
    TestServer::start_with(backend, move |config| {
        config.internal_secret = Some(SECRET.into());
        config.authentik = base_url.map(|base_url| AuthentikConfig {
            base_url: Some(base_url),
            token: Some(token),
            provider: None,
            timeout,
        });
    })
    .await
}

async fn ensure(server: &TestServer, body: Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(server.url(ENSURE))
        .header("X-Internal-Secret", SECRET)
        .json(&body)
        .send()
        .await
        .expect("ensure")
}

async fn ok(response: reqwest::Response) -> Value {
    assert_eq!(response.status(), 200);
    json(response).await
}

fn writes(state: &Shared) -> usize {
    state.lock().expect("lock").requests.iter().filter(|(method, _)| method != "GET").count()
}

async fn ensure_creates_then_updates_only_what_differs(backend: Backend) {
    let (base, authentik) = authentik_mock().await;
    let server = server_with(backend, Some(base), TOKEN, None).await;

    let body = json!({ "email": "new@example.com", "name": "New Person" });
    let created = ok(ensure(&server, body.clone()).await).await;
    assert_eq!(created["created"], true);
    assert_eq!(created["updated"], false);
    assert_eq!(created["username"], "new@example.com", "the username defaults to the email");
    assert_eq!(created["uid"], "uid-1");
    assert!(created["pk"].is_i64());

    // The same request again changes nothing in Authentik.
    let writes_before = writes(&authentik);
    let again = ok(ensure(&server, body).await).await;
    assert_eq!((again["created"].as_bool(), again["updated"].as_bool()), (Some(false), Some(false)));
    assert_eq!(again["pk"], created["pk"]);
    assert_eq!(writes(&authentik), writes_before, "no write for an unchanged user");

    // Only the fields that differ are sent.
    let changed = ok(ensure(&server, json!({ "email": "new@example.com", "name": "Renamed" })).await).await;
    assert_eq!(changed["updated"], true);
    assert_eq!(changed["name"], "Renamed");
    assert_eq!(authentik.lock().expect("lock").patches.last().cloned(), Some(json!({ "name": "Renamed" })));

    // From an oxidp user, by its subject; a ban makes the Authentik user inactive.
    let sam = server.user("sam@example.com", PASSWORD).await;
    let mirrored = ok(ensure(&server, json!({ "sub": sam.sub })).await).await;
    assert_eq!(mirrored["created"], true);
    assert_eq!(mirrored["email"], "sam@example.com");
    assert_eq!(mirrored["name"], "Test User");
    assert_eq!(mirrored["is_active"], true);
    server.state.db.set_role_and_status(&sam.id, None, Some("banned"), server.clock_now()).await.expect("ban");
    let banned = ok(ensure(&server, json!({ "sub": sam.sub })).await).await;
    assert_eq!(banned["updated"], true);
    assert_eq!(banned["is_active"], false);

    // Concurrent calls for one new user make one user.
    let url = server.url(ENSURE);
    let calls = (0..4).map(|_| {
        let request = reqwest::Client::new()
            .post(&url)
            .header("X-Internal-Secret", SECRET)
            .json(&json!({ "email": "race@example.com", "username": "race" }));
        async move { request.send().await.expect("ensure") }
    });
    for response in futures_join(calls).await {
        assert_eq!(response.status(), 200);
    }
    let users = authentik.lock().expect("lock").users.clone();
    assert_eq!(users.iter().filter(|user| user["username"] == "race").count(), 1);

    // Bad input, unknown subject, no secret.
    let response = ensure(&server, json!({ "name": "No Email" })).await;
    assert_eq!(response.status(), 400);
    let response = ensure(&server, json!({ "email": "not-an-email" })).await;
    assert_eq!(response.status(), 400);
    let response = ensure(&server, json!({ "sub": "no-such-sub" })).await;
    assert_eq!(response.status(), 404);
    let response = ensure(&server, json!({ "email": "x@example.com", "unknown": 1 })).await;
    assert_eq!(response.status(), 400, "unknown fields are refused");
    let response = reqwest::Client::new().post(server.url(ENSURE)).json(&json!({})).send().await.expect("ensure");
    assert_eq!(response.status(), 401);
}

async fn futures_join<F: Future<Output = reqwest::Response> + Send + 'static>(
    calls: impl Iterator<Item = F>,
) -> Vec<reqwest::Response> {
    let handles: Vec<_> = calls.map(tokio::spawn).collect();
    let mut responses = Vec::new();
    for handle in handles {
        responses.push(handle.await.expect("join"));
    }
    responses
}

async fn authentik_failures_are_reported(backend: Backend) {
    // Not configured: the route answers 404 (behind the internal secret).
    let server = server_with(backend, None, TOKEN, None).await;
    let response = ensure(&server, json!({ "email": "a@example.com" })).await;
    assert_eq!(response.status(), 404);
    assert_eq!(response.headers()["content-type"], "application/problem+json");

    // Authentik refuses oxidp's token: 502 with Authentik's status.
    let (base, _) = authentik_mock().await;
    let server = server_with(backend, Some(base), "wrong-token", None).await;
    let response = ensure(&server, json!({ "email": "a@example.com" })).await;
    assert_eq!(response.status(), 502);
    assert_eq!(response.headers()["content-type"], "application/problem+json");
    let problem = json(response).await;
    assert_eq!(problem["code"], "authentik_error");
    assert!(problem["detail"].as_str().is_some_and(|d| d.contains("403")), "{problem}");
    assert!(problem["request_id"].is_string());
    assert!(!problem.to_string().contains("wrong-token"), "the token is never echoed");

    // Unreachable (refused, then silent past the time-out): 503 with Retry-After.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        format!("http://{}", listener.local_addr().expect("addr"))
    };
    let (_silent, silent) = silent_listener();
    for base in [closed, silent] {
        let server = server_with(backend, Some(base), TOKEN, Some(1)).await;
        let response = ensure(&server, json!({ "email": "a@example.com" })).await;
        assert_eq!(response.status(), 503);
        assert!(response.headers().contains_key("retry-after"));
    }
}

async fn upsert_defaults_to_the_configured_authentik_provider(backend: Backend) {
    let server = TestServer::start_with(backend, |config| {
        config.internal_secret = Some(SECRET.into());
        config.authentik = Some(AuthentikConfig { provider: Some("corp-sso".into()), ..AuthentikConfig::default() });
    })
    .await;
    let response = reqwest::Client::new()
        .post(server.url("/api/v1/internal/users/upsert-by-sub"))
        .header("X-Internal-Secret", SECRET)
        .json(&json!({ "sub": "ak-1", "email": "ak@example.com" }))
        .send()
        .await
        .expect("upsert");
    let body = ok(response).await;
    assert_eq!(body["provider"], "corp-sso");
    let identity = server.state.db.identity("corp-sso", "ak-1").await.expect("db").expect("identity");
    let user = server.state.db.user_by_id(&identity.user_id).await.expect("db").expect("user");
    assert_eq!(body["sub"], user.sub.as_str());
}
