//! What happens to a registered client after its registration (issue #14 item 1): RFC 7592
//! updates replace its back-channel logout, JWT authentication and request-object settings;
//! administrators see which clients registered themselves and can disable (and enable) them.
//! Also: under `token`, a caller without a live initial access token learns nothing about the
//! metadata rules.

use josekit::jws::{HS256, HS512, JwsSigner};
use serde_json::{Value, json};

use crate::browser::expect_page;
use crate::common::*;
use crate::oauth::key_pair;
use crate::oauth::request_object::{TYP, object_claims, query_url, sign};
use crate::on_both_backends;
use crate::registration::{expect_error, initial_token, register, web_app, with_mode};
use oxidp::config::DynamicRegistration;
use oxidp::store::{AuditFilter, AuditStore, BackchannelStore};

on_both_backends!(
    updates_replace_back_channel_and_jwt_settings,
    request_object_signing_alg_is_the_only_algorithm_accepted,
    administrators_see_and_disable_registered_clients,
    without_a_live_token_the_metadata_is_not_examined,
);

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// A registration's management handles.
struct Registered {
    body: Value,
    uri: String,
    access: String,
}

impl Registered {
    fn id(&self) -> &str {
        self.body["client_id"].as_str().expect("client_id")
    }

    /// PUT the metadata (with the client's id): the answer of a 200 (its renewed access token
    /// kept for the next call), else the refusal.
    async fn update(&mut self, mut metadata: Value) -> Result<Value, reqwest::Response> {
        metadata["client_id"] = json!(self.id());
        let answer =
            reqwest::Client::new().put(&self.uri).bearer_auth(&self.access).json(&metadata).send().await.expect("PUT");
        if answer.status() != 200 {
            return Err(answer);
        }
        let body = json(answer).await;
        self.access = body["registration_access_token"].as_str().expect("renewed token").to_string();
        Ok(body)
    }
}

async fn registered(server: &TestServer, token: &str, metadata: &Value) -> Registered {
    let answer = register(server, Some(token), metadata).await;
    assert_eq!(answer.status(), 201, "{metadata}");
    let body = json(answer).await;
    let uri = body["registration_client_uri"].as_str().expect("uri").to_string();
    let access = body["registration_access_token"].as_str().expect("token").to_string();
    Registered { body, uri, access }
}

fn hmac_assertion(server: &TestServer, signer: &dyn JwsSigner, client_id: &str) -> String {
    let claims = json!({
        "iss": client_id, "sub": client_id, "aud": server.url("/token"),
        "exp": server.clock_now() + 300, "jti": uuid::Uuid::new_v4().to_string(),
    });
    sign(signer, None, &claims)
}

async fn client_credentials(server: &TestServer, assertion: &str) -> reqwest::Response {
    let form = [
        ("grant_type", "client_credentials"),
        ("client_assertion_type", ASSERTION_TYPE),
        ("client_assertion", assertion),
    ];
    reqwest::Client::new().post(server.url("/token")).form(&form).send().await.expect("POST /token")
}

async fn updates_replace_back_channel_and_jwt_settings(backend: Backend) {
    let server = TestServer::start_with(backend, with_mode(DynamicRegistration::Token)).await;
    let token = initial_token(&server, None, None).await;

    // Back-channel logout: set at registration, changed, then removed by updates.
    let mut app = registered(&server, &token, &web_app()).await;
    let stored = server.state.db.backchannel_logout(app.id()).await.expect("read").expect("registered");
    assert_eq!((stored.uri.as_str(), stored.session_required), ("https://app.example.com/logout", true));
    let mut changed = web_app();
    changed["backchannel_logout_uri"] = json!("https://app.example.com/bcl");
    changed["backchannel_logout_session_required"] = json!(false);
    let answer = app.update(changed.clone()).await.expect("updated");
    assert_eq!(answer["backchannel_logout_uri"], "https://app.example.com/bcl");
    let stored = server.state.db.backchannel_logout(app.id()).await.expect("read").expect("still registered");
    assert_eq!((stored.uri.as_str(), stored.session_required), ("https://app.example.com/bcl", false));
    // A private address is refused by the outgoing-request rule, and nothing changes.
    let mut private = changed.clone();
    private["backchannel_logout_uri"] = json!("https://10.1.2.3/bcl");
    expect_error(app.update(private).await.expect_err("refused"), 400, "invalid_client_metadata").await;
    let stored = server.state.db.backchannel_logout(app.id()).await.expect("read").expect("unchanged");
    assert_eq!(stored.uri, "https://app.example.com/bcl");
    let mut removed = changed.clone();
    removed.as_object_mut().expect("object").remove("backchannel_logout_uri");
    let answer = app.update(removed).await.expect("updated");
    assert!(answer.get("backchannel_logout_uri").is_none(), "{answer}");
    assert!(server.state.db.backchannel_logout(app.id()).await.expect("read").is_none());

    // client_secret_jwt: the signing algorithm changes, the secret stays (only a rotation changes it).
    let service = json!({
        "client_name": "Service",
        "grant_types": ["client_credentials"],
        "token_endpoint_auth_method": "client_secret_jwt",
        "token_endpoint_auth_signing_alg": "HS256",
    });
    let mut service_reg = registered(&server, &token, &service).await;
    let id = service_reg.id().to_string();
    let secret = service_reg.body["client_secret"].as_str().expect("secret").to_string();
    let hs256 = HS256.signer_from_bytes(secret.as_bytes()).expect("hmac");
    let hs512 = HS512.signer_from_bytes(secret.as_bytes()).expect("hmac");
    assert_eq!(client_credentials(&server, &hmac_assertion(&server, &hs256, &id)).await.status(), 200);
    let mut stronger = service.clone();
    stronger["token_endpoint_auth_signing_alg"] = json!("HS512");
    let answer = service_reg.update(stronger).await.expect("updated");
    assert_eq!(answer["token_endpoint_auth_signing_alg"], "HS512");
    assert!(answer.get("client_secret").is_none(), "the secret is not shown again: {answer}");
    let refused = client_credentials(&server, &hmac_assertion(&server, &hs256, &id)).await;
    assert_eq!(refused.status(), 401, "HS256 is no longer accepted");
    assert_eq!(json(refused).await["error"], "invalid_client");
    let accepted = client_credentials(&server, &hmac_assertion(&server, &hs512, &id)).await;
    assert_eq!(accepted.status(), 200, "the same secret, with the new algorithm");
    // The method itself cannot change.
    let mut switched = service.clone();
    switched["token_endpoint_auth_method"] = json!("private_key_jwt");
    switched["jwks"] = json!({ "keys": [Value::Object(key_pair("k").1.as_ref().clone())] });
    expect_error(service_reg.update(switched).await.expect_err("refused"), 400, "invalid_client_metadata").await;
}

async fn request_object_signing_alg_is_the_only_algorithm_accepted(backend: Backend) {
    let server = TestServer::start_with(backend, with_mode(DynamicRegistration::Token)).await;
    server.user("alice@example.com", PASSWORD).await;
    let token = initial_token(&server, None, None).await;
    let (signer, public) = key_pair("k1");
    let keyed = |alg: &str| {
        json!({
            "client_name": "Signed Requests",
            "redirect_uris": [REDIRECT],
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks": { "keys": [Value::Object(public.as_ref().clone())] },
            "request_object_signing_alg": alg,
        })
    };
    // Refused: an algorithm that is not asymmetric, `none`, and an algorithm without keys.
    for (what, metadata) in [
        ("HMAC for private_key_jwt", keyed("HS256")),
        ("none", keyed("none")),
        ("no keys", json!({ "redirect_uris": [REDIRECT], "request_object_signing_alg": "RS256" })),
    ] {
        let answer = register(&server, Some(&token), &metadata).await;
        let body = expect_error(answer, 400, "invalid_client_metadata").await;
        assert!(body["error_description"].as_str().is_some_and(|d| d.contains("request_object_signing_alg")), "{what}");
    }

    let mut client = registered(&server, &token, &keyed("RS256")).await;
    assert_eq!(client.body["request_object_signing_alg"], "RS256");
    let id = client.id().to_string();
    let pkce = pkce();
    let object = sign(signer.as_ref(), Some(TYP), &object_claims(&server, &id, &pkce));
    let url = query_url(&server, &[("client_id", &id), ("response_type", "code"), ("request", &object)]);
    let browser = Browser::new();
    let html = expect_page(browser.get(&url).await, 400).await;
    assert!(html.contains("request_object_signing_alg"), "an ES256 object for an RS256 client: {html}");

    // The client changes its choice to ES256: the same object now starts the sign-in.
    let answer = client.update(keyed("ES256")).await.expect("updated");
    assert_eq!(answer["request_object_signing_alg"], "ES256");
    let started = browser.get(&url).await;
    assert!(started.status().is_success() || started.status().is_redirection(), "{}", started.status());
    let html = started.text().await.expect("body");
    assert!(!html.contains("invalid_request_object"), "{html}");
}

async fn administrators_see_and_disable_registered_clients(backend: Backend) {
    let server = TestServer::start_with(backend, with_mode(DynamicRegistration::Token)).await;
    server.user("alice@example.com", PASSWORD).await;
    let token = initial_token(&server, None, None).await;
    let app = registered(&server, &token, &web_app()).await;
    let id = app.id().to_string();
    let by_admin = server.client(&["--name", "Admin's", "--redirect-uri", REDIRECT]).await;
    let admin = api_token(&server, "root@example.com").await;
    let http = reqwest::Client::new();
    let view = |client_id: &str| {
        let request = http.get(server.url(&format!("/api/v1/admin/clients/{client_id}"))).bearer_auth(&admin);
        async move { json(request.send().await.expect("GET")).await }
    };
    let seen = view(&id).await;
    assert_eq!(seen["registered_via"], "dynamic_registration");
    assert_eq!(seen["disabled"], false);
    assert_eq!(view(&by_admin.id).await["registered_via"], Value::Null);

    // Tokens from before the client is disabled.
    let client = TestClient { id: id.clone(), secret: app.body["client_secret"].as_str().map(String::from) };
    let (code, pkce) = obtain_code(&server, &Browser::new(), &client, &[]).await;
    let tokens = json(redeem(&server, &client, &code, &pkce.verifier).await).await;
    let access = tokens["access_token"].as_str().expect("access").to_string();
    let refresh = tokens["refresh_token"].as_str().expect("refresh").to_string();
    let userinfo = || http.get(server.url("/userinfo")).bearer_auth(&access).send();
    assert_eq!(userinfo().await.expect("userinfo").status(), 200);

    let disable = server.url(&format!("/api/v1/admin/clients/{id}/disable"));
    let alice = api_token(&server, "alice@example.com").await;
    let forbidden = http.post(&disable).bearer_auth(&alice).send().await.expect("POST");
    assert_eq!(forbidden.status(), 403, "only administrators");
    let missing = http.post(server.url("/api/v1/admin/clients/nope/disable")).bearer_auth(&admin).send().await;
    assert_eq!(missing.expect("POST").status(), 404);
    let disabled = http.post(&disable).bearer_auth(&admin).send().await.expect("POST");
    assert_eq!(disabled.status(), 200);
    let disabled = json(disabled).await;
    assert_eq!(disabled["disabled"], true);
    assert!(disabled["disabled_at"].as_i64().is_some());

    // Refused everywhere: token endpoint, its access token, the authorization endpoint.
    let grant = [("grant_type", "refresh_token"), ("refresh_token", refresh.as_str())];
    let refused = token_request(&server, &client, &grant).await;
    assert_eq!(refused.status(), 401);
    assert_eq!(json(refused).await["error"], "invalid_client");
    assert_eq!(userinfo().await.expect("userinfo").status(), 401, "its tokens stop validating");
    let authorize = authorize_url(&server, &client, &pkce, &[]);
    expect_page(Browser::new().get(&authorize).await, 400).await;
    let filter = AuditFilter { action: Some("client.disable".into()), limit: 10, ..AuditFilter::default() };
    let entries = server.state.db.query_audit(&filter).await.expect("audit");
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].target_id.as_deref(), Some(id.as_str()));

    // Enabled again: the refresh token (never revoked) works.
    let enable = server.url(&format!("/api/v1/admin/clients/{id}/enable"));
    let enabled = json(http.post(&enable).bearer_auth(&admin).send().await.expect("POST")).await;
    assert_eq!(enabled["disabled"], false);
    assert_eq!(token_request(&server, &client, &grant).await.status(), 200);
    let builtin = http.post(server.url("/api/v1/admin/clients/oxidp-api/disable")).bearer_auth(&admin).send().await;
    assert!(builtin.expect("POST").status().is_client_error(), "the built-in client cannot be disabled");
}

async fn without_a_live_token_the_metadata_is_not_examined(backend: Backend) {
    let server = TestServer::start_with(backend, with_mode(DynamicRegistration::Token)).await;
    let bad = json!({ "redirect_uris": ["http://evil.example/cb"] });
    expect_error(register(&server, None, &bad).await, 401, "invalid_token").await;
    expect_error(register(&server, Some("not-a-token"), &bad).await, 401, "invalid_token").await;
    let spent = initial_token(&server, Some(1), None).await;
    assert_eq!(register(&server, Some(&spent), &web_app()).await.status(), 201);
    expect_error(register(&server, Some(&spent), &bad).await, 401, "invalid_token").await;
    // With a live token the same metadata gets its RFC 7591 error, and the token is not spent.
    let live = initial_token(&server, Some(1), None).await;
    let body = expect_error(register(&server, Some(&live), &bad).await, 400, "invalid_redirect_uri").await;
    let description = body["error_description"].as_str().expect("description");
    assert_eq!(description.matches("http://evil.example/cb").count(), 1, "the URI is named once: {description}");
    assert_eq!(register(&server, Some(&live), &web_app()).await.status(), 201);
}
