//! Who gets into the admin API (administrators, their API keys, API clients; not users nor
//! third-party tokens), the uniform API-client 401, allowlists, rate limits, legacy secret
//! hashes, and the API clients' own administration (`src/apiclients/`).

use serde_json::{Value, json};

use super::api_client;
use crate::common::*;
use crate::on_both_backends;

on_both_backends!(
    only_administrators_and_api_clients_get_in,
    api_client_credential_failures_look_identical,
    api_client_allowlists_and_rate_limit,
    legacy_api_client_hashes_verify_and_are_rehashed,
    api_clients_list_and_update,
);

async fn as_client(server: &TestServer, key: &str, secret: &str, path: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(server.url(path))
        .header("X-Client-Key", key)
        .header("X-API-Key", secret)
        .send()
        .await
        .expect("request")
}

/// A problem body without its per-request parts, for comparing answers.
fn shape(mut body: Value) -> Value {
    body.as_object_mut().expect("object").remove("request_id");
    body
}

async fn only_administrators_and_api_clients_get_in(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = admin_token(&server).await;
    server.user("alice@example.com", PASSWORD).await;
    let user = api_token(&server, "alice@example.com").await;
    let http = reqwest::Client::new();
    let users = server.url("/api/v1/admin/users");
    assert_eq!(http.get(&users).bearer_auth(&admin).send().await.expect("get").status(), 200);
    let response = http.get(&users).bearer_auth(&user).send().await.expect("get");
    assert_eq!(response.status(), 403);
    assert_eq!(json(response).await["code"], "admin_required");
    assert_eq!(http.get(&users).send().await.expect("get").status(), 401);

    // A third-party client's token (aud = its client id) is refused.
    let client = server.client(&["--name", "third", "--redirect-uri", REDIRECT]).await;
    server.user_with_role("boss@example.com", PASSWORD, true).await;
    let browser = Browser::new();
    let pkce = pkce();
    let url = authorize_url(&server, &client, &pkce, &[]);
    let redirect = run_browser_flow(&server, &browser, &url, "boss@example.com", PASSWORD).await;
    let code = query_of(&redirect)["code"].clone();
    let tokens = json(redeem(&server, &client, &code, &pkce.verifier).await).await;
    let response =
        http.get(&users).bearer_auth(tokens["access_token"].as_str().expect("token")).send().await.expect("get");
    assert_eq!(response.status(), 401);
    assert_eq!(json(response).await["code"], "invalid_audience");

    // An admin's API key: read with read:users, write only with admin.
    let created = http
        .post(server.url("/api/v1/users/me/api-keys"))
        .bearer_auth(&admin)
        .json(&json!({ "name": "reader", "scopes": ["read:users"] }))
        .send()
        .await
        .expect("key");
    let key = json(created).await["key"].as_str().expect("key").to_string();
    assert_eq!(http.get(&users).header("X-API-Key", &key).send().await.expect("get").status(), 200);
    let rotate =
        http.post(server.url("/api/v1/admin/keys/rotate")).header("X-API-Key", &key).send().await.expect("rotate");
    assert_eq!(rotate.status(), 403);

    let (client_key, secret) = api_client(&server, &admin, json!({ "name": "svc" })).await;
    assert_eq!(as_client(&server, &client_key, &secret, "/api/v1/admin/users").await.status(), 200);
}

async fn api_client_credential_failures_look_identical(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = admin_token(&server).await;
    let now = server.clock_now();
    let (good, secret) = api_client(&server, &admin, json!({ "name": "good" })).await;
    let (expiring, expiring_secret) =
        api_client(&server, &admin, json!({ "name": "soon", "expires_at": now + 60 })).await;
    let (disabled, disabled_secret) = api_client(&server, &admin, json!({ "name": "off" })).await;
    let response = reqwest::Client::new()
        .delete(server.url(&format!("/api/v1/admin/api-clients/{disabled}")))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("disable");
    assert_eq!(response.status(), 204);
    server.clock.advance(61);

    let mut answers = Vec::new();
    for (key, secret) in [
        ("apc_unknown", secret.as_str()),
        (good.as_str(), "wrong-secret"),
        (expiring.as_str(), expiring_secret.as_str()),
        (disabled.as_str(), disabled_secret.as_str()),
        (good.as_str(), ""),
    ] {
        let response = as_client(&server, key, secret, "/api/v1/admin/users").await;
        assert_eq!(response.status(), 401, "{key}");
        answers.push(shape(json(response).await));
    }
    assert!(answers.windows(2).all(|pair| pair[0] == pair[1]), "identical 401s: {answers:?}");
    // The reasons are in the audit log only.
    let audit = reqwest::Client::new()
        .get(server.url("/api/v1/admin/audit?action=api_client.auth_failed"))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("audit");
    let audit = json(audit).await;
    let reasons: Vec<&str> =
        audit["items"].as_array().expect("items").iter().filter_map(|e| e["details"]["reason"].as_str()).collect();
    for reason in ["unknown API client", "wrong secret", "expired API client", "inactive API client"] {
        assert!(reasons.contains(&reason), "{reason} in {reasons:?}");
    }
    assert_eq!(as_client(&server, &good, &secret, "/api/v1/admin/users").await.status(), 200);
}

async fn api_client_allowlists_and_rate_limit(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = admin_token(&server).await;
    let (elsewhere, elsewhere_secret) =
        api_client(&server, &admin, json!({ "name": "far", "allowed_ips": ["10.0.0.0/8"] })).await;
    let response = as_client(&server, &elsewhere, &elsewhere_secret, "/api/v1/admin/users").await;
    assert_eq!(response.status(), 403);
    assert_eq!(json(response).await["code"], "not_allowed");
    let (local, local_secret) = api_client(
        &server,
        &admin,
        json!({ "name": "near", "allowed_ips": ["127.0.0.1/32"], "allowed_paths": ["/api/v1/admin/users"] }),
    )
    .await;
    assert_eq!(as_client(&server, &local, &local_secret, "/api/v1/admin/users").await.status(), 200);
    assert_eq!(
        as_client(&server, &local, &local_secret, "/api/v1/admin/keys").await.status(),
        403,
        "path prefix allowlist"
    );

    let (limited, limited_secret) =
        api_client(&server, &admin, json!({ "name": "slow", "rate_limit_per_minute": 3 })).await;
    for _ in 0..3 {
        assert_eq!(as_client(&server, &limited, &limited_secret, "/api/v1/admin/users").await.status(), 200);
    }
    let response = as_client(&server, &limited, &limited_secret, "/api/v1/admin/users").await;
    assert_eq!(response.status(), 429);
    let retry: i64 = response.headers()["retry-after"].to_str().expect("header").parse().expect("seconds");
    assert!((1..=60).contains(&retry));
    server.clock.advance(60);
    assert_eq!(as_client(&server, &limited, &limited_secret, "/api/v1/admin/users").await.status(), 200);
}

async fn legacy_api_client_hashes_verify_and_are_rehashed(backend: Backend) {
    use oxidp::store::{ApiClient, ApiClientStore};
    let server = TestServer::start(backend).await;
    let now = server.clock_now();
    let sha_hex: String = oxidp::crypto::sha256("legacy-sha").iter().map(|b| format!("{b:02x}")).collect();
    let legacy = [
        ("apc_sha", "legacy-sha", format!("sha256:{sha_hex}")),
        ("apc_argon", "legacy-argon", oxidp::passwords::hash_password("legacy-argon").expect("hash")),
        ("apc_bcrypt", "legacy-bcrypt", bcrypt::hash("legacy-bcrypt", 4).expect("bcrypt")),
    ];
    for (id, _, hash) in &legacy {
        let client = ApiClient {
            id: id.to_string(),
            name: id.to_string(),
            secret_hash: hash.clone(),
            status: "active".into(),
            expires_at: None,
            allowed_origins: vec![],
            allowed_ips: vec![],
            allowed_paths: vec![],
            rate_limit_per_minute: 100,
            created_at: now,
            updated_at: now,
            last_used_at: None,
        };
        server.state.db.insert_api_client(&client).await.expect("insert");
    }
    for (id, secret, original) in &legacy {
        assert_eq!(as_client(&server, id, "wrong", "/api/v1/admin/users").await.status(), 401, "{id} wrong secret");
        let stored = server.state.db.api_client_by_id(id).await.expect("read").expect("exists").secret_hash;
        assert_eq!(&stored, original, "a failed check changes nothing");
        assert_eq!(as_client(&server, id, secret, "/api/v1/admin/users").await.status(), 200, "{id}");
        let stored = server.state.db.api_client_by_id(id).await.expect("read").expect("exists").secret_hash;
        assert!(stored.starts_with("keyed:"), "{id} rehashed to the keyed form: {stored}");
        assert_eq!(as_client(&server, id, secret, "/api/v1/admin/users").await.status(), 200, "{id} after rehash");
    }
}

async fn api_clients_list_and_update(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = admin_token(&server).await;
    let http = reqwest::Client::new();
    let (key, secret) = api_client(&server, &admin, json!({ "name": "one" })).await;
    api_client(&server, &admin, json!({ "name": "two" })).await;
    let listed =
        json(http.get(server.url("/api/v1/admin/api-clients?limit=1")).bearer_auth(&admin).send().await.expect("list"))
            .await;
    assert_eq!(listed["items"].as_array().expect("items").len(), 1);
    assert!(
        listed["items"][0].get("api_key").is_none() && !listed.to_string().contains(&secret),
        "no secrets in lists"
    );
    let cursor = listed["next_cursor"].as_str().expect("more").to_string();
    let rest = json(
        http.get(server.url(&format!("/api/v1/admin/api-clients?cursor={cursor}")))
            .bearer_auth(&admin)
            .send()
            .await
            .expect("list"),
    )
    .await;
    assert_eq!(rest["items"].as_array().expect("items").len(), 1);

    let url = server.url(&format!("/api/v1/admin/api-clients/{key}"));
    let patched = http
        .patch(&url)
        .bearer_auth(&admin)
        .json(&json!({ "allowed_ips": ["10.0.0.0/8"], "rate_limit_per_minute": 5 }))
        .send()
        .await
        .expect("patch");
    assert_eq!(patched.status(), 200);
    let patched = json(patched).await;
    assert_eq!(patched["allowed_ips"], json!(["10.0.0.0/8"]));
    assert_eq!(patched["name"], "one", "absent fields stay");
    assert_eq!(
        as_client(&server, &key, &secret, "/api/v1/admin/users").await.status(),
        403,
        "the new allowlist applies at once"
    );
    let disabled = http
        .patch(&url)
        .bearer_auth(&admin)
        .json(&json!({ "allowed_ips": [], "status": "disabled" }))
        .send()
        .await
        .expect("patch");
    assert_eq!(json(disabled).await["status"], "disabled");
    assert_eq!(as_client(&server, &key, &secret, "/api/v1/admin/users").await.status(), 401);
    let enabled =
        http.patch(&url).bearer_auth(&admin).json(&json!({ "status": "active" })).send().await.expect("patch");
    assert_eq!(enabled.status(), 200);
    assert_eq!(as_client(&server, &key, &secret, "/api/v1/admin/users").await.status(), 200);
    for (body, field) in [
        (json!({ "status": "paused" }), "status"),
        (json!({ "allowed_ips": ["not-an-ip"] }), "allow_ip"),
        (json!({ "rate_limit_per_minute": 0 }), "rate_limit_per_minute"),
        (json!({ "expires_at": 1 }), "expires_at"),
        (json!({ "allowed_paths": ["api"] }), "allowed_paths"),
    ] {
        let response = http.patch(&url).bearer_auth(&admin).json(&body).send().await.expect("patch");
        assert_eq!(response.status(), 400, "{body}");
        assert_eq!(json(response).await["field"], field);
    }
    let missing = http
        .patch(server.url("/api/v1/admin/api-clients/apc_nope"))
        .bearer_auth(&admin)
        .json(&json!({}))
        .send()
        .await
        .expect("patch");
    assert_eq!(missing.status(), 404);
}
