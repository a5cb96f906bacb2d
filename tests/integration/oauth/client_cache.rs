//! What the token path keeps in memory (issue #7) never outlives a change: the client cache
//! follows every client change at once, on this instance and (through Redis) on the others;
//! a deleted client's tokens stop validating; a revoked client token stays revoked, also after
//! a restart of a single instance whose revocation set lives in memory.

use serde_json::{Value, json};

use crate::common::*;
use crate::on_both_backends;

on_both_backends!(
    client_changes_apply_at_once,
    deleted_clients_tokens_are_inactive,
    revoked_client_tokens_stay_revoked_across_restart
);

const SERVICE: &[&str] = &["--name", "svc", "--grant-types", "client_credentials", "--scopes", "api"];
const RESOURCE_SERVER: &[&str] =
    &["--name", "rs", "--grant-types", "client_credentials", "--scopes", "api", "--resource-server"];

async fn client_token(server: &TestServer, client: &TestClient) -> reqwest::Response {
    token_request(server, client, &[("grant_type", "client_credentials")]).await
}

async fn introspect(server: &TestServer, caller: &TestClient, token: &str) -> Value {
    let response = client_post(server, "/introspect", caller, &[("token", token)]).await;
    assert_eq!(response.status(), 200);
    json(response).await
}

async fn client_changes_apply_at_once(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = admin_token(&server).await;
    let service = server.client(SERVICE).await;
    // Both instances have the client cached before it changes.
    assert_eq!(client_token(&server, &service).await.status(), 200);
    let other = match backend {
        // Several instances need Redis (the SQLite test servers keep their state in process).
        Backend::Postgres => Some(server.second_instance().await),
        Backend::Sqlite => None,
    };
    if let Some(other) = &other {
        assert_eq!(client_token(other, &service).await.status(), 200);
    }

    let http = reqwest::Client::new();
    let response = http
        .post(server.url(&format!("/api/v1/admin/clients/{}/rotate-secret", service.id)))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("rotate");
    assert_eq!(response.status(), 200);
    let new_secret = json(response).await["client_secret"].as_str().expect("secret").to_string();
    let rotated = TestClient { id: service.id.clone(), secret: Some(new_secret) };
    for instance in std::iter::once(&server).chain(other.as_ref()) {
        assert_eq!(client_token(instance, &service).await.status(), 401, "the old secret stops working at once");
        assert_eq!(client_token(instance, &rotated).await.status(), 200);
    }

    // A scope removed by an update is refused at once too.
    let response = http
        .patch(server.url(&format!("/api/v1/admin/clients/{}", service.id)))
        .bearer_auth(&admin)
        .json(&json!({ "scopes": ["other"] }))
        .send()
        .await
        .expect("patch");
    assert_eq!(response.status(), 200);
    for instance in std::iter::once(&server).chain(other.as_ref()) {
        let response =
            token_request(instance, &rotated, &[("grant_type", "client_credentials"), ("scope", "api")]).await;
        assert_eq!(response.status(), 400);
        assert_eq!(json(response).await["error"], "invalid_scope");
    }
}

async fn deleted_clients_tokens_are_inactive(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = admin_token(&server).await;
    let service = server.client(SERVICE).await;
    let resource_server = server.client(RESOURCE_SERVER).await;
    let token = json(client_token(&server, &service).await).await["access_token"].as_str().expect("token").to_string();
    assert_eq!(introspect(&server, &resource_server, &token).await["active"], true);

    let response = reqwest::Client::new()
        .delete(server.url(&format!("/api/v1/admin/clients/{}", service.id)))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("delete");
    assert_eq!(response.status(), 204);
    assert_eq!(introspect(&server, &resource_server, &token).await, json!({ "active": false }));
    assert_eq!(client_token(&server, &service).await.status(), 401, "a deleted client cannot authenticate");
}

async fn revoked_client_tokens_stay_revoked_across_restart(backend: Backend) {
    let server = TestServer::start(backend).await;
    let service = server.client(SERVICE).await;
    let resource_server = server.client(RESOURCE_SERVER).await;
    let issue = || async {
        json(client_token(&server, &service).await).await["access_token"].as_str().expect("token").to_string()
    };
    let (revoked, kept) = (issue().await, issue().await);
    assert_eq!(client_post(&server, "/revoke", &service, &[("token", &revoked)]).await.status(), 200);
    assert_eq!(introspect(&server, &resource_server, &revoked).await, json!({ "active": false }));
    assert_eq!(introspect(&server, &resource_server, &kept).await["active"], true);

    // A new process on the same database (and, for PostgreSQL, the same Redis) knows it too.
    let restarted = server.second_instance().await;
    assert_eq!(introspect(&restarted, &resource_server, &revoked).await, json!({ "active": false }));
    assert_eq!(introspect(&restarted, &resource_server, &kept).await["active"], true);
}
