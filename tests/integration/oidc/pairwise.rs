//! Pairwise subject identifiers (OIDC Core §8.1; issue #14 item 7): a pairwise client sees a
//! `sub` of its own sector, the same in its ID tokens, at userinfo and in its id_token_hint;
//! clients of one sector agree, clients of different sectors cannot correlate; the sector is one
//! host, a listed `sector_identifier_uri`, or the client itself for loopback redirect URIs.

use poem::{EndpointExt, Response, Route, get, handler};
use serde_json::{Map, Value, json};

use crate::browser::{ALICE, authorize_with, decide_consent, expect_code_redirect, log_in, setup};
use crate::common::*;
use crate::on_both_backends;

on_both_backends!(
    pairwise_subjects_follow_the_sector_and_agree_everywhere,
    the_sector_needs_one_host_or_a_listed_sector_identifier_uri,
);

/// A full flow for `client` at `redirect_uri` (consent approved); the token response.
async fn tokens_at(server: &TestServer, browser: &Browser, client: &TestClient, redirect_uri: &str) -> Value {
    let pkce = pkce();
    let overrides = [("redirect_uri", Some(redirect_uri))];
    let response = browser.get(&authorize_with(server, &client.id, &pkce, &overrides)).await;
    let location = location(&response);
    let response = if location.starts_with("/login") {
        log_in(server, browser, &location, ALICE, PASSWORD).await
    } else {
        response
    };
    let response = match location_of(&response) {
        Some(next) if next.starts_with("/consent") => decide_consent(server, browser, &next, "approve").await,
        _ => response,
    };
    let code = expect_code_redirect(server, &response, redirect_uri, "state-123");
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", redirect_uri),
        ("code_verifier", pkce.verifier.as_str()),
    ];
    let answer = token_request(server, client, &form).await;
    assert_eq!(answer.status(), 200);
    json(answer).await
}

fn location_of(response: &reqwest::Response) -> Option<String> {
    response.headers().get("location").and_then(|v| v.to_str().ok()).map(str::to_string)
}

async fn id_sub(server: &TestServer, client: &TestClient, tokens: &Value) -> String {
    let claims: Map<String, Value> =
        server.verify_jwt(tokens["id_token"].as_str().expect("id_token"), &client.id, "JWT").await;
    claims["sub"].as_str().expect("sub").to_string()
}

async fn userinfo_sub(server: &TestServer, tokens: &Value) -> String {
    let answer = reqwest::Client::new()
        .get(server.url("/userinfo"))
        .bearer_auth(tokens["access_token"].as_str().expect("access token"))
        .send()
        .await
        .expect("userinfo");
    assert_eq!(answer.status(), 200);
    json(answer).await["sub"].as_str().expect("sub").to_string()
}

async fn pairwise_subjects_follow_the_sector_and_agree_everywhere(backend: Backend) {
    let (server, public) = setup(backend).await;
    let alice = server.state.db.clone();
    let public_sub = {
        use oxidp::store::UserStore;
        alice.user_by_email(ALICE).await.expect("lookup").expect("alice").sub
    };
    let browser = Browser::new();
    let tokens = tokens_at(&server, &browser, &public, REDIRECT).await;
    assert_eq!(id_sub(&server, &public, &tokens).await, public_sub, "a public client sees the public sub");

    let pairwise = |name: &'static str, uris: &'static [&'static str]| {
        let server = &server;
        async move {
            let mut flags = vec!["--name", name, "--subject-type", "pairwise"];
            for uri in uris {
                flags.extend(["--redirect-uri", uri]);
            }
            server.client(&flags).await
        }
    };
    // Loopback redirect URIs: each client is its own sector.
    let (a, b) = (pairwise("A", &[REDIRECT]).await, pairwise("B", &[REDIRECT]).await);
    let tokens_a = tokens_at(&server, &browser, &a, REDIRECT).await;
    let sub_a = id_sub(&server, &a, &tokens_a).await;
    let sub_b = id_sub(&server, &b, &tokens_at(&server, &browser, &b, REDIRECT).await).await;
    assert_ne!(sub_a, public_sub);
    assert_ne!(sub_a, sub_b, "two sectors cannot correlate their users");
    assert_eq!(userinfo_sub(&server, &tokens_a).await, sub_a, "userinfo agrees with the ID token");
    let again = tokens_at(&server, &browser, &a, REDIRECT).await;
    assert_eq!(id_sub(&server, &a, &again).await, sub_a, "stable across sign-ins");
    // The access token keeps the public sub: it is for resource servers and oxidp's own API.
    let access = server.verify_jwt(tokens_a["access_token"].as_str().expect("token"), &a.id, "at+jwt").await;
    assert_eq!(access["sub"], public_sub.as_str());

    // One host is one sector: two clients there see the same sub; another host another.
    let c = pairwise("C", &["https://app.example.com/cb1"]).await;
    let d = pairwise("D", &["https://app.example.com/cb2"]).await;
    let e = pairwise("E", &["https://other.example.com/cb"]).await;
    let sub_c = id_sub(&server, &c, &tokens_at(&server, &browser, &c, "https://app.example.com/cb1").await).await;
    let sub_d = id_sub(&server, &d, &tokens_at(&server, &browser, &d, "https://app.example.com/cb2").await).await;
    let sub_e = id_sub(&server, &e, &tokens_at(&server, &browser, &e, "https://other.example.com/cb").await).await;
    assert_eq!(sub_c, sub_d, "one sector, one sub");
    assert_ne!(sub_c, sub_e);
    assert!(![public_sub.as_str(), sub_a.as_str()].contains(&sub_c.as_str()));

    // A's ID token as id_token_hint names the signed-in person: no confirmation page.
    let hint = again["id_token"].as_str().expect("id_token");
    let url = format!("{}?id_token_hint={hint}", server.url("/logout"));
    let answer = browser.get(&url).await;
    let html = answer.text().await.expect("html");
    assert!(html.contains("You are signed out"), "{html}");
}

#[handler]
fn listed(req: &poem::Request) -> Response {
    let uris = req.data::<Vec<String>>().cloned().unwrap_or_default();
    Response::builder().content_type("application/json").body(json!(uris).to_string())
}

async fn the_sector_needs_one_host_or_a_listed_sector_identifier_uri(backend: Backend) {
    let both = vec!["https://one.example.com/cb".to_string(), "https://two.example.com/cb".to_string()];
    let full = crate::federation::serve_mock(Route::new().at("/sector", get(listed)).data(both.clone())).await;
    let partial =
        crate::federation::serve_mock(Route::new().at("/sector", get(listed)).data(vec![both[0].clone()])).await;
    let server = TestServer::start_with(backend, |config| {
        config.outbound_allow_loopback = true;
        config.dynamic_registration = oxidp::config::DynamicRegistration::Open;
    })
    .await;
    let admin = admin_token(&server).await;
    let create = |body: Value| {
        let (server, admin) = (&server, admin.clone());
        async move { api_post(server, "/api/v1/admin/clients", Some(&admin), &body).await }
    };
    let spread = json!({"name": "Spread", "redirect_uris": both, "subject_type": "pairwise"});
    let refused = create(spread.clone()).await;
    assert_eq!(refused.status(), 400);
    assert_eq!(json(refused).await["field"], "sector_identifier_uri");
    let mut listed_partly = spread.clone();
    listed_partly["sector_identifier_uri"] = json!(format!("{partial}/sector"));
    let refused = create(listed_partly).await;
    assert_eq!(refused.status(), 400);
    let mut listed_fully = spread.clone();
    listed_fully["sector_identifier_uri"] = json!(format!("{full}/sector"));
    let made = create(listed_fully).await;
    assert_eq!(made.status(), 201);
    let made = json(made).await;
    assert_eq!(made["redirect_uris"], json!(both), "both hosts, under the listed sector: {made}");

    // Moving the client to a host outside its sector would change every sub it has seen.
    let single = create(json!({"name": "Single", "redirect_uris": [both[0]], "subject_type": "pairwise"})).await;
    let single = json(single).await;
    let id = single["client"]["client_id"].as_str().or(single["client_id"].as_str()).expect("id").to_string();
    let moved = reqwest::Client::new()
        .patch(server.url(&format!("/api/v1/admin/clients/{id}")))
        .bearer_auth(&admin)
        .json(&json!({"redirect_uris": ["https://elsewhere.example.com/cb"]}))
        .send()
        .await
        .expect("PATCH");
    assert_eq!(moved.status(), 400);

    // Dynamic registration follows the same rule, with RFC 7591's error.
    let register = |body: Value| reqwest::Client::new().post(server.url("/register")).json(&body).send();
    let answer = register(json!({"redirect_uris": both, "subject_type": "pairwise"})).await.expect("register");
    assert_eq!(answer.status(), 400);
    assert_eq!(json(answer).await["error"], "invalid_client_metadata");
    let answer = register(json!({
        "redirect_uris": both, "subject_type": "pairwise", "sector_identifier_uri": format!("{full}/sector"),
    }))
    .await
    .expect("register");
    assert_eq!(answer.status(), 201);
    let answer = json(answer).await;
    assert_eq!(answer["subject_type"], "pairwise");
    let discovery = json(reqwest::get(server.url("/.well-known/openid-configuration")).await.expect("discovery")).await;
    assert_eq!(discovery["subject_types_supported"], json!(["public", "pairwise"]));
}

/// Two instances of one deployment (one secret): the same person and pairwise client get the
/// same `sub` from either, in ID tokens and at userinfo, and not the public one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pairwise_subjects_are_the_same_at_every_instance() {
    let (a, b) = pair().await;
    let public_sub = a.user(ALICE, PASSWORD).await.sub;
    let redirect = "https://app.example.com/cb";
    let client = a.client(&["--name", "Sector", "--subject-type", "pairwise", "--redirect-uri", redirect]).await;
    let browser = Browser::new();
    let at_a = tokens_at(&a, &browser, &client, redirect).await;
    let at_b = tokens_at(&b, &Browser::new(), &client, redirect).await;
    let sub = id_sub(&a, &client, &at_a).await;
    assert_ne!(sub, public_sub, "a pairwise client never sees the public sub");
    assert_eq!(id_sub(&b, &client, &at_b).await, sub, "B's ID token carries A's pairwise sub");
    for (server, tokens) in [(&a, &at_a), (&a, &at_b), (&b, &at_a), (&b, &at_b)] {
        assert_eq!(userinfo_sub(server, tokens).await, sub, "userinfo at {} agrees", server.base);
    }
}
