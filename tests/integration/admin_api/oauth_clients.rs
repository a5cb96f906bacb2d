//! OAuth clients through the admin API (`src/admin/clients.rs`): create, invalid registrations
//! naming their field, update, secret rotation, the built-in client, delete, and the audit trail.

use serde_json::json;

use crate::common::*;
use crate::on_both_backends;

on_both_backends!(oauth_clients_crud_and_secret_rotation);

async fn oauth_clients_crud_and_secret_rotation(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = admin_token(&server).await;
    let http = reqwest::Client::new();
    let clients = server.url("/api/v1/admin/clients");
    let created = http
        .post(&clients)
        .bearer_auth(&admin)
        .json(&json!({ "name": "Portal", "redirect_uris": [REDIRECT], "grant_types": ["authorization_code", "client_credentials"], "scopes": ["openid", "api"] }))
        .send()
        .await
        .expect("create");
    assert_eq!(created.status(), 201);
    let created = json(created).await;
    let id = created["client_id"].as_str().expect("id").to_string();
    let secret = created["client_secret"].as_str().expect("secret").to_string();
    let client = TestClient { id: id.clone(), secret: Some(secret.clone()) };
    assert_eq!(token_request(&server, &client, &[("grant_type", "client_credentials")]).await.status(), 200);

    // Invalid registrations name the field.
    for (body, field) in [
        (json!({ "name": "x", "public": true, "grant_types": ["client_credentials"] }), "grant_types"),
        (json!({ "name": "x", "redirect_uris": ["http://evil.example/cb"] }), "redirect_uris"),
        (json!({ "name": "", "redirect_uris": [REDIRECT] }), "name"),
        (json!({ "name": "x", "redirect_uris": [REDIRECT], "scopes": ["admin"] }), "scopes"),
    ] {
        let response = http.post(&clients).bearer_auth(&admin).json(&body).send().await.expect("create");
        assert_eq!(response.status(), 400, "{body}");
        assert_eq!(json(response).await["field"], field, "{body}");
    }

    let patched = http
        .patch(format!("{clients}/{id}"))
        .bearer_auth(&admin)
        .json(&json!({ "name": "Portal 2", "resource_server": true }))
        .send()
        .await
        .expect("patch");
    assert_eq!(patched.status(), 200);
    let patched = json(patched).await;
    assert_eq!(patched["name"], "Portal 2");
    assert_eq!(patched["resource_server"], true);
    assert_eq!(patched["redirect_uris"], json!([REDIRECT]), "absent fields stay");

    let rotated =
        json(http.post(format!("{clients}/{id}/rotate-secret")).bearer_auth(&admin).send().await.expect("rotate"))
            .await;
    let new_secret = rotated["client_secret"].as_str().expect("secret").to_string();
    assert_ne!(new_secret, secret);
    let old = token_request(&server, &client, &[("grant_type", "client_credentials")]).await;
    assert_eq!(old.status(), 401, "the old secret stops working at once");
    let rotated_client = TestClient { id: id.clone(), secret: Some(new_secret) };
    assert_eq!(token_request(&server, &rotated_client, &[("grant_type", "client_credentials")]).await.status(), 200);

    let listed = json(http.get(format!("{clients}?limit=100")).bearer_auth(&admin).send().await.expect("list")).await;
    let ids: Vec<&str> =
        listed["items"].as_array().expect("items").iter().map(|c| c["client_id"].as_str().expect("id")).collect();
    assert!(ids.contains(&id.as_str()) && ids.contains(&"oxidp-api"));
    let builtin = http.delete(format!("{clients}/oxidp-api")).bearer_auth(&admin).send().await.expect("delete");
    assert_eq!(builtin.status(), 403);

    assert_eq!(http.delete(format!("{clients}/{id}")).bearer_auth(&admin).send().await.expect("delete").status(), 204);
    assert_eq!(http.get(format!("{clients}/{id}")).bearer_auth(&admin).send().await.expect("get").status(), 404);
    assert_eq!(http.delete(format!("{clients}/{id}")).bearer_auth(&admin).send().await.expect("delete").status(), 404);
    assert_eq!(token_request(&server, &rotated_client, &[("grant_type", "client_credentials")]).await.status(), 401);
    let audit = json(
        http.get(server.url(&format!("/api/v1/admin/audit?target={id}")))
            .bearer_auth(&admin)
            .send()
            .await
            .expect("audit"),
    )
    .await;
    let actions: Vec<&str> =
        audit["items"].as_array().expect("items").iter().map(|e| e["action"].as_str().expect("action")).collect();
    assert_eq!(actions, vec!["client.delete", "client.rotate_secret", "client.update", "client.create"]);
}
