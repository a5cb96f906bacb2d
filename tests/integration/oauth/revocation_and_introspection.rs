//! Revocation (RFC 7009, `src/oauth/revocation.rs`) and introspection (RFC 7662,
//! `src/oauth/introspection.rs`): revoked tokens introspect inactive, other clients can neither
//! revoke nor see a token, and flagged resource servers introspect every client's tokens.
//! Revoking a refresh token revokes its grant: refresh_token.rs.

use serde_json::json;

use super::{SERVICE, code_flow, expect_oauth_error, expect_token, introspect, post_with_authorization, revoke};
use crate::common::*;
use crate::on_both_backends;

on_both_backends!(
    revoked_tokens_introspect_as_inactive,
    other_clients_cannot_revoke_or_introspect,
    resource_server_introspects_other_clients_tokens,
    a_public_client_is_never_a_resource_server,
);

/// Issue #12 item 7: a public client has no secret, so as a resource server anyone knowing its
/// client_id could introspect every token. Registration refuses the combination; one stored
/// by an earlier version sees nothing and loses the right at the next start, audited.
async fn a_public_client_is_never_a_resource_server(backend: Backend) {
    use oxidp::store::{AuditFilter, AuditStore, ClientStore, NewClient};
    let flow = code_flow(backend).await;
    let server = &flow.server;
    let admin = admin_token(server).await;
    let body = json!({ "name": "Both", "redirect_uris": [REDIRECT], "public": true, "resource_server": true });
    let refused = api_post(server, "/api/v1/admin/clients", Some(&admin), &body).await;
    assert_eq!(refused.status(), 400);
    assert_eq!(json(refused).await["field"], "resource_server");

    let stored = NewClient {
        id: "legacy-public-rs".into(),
        name: "Legacy public resource server".into(),
        secret_hash: None,
        redirect_uris: vec![REDIRECT.into()],
        post_logout_redirect_uris: vec![],
        grant_types: vec!["authorization_code".into()],
        scopes: vec!["openid".into()],
        audiences: vec![],
        resources: vec![],
        is_public: true,
        first_party: false,
        resource_server: true,
        pkce_exempt: false,
        api_access: false,
        id_token_alg: None,
        require_par: false,
        dpop_bound_access_tokens: false,
        registered_via: None,
    };
    server.state.db.create_client(stored, server.clock_now()).await.expect("insert client");
    let legacy = TestClient { id: "legacy-public-rs".into(), secret: None };
    assert_eq!(introspect(server, &legacy, &flow.access_token).await, json!({ "active": false }));
    assert_eq!(introspect(server, &legacy, &flow.refresh_token).await, json!({ "active": false }));

    let restarted = server.second_instance().await;
    let client = restarted.state.db.client_by_id("legacy-public-rs").await.expect("read").expect("client");
    assert!(!client.resource_server, "demoted at start");
    let filter = AuditFilter { target_id: Some("legacy-public-rs".into()), limit: 10, ..AuditFilter::default() };
    let entries = restarted.state.db.query_audit(&filter).await.expect("audit");
    assert!(
        entries.iter().any(|e| e.action == "client.update" && e.details.contains("resource_server")),
        "{entries:?}"
    );
}

async fn revoked_tokens_introspect_as_inactive(backend: Backend) {
    let flow = code_flow(backend).await;
    let (server, client) = (&flow.server, &flow.client);

    let answer = introspect(server, client, &flow.access_token).await;
    assert_eq!(answer["active"], true, "{answer}");
    assert_eq!(answer["client_id"], client.id.as_str());
    assert_eq!(answer["token_type"], "Bearer");
    assert_eq!(answer["scope"], "openid profile email offline_access");
    let sub = answer["sub"].as_str().expect("sub").to_string();
    let answer = introspect(server, client, &flow.refresh_token).await;
    assert_eq!(answer["active"], true, "{answer}");
    assert_eq!(answer["client_id"], client.id.as_str());
    assert_eq!(answer["sub"], sub.as_str());
    assert_eq!(answer["token_type"], "refresh_token");

    // Revoking the access token: it is inactive and no longer accepted at /userinfo.
    revoke(server, client, &flow.access_token).await;
    assert_eq!(introspect(server, client, &flow.access_token).await, json!({ "active": false }));
    let response = reqwest::Client::new()
        .get(server.url("/userinfo"))
        .bearer_auth(&flow.access_token)
        .send()
        .await
        .expect("userinfo");
    assert_eq!(response.status(), 401);
    // Revoking again, with a hint, is still 200.
    let response =
        client_post(server, "/revoke", client, &[("token", &flow.access_token), ("token_type_hint", "access_token")])
            .await;
    assert_eq!(response.status(), 200);

    // Revoking the refresh token: it is inactive and cannot be used.
    revoke(server, client, &flow.refresh_token).await;
    assert_eq!(introspect(server, client, &flow.refresh_token).await, json!({ "active": false }));
    let response =
        token_request(server, client, &[("grant_type", "refresh_token"), ("refresh_token", &flow.refresh_token)]).await;
    expect_oauth_error(response, 400, "invalid_grant").await;

    // Unknown or garbage tokens: 200 and nothing else; introspection says inactive.
    for token in ["no-such-token", "a.b.c", &"x".repeat(200)] {
        revoke(server, client, token).await;
        assert_eq!(introspect(server, client, token).await, json!({ "active": false }));
    }
    // A missing token parameter is a malformed request.
    for path in ["/revoke", "/introspect"] {
        let response = client_post(server, path, client, &[("token_type_hint", "access_token")]).await;
        expect_oauth_error(response, 400, "invalid_request").await;
    }
    // Introspection and revocation require client authentication.
    for path in ["/introspect", "/revoke"] {
        let response = post_with_authorization(server, path, None, &[("token", &flow.access_token)]).await;
        expect_oauth_error(response, 401, "invalid_client").await;
    }
}

async fn other_clients_cannot_revoke_or_introspect(backend: Backend) {
    let flow = code_flow(backend).await;
    let (server, client) = (&flow.server, &flow.client);
    let other = server.client(&["--name", "Other", "--redirect-uri", REDIRECT]).await;
    let public = server.client(&["--name", "Public", "--public", "--redirect-uri", REDIRECT]).await;

    for intruder in [&other, &public] {
        for token in [&flow.access_token, &flow.refresh_token] {
            // Not for them to see: exactly {"active": false}.
            assert_eq!(introspect(server, intruder, token).await, json!({ "active": false }));
            // Not for them to revoke: 200, but nothing happens.
            revoke(server, intruder, token).await;
            assert_eq!(introspect(server, client, token).await["active"], true, "another client revoked a token");
        }
    }
    // The tokens still work.
    let response = reqwest::Client::new()
        .get(server.url("/userinfo"))
        .bearer_auth(&flow.access_token)
        .send()
        .await
        .expect("userinfo");
    assert_eq!(response.status(), 200);
    let response =
        token_request(server, client, &[("grant_type", "refresh_token"), ("refresh_token", &flow.refresh_token)]).await;
    expect_token(response).await;
}

async fn resource_server_introspects_other_clients_tokens(backend: Backend) {
    let flow = code_flow(backend).await;
    let (server, client) = (&flow.server, &flow.client);
    let resource_server = server
        .client(&["--name", "API", "--grant-types", "client_credentials", "--scopes", "api:read", "--resource-server"])
        .await;

    let own = introspect(server, client, &flow.access_token).await;
    let answer = introspect(server, &resource_server, &flow.access_token).await;
    assert_eq!(answer["active"], true, "{answer}");
    assert_eq!(answer, own, "the resource server gets the full answer");
    assert_eq!(answer["client_id"], client.id.as_str());
    assert_eq!(answer["aud"], client.id.as_str());
    assert_eq!(answer["iss"], server.base.as_str());
    assert!(answer["sub"].is_string() && answer["exp"].is_i64() && answer["iat"].is_i64(), "{answer}");

    let answer = introspect(server, &resource_server, &flow.refresh_token).await;
    assert_eq!(answer["active"], true, "{answer}");
    assert_eq!(answer["client_id"], client.id.as_str());
    assert_eq!(answer["sub"], own["sub"]);
    assert_eq!(answer["scope"], "openid profile email offline_access");

    // Another service's client_credentials token too.
    let service = server.client(SERVICE).await;
    let body = expect_token(token_request(server, &service, &[("grant_type", "client_credentials")]).await).await;
    let answer = introspect(server, &resource_server, body["access_token"].as_str().expect("token")).await;
    assert_eq!(answer["active"], true, "{answer}");
    assert_eq!(answer["sub"], service.id.as_str());

    // A resource server still cannot revoke other clients' tokens.
    revoke(server, &resource_server, &flow.access_token).await;
    assert_eq!(introspect(server, client, &flow.access_token).await["active"], true);
    // Once revoked by its owner, the resource server sees it inactive.
    revoke(server, client, &flow.access_token).await;
    assert_eq!(introspect(server, &resource_server, &flow.access_token).await, json!({ "active": false }));
}
