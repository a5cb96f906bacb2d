//! Client ID metadata documents (issue #14 item 2): a `client_id` that is a URL names the JSON
//! document describing the client; it is fetched under the outgoing-request rule, cached within
//! 5 minutes to 24 hours, and the pages name its host and warn of loopback redirect URIs.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use poem::web::Data;
use poem::{EndpointExt, Response, Route, get, handler};
use serde_json::{Value, json};

use crate::browser::{
    ALICE, decide_consent, expect_code_redirect, expect_consent_page, expect_login_page, expect_page, log_in,
};
use crate::common::*;
use crate::on_both_backends;
use oxidp::config::Switch;

on_both_backends!(
    a_metadata_document_client_signs_in_and_is_cached,
    bad_or_unreachable_documents_make_no_client,
    slow_large_redirected_or_unreachable_documents_make_no_client,
);

#[derive(Clone, Default)]
struct Hits(Arc<AtomicUsize>);

/// `/good.json`: a valid document naming itself; `/wrong-id.json` names another URL;
/// `/secret.json` wants a client secret; `/missing.json` is a 404; `/big.json` is valid but over
/// 16 KiB; `/moved.json` redirects to itself with `?followed`, where it is valid.
#[handler]
fn document(req: &poem::Request, Data(hits): Data<&Hits>) -> Response {
    hits.0.fetch_add(1, Ordering::SeqCst);
    let host = req.headers().get("host").and_then(|v| v.to_str().ok()).unwrap_or_default();
    let url = format!("http://{host}{}", req.uri().path());
    let mut body = json!({
        "client_id": url,
        "client_name": "Agent Smith",
        "redirect_uris": [REDIRECT],
        "token_endpoint_auth_method": "none",
        "scope": "openid profile admin",
    });
    match req.uri().path() {
        "/wrong-id.json" => body["client_id"] = json!("https://elsewhere.example/client.json"),
        "/secret.json" => body["token_endpoint_auth_method"] = json!("client_secret_basic"),
        "/missing.json" => return Response::builder().status(poem::http::StatusCode::NOT_FOUND).finish(),
        "/big.json" => body["software_statement_padding"] = json!("x".repeat(20 * 1024)),
        "/moved.json" if req.uri().query().is_none() => {
            let found = poem::http::StatusCode::FOUND;
            return Response::builder().status(found).header("location", "/moved.json?followed").finish();
        }
        _ => {}
    }
    Response::builder().content_type("application/json").header("cache-control", "max-age=600").body(body.to_string())
}

async fn documents() -> (String, Hits) {
    let hits = Hits::default();
    let app = Route::new().at("/:name", get(document)).data(hits.clone());
    (crate::federation::serve_mock(app).await, hits)
}

fn with_documents(config: &mut oxidp::config::Config) {
    config.client_id_metadata_documents = Switch::On;
    config.outbound_allow_loopback = true;
}

fn authorize(server: &TestServer, client_id: &str, pkce: &Pkce) -> String {
    let client = TestClient { id: client_id.to_string(), secret: None };
    authorize_url(server, &client, pkce, &[("scope", "openid profile")])
}

async fn a_metadata_document_client_signs_in_and_is_cached(backend: Backend) {
    let (base, hits) = documents().await;
    let server = TestServer::start_with(backend, with_documents).await;
    server.user(ALICE, PASSWORD).await;
    let discovery = json(reqwest::get(server.url("/.well-known/openid-configuration")).await.expect("discovery")).await;
    assert_eq!(discovery["client_id_metadata_document_supported"], true);
    let client_id = format!("{base}/good.json");
    let host = base.trim_start_matches("http://").split(':').next().expect("host").to_string();

    let browser = Browser::new();
    let pkce = pkce();
    let login = expect_login_page(&browser.get(&authorize(&server, &client_id, &pkce)).await);
    let html = expect_page(browser.get(&server.url(&login)).await, 200).await;
    assert!(html.contains("Agent Smith") && html.contains(&host), "the page names the client and its host: {html}");
    assert!(html.contains("loopback"), "a loopback redirect URI is called out: {html}");
    let consent = expect_consent_page(&log_in(&server, &browser, &login, ALICE, PASSWORD).await);
    let html = expect_page(browser.get(&server.url(&consent)).await, 200).await;
    assert!(html.contains("Agent Smith") && html.contains(&host), "{html}");
    assert!(!html.contains(">admin<"), "oxidp's own API scopes are never granted: {html}");
    let code = expect_code_redirect(
        &server,
        &decide_consent(&server, &browser, &consent, "approve").await,
        REDIRECT,
        "state-123",
    );
    let client = TestClient { id: client_id.clone(), secret: None };
    let tokens = json(redeem(&server, &client, &code, &pkce.verifier).await).await;
    assert!(tokens["id_token"].is_string(), "{tokens}");
    let claims = server.verify_jwt(tokens["id_token"].as_str().expect("id_token"), &client_id, "JWT").await;
    assert_eq!(claims["aud"], client_id.as_str());

    // Cached for its max-age (600 s): no new fetch until then, one after.
    let fetched = hits.0.load(Ordering::SeqCst);
    assert!(fetched >= 1);
    let again = browser.get(&authorize(&server, &client_id, &pkce)).await;
    assert!(again.status().is_redirection());
    assert_eq!(hits.0.load(Ordering::SeqCst), fetched, "served from the cache");
    server.clock.advance(601);
    let again = browser.get(&authorize(&server, &client_id, &pkce)).await;
    assert!(again.status().is_redirection());
    assert_eq!(hits.0.load(Ordering::SeqCst), fetched + 1, "fetched again after max-age");
}

async fn bad_or_unreachable_documents_make_no_client(backend: Backend) {
    let (base, hits) = documents().await;
    let server = TestServer::start_with(backend, with_documents).await;
    let browser = Browser::new();
    for name in ["wrong-id.json", "secret.json", "missing.json"] {
        let html = expect_page(browser.get(&authorize(&server, &format!("{base}/{name}"), &pkce())).await, 400).await;
        assert!(!html.contains("Agent Smith"), "{name}: {html}");
    }
    // Private and special addresses are never fetched.
    for id in ["https://10.0.0.1/client.json", "https://169.254.169.254/latest/meta-data"] {
        let started = std::time::Instant::now();
        expect_page(browser.get(&authorize(&server, id, &pkce())).await, 400).await;
        assert!(started.elapsed() < std::time::Duration::from_secs(2), "{id} refused without connecting");
    }
    // Off (the default): a URL client_id is an unknown client, and nothing is fetched.
    let before = hits.0.load(Ordering::SeqCst);
    let off = TestServer::start_with(backend, |config| config.outbound_allow_loopback = true).await;
    expect_page(browser.get(&authorize(&off, &format!("{base}/good.json"), &pkce())).await, 400).await;
    let discovery: Value = json(reqwest::get(off.url("/.well-known/openid-configuration")).await.expect("d")).await;
    assert!(discovery.get("client_id_metadata_document_supported").is_none());
    // A host allowlist that does not name the host: not fetched either.
    let listed = TestServer::start_with(backend, |config| {
        with_documents(config);
        config.client_id_metadata_hosts = vec!["agents.example.com".into()];
    })
    .await;
    expect_page(browser.get(&authorize(&listed, &format!("{base}/good.json"), &pkce())).await, 400).await;
    assert_eq!(hits.0.load(Ordering::SeqCst), before, "nothing was fetched while off or not allowed");
}

async fn slow_large_redirected_or_unreachable_documents_make_no_client(backend: Backend) {
    let (base, hits) = documents().await;
    let server = TestServer::start_with(backend, with_documents).await;
    let browser = Browser::new();
    // Too large, or a redirect (never followed, though its target would be a valid document).
    for name in ["big.json", "moved.json"] {
        let before = hits.0.load(Ordering::SeqCst);
        let html = expect_page(browser.get(&authorize(&server, &format!("{base}/{name}"), &pkce())).await, 400).await;
        assert!(html.contains("is not registered") && !html.contains("Agent Smith"), "{name}: {html}");
        assert_eq!(hits.0.load(Ordering::SeqCst), before + 1, "{name}: fetched once, nothing followed");
    }
    // Silent past the time limit; nobody listening.
    let (silent, cases) = crate::federation::slow_and_unreachable();
    for (what, base, bound) in cases {
        let started = std::time::Instant::now();
        let html =
            expect_page(browser.get(&authorize(&server, &format!("{base}/client.json"), &pkce())).await, 400).await;
        let took = started.elapsed();
        assert!(took < bound, "{what} document answered after {took:?}");
        assert!(html.contains("is not registered"), "{what}: {html}");
    }
    silent.set_nonblocking(true).expect("nonblocking");
    assert!(silent.accept().is_ok(), "the server connected to the slow document's host");
    // The good document still makes a client: the refusals above were about those documents.
    expect_login_page(&browser.get(&authorize(&server, &format!("{base}/good.json"), &pkce())).await);
}
