//! The admin API (`/api/v1/admin/*`: `src/api/admin.rs`, `src/api/admin_auth.rs`, `src/admin/`):
//! who may call it and the API clients (api_clients.rs), user administration: ban, soft delete,
//! erase and the administrator guards (users.rs), OAuth clients (oauth_clients.rs), signing keys
//! and the audit log (keys_and_audit.rs).

mod api_clients;
mod keys_and_audit;
mod oauth_clients;
mod users;

use serde_json::Value;

use crate::common::*;

async fn api_client(server: &TestServer, token: &str, body: Value) -> (String, String) {
    let response = reqwest::Client::new()
        .post(server.url("/api/v1/admin/api-clients"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("create api client");
    assert_eq!(response.status(), 201);
    let body = json(response).await;
    (body["client_key"].as_str().expect("key").to_string(), body["api_key"].as_str().expect("secret").to_string())
}
