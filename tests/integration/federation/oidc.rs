//! Generic OIDC upstreams (`src/federation/oidc.rs`): the full chain through a second oxidp, the
//! callback bound to its browser, once and in time, upstream errors and bad ID tokens back to the
//! client, timeouts, and a JWKS refreshed for an unknown `kid`.

use oxidp::store::{IdentityStore, UserStore};
use serde_json::{Map, Value, json};

use super::*;
use crate::common::*;
use crate::on_both_backends;

on_both_backends!(
    login_through_a_second_oxidp_continues_the_authorization_request,
    callback_must_come_from_the_starting_browser_once_and_in_time,
    upstream_errors_and_bad_id_tokens_go_back_to_the_client,
    unreachable_upstream_times_out_without_a_5xx,
    unknown_kid_refreshes_the_jwks,
);

// ---------------------------------------------------------------------------------------------
// Generic OIDC with a second oxidp as the upstream

async fn login_through_a_second_oxidp_continues_the_authorization_request(backend: Backend) {
    // A answers as `localhost`, B as `127.0.0.1`: two sites, so the one browser keeps their
    // cookies apart (cookies ignore ports).
    let a =
        TestServer::start_with(backend, |config| config.issuer = config.issuer.replace("127.0.0.1", "localhost")).await;
    let a_issuer = a.state.config.issuer.clone();
    let at_a = |path: &str| format!("{a_issuer}{path}");
    a.user("alice@example.com", PASSWORD).await;
    // B's callback on any port of 127.0.0.1 (RFC 8252): B's port is not known yet.
    let b_at_a = a.client(&["--name", "oxidp B", "--redirect-uri", "http://127.0.0.1/login/a/callback"]).await;
    let (issuer, client_id, secret) = (a_issuer.clone(), b_at_a.id.clone(), b_at_a.secret.clone());
    let b = TestServer::start_with(backend, move |config| {
        let mut a = upstream(UpstreamKind::Oidc, Some(&issuer), &client_id, secret.as_deref());
        a.trust_email = Some(true);
        config.upstream.insert("a".into(), a);
    })
    .await;
    let rp = b.client(&["--name", "Relying party", "--redirect-uri", REDIRECT]).await;
    let browser = Browser::new();
    let mut chain = vec!["RP → B /authorize 302".to_string(), "B /login 200".into(), "B /login/a 302".into()];

    let begun = begin(&b, &rp, &browser, "a", "openid profile email").await;
    assert!(begun.location.starts_with(&at_a("/authorize?")), "{}", begun.location);
    assert!(begun.upstream.contains_key("nonce") && begun.upstream["scope"].contains("openid"));
    // At A: authorize → login → consent → back to B's callback.
    let next = through_a(&browser, &a_issuer, &begun.location, &mut chain).await;
    let callback_prefix = format!("{}/login/a/callback?", b.base);
    assert!(next.starts_with(&callback_prefix), "A answers B's callback: {next}");
    let answer = query_of(&next);
    assert_eq!(answer["state"], begun.upstream["state"]);
    assert_eq!(answer["iss"], a_issuer, "RFC 9207 iss from A");
    let response = browser.get(&next).await;
    chain.push(format!("B /login/a/callback {}", response.status().as_u16()));
    let cleared = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .any(|c| c.to_str().is_ok_and(|c| c.starts_with("oxidp_federation=;") && c.contains("Max-Age=0")));
    assert!(cleared, "the binding cookie is cleared after the callback");
    let code = code_for_client(&b, &browser, response).await;
    chain.push("B /consent 200, POST 303 → RP with code".into());
    let id = id_token_claims(&b, &rp, &code, &begun.pkce).await;
    assert_eq!(id["amr"], json!(["fed"]), "the ID token says the login was federated");
    assert_eq!(id["nonce"], "rp-nonce");
    assert_eq!(id["email"], "alice@example.com");
    assert_eq!(id["email_verified"], true, "A verified it and is trusted for email");
    let user = b.state.db.user_by_email("alice@example.com").await.expect("db").expect("user made at B");
    assert_eq!(id["sub"], user.sub.as_str(), "B's own subject, not A's");
    assert!(user.password_hash.is_none());
    let alice_at_a = a.state.db.user_by_email("alice@example.com").await.expect("db").expect("alice");
    let identity = b.state.db.identity("a", &alice_at_a.sub).await.expect("db").expect("identity (a, A's sub)");
    assert_eq!(identity.user_id, user.id);
    eprintln!("redirect chain: {}", chain.join(" → "));

    // Another browser, another login: same identity, same user; A remembers the consent.
    let browser = Browser::new();
    let begun = begin(&b, &rp, &browser, "a", "openid profile email").await;
    let mut second = Vec::new();
    let back = through_a(&browser, &a_issuer, &begun.location, &mut second).await;
    assert!(back.starts_with(&callback_prefix), "{back}");
    assert!(!second.iter().any(|step| step.contains("consent")), "{second:?}");
    let code = code_for_client(&b, &browser, browser.get(&back).await).await;
    let again = id_token_claims(&b, &rp, &code, &begun.pkce).await;
    assert_eq!(again["sub"], id["sub"]);
    assert_eq!(b.state.db.count_users().await.expect("count"), 1);
}

/// Signs in at A (login page, consent page when asked) until A redirects away; returns that URL.
async fn through_a(browser: &Browser, a_issuer: &str, authorize: &str, chain: &mut Vec<String>) -> String {
    let at_a = |path: &str| format!("{a_issuer}{path}");
    let response = browser.get(authorize).await;
    chain.push(format!("A /authorize {}", response.status().as_u16()));
    assert_eq!(response.status(), 302);
    let mut next = location(&response);
    for _ in 0..3 {
        if next.starts_with("http") {
            break;
        }
        let html = browser.get(&at_a(&next)).await.text().await.expect("page at A");
        let csrf = form_field(&html, "csrf").expect("csrf");
        let request = form_field(&html, "request").expect("request");
        let path = next.split('?').next().unwrap_or("").to_string();
        let response = if path == "/login" {
            let form = [
                ("csrf", csrf.as_str()),
                ("request", &request),
                ("email", "alice@example.com"),
                ("password", PASSWORD),
            ];
            browser.post_form(&at_a("/login"), &form).await
        } else {
            assert_eq!(path, "/consent");
            browser
                .post_form(&at_a("/consent"), &[("csrf", &csrf), ("request", &request), ("decision", "approve")])
                .await
        };
        chain.push(format!("A {path} 200, POST {}", response.status().as_u16()));
        assert_eq!(response.status(), 303);
        next = location(&response);
    }
    next
}

// ---------------------------------------------------------------------------------------------
// The mock issuer (Authentik's shape)

async fn callback_must_come_from_the_starting_browser_once_and_in_time(backend: Backend) {
    let setup = mock_setup(backend, true).await;
    let b = &setup.b;
    let state_of = |begun: &Begun| begun.upstream["state"].clone();

    // State mismatch: the browser's cookie binds another state.
    let begun = setup.begin("corp").await;
    let response = callback(b, &setup.browser, "corp", &[("code", "c"), ("state", "forged-state")]).await;
    assert_page(&response, 400, "state mismatch");
    let response = callback(b, &setup.browser, "corp", &[("code", "c")]).await;
    assert_page(&response, 400, "no state at all");

    // Another browser (no binding cookie) cannot use the state, and does not use it up.
    let other = Browser::new();
    let response = callback(b, &other, "corp", &[("code", "c"), ("state", &state_of(&begun))]).await;
    assert_page(&response, 400, "callback in a different browser");
    let html = response.text().await.expect("html");
    assert!(html.contains("not started in this browser"), "{html}");
    let response = setup.answer("corp", &begun, setup.claims(&begun, "bound-user", "bound@example.com", true)).await;
    assert_eq!(response.status(), 303, "the starting browser still completes");
    assert!(location(&response).starts_with(REDIRECT));

    // Replay: the same callback again, even with the binding cookie, is refused.
    let replay = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    let url = b.url(&format!("/login/corp/callback?code=upstream-code&state={}", state_of(&begun)));
    let response =
        replay.get(&url).header("cookie", format!("oxidp_federation={}", begun.binding)).send().await.expect("replay");
    assert_page(&response, 400, "replayed callback");
    assert!(response.text().await.expect("html").contains("already completed"));

    // Expired: ten minutes at the upstream are too long.
    let begun = setup.begin("corp").await;
    b.clock.advance(601);
    setup.mock.prepare(setup.claims(&begun, "late-user", "late@example.com", true), SignWith::Published);
    let response = callback(b, &setup.browser, "corp", &[("code", "c"), ("state", &state_of(&begun))]).await;
    assert_page(&response, 400, "expired state");
    assert!(b.state.db.user_by_email("late@example.com").await.expect("db").is_none());

    // Unknown provider.
    let response = setup.browser.get(&b.url("/login/nobody?request=x")).await;
    assert_page(&response, 404, "unknown provider");
    // An expired authorization request at the start.
    let response = setup.browser.get(&b.url("/login/corp?request=gone")).await;
    assert_page(&response, 400, "expired request");
}

fn set(claims: &mut Map<String, Value>, name: &str, value: Value) {
    claims.insert(name.into(), value);
}

async fn upstream_errors_and_bad_id_tokens_go_back_to_the_client(backend: Backend) {
    let setup = mock_setup(backend, false).await;
    let b = &setup.b;

    // The user declines at the upstream.
    let begun = setup.begin("corp").await;
    let response = callback(
        b,
        &setup.browser,
        "corp",
        &[("error", "access_denied"), ("error_description", "nope"), ("state", &begun.upstream["state"])],
    )
    .await;
    assert_client_error(b, &response, "access_denied");

    type Spoil = fn(&mut Map<String, Value>, i64);
    let cases: [(&str, Spoil, SignWith); 6] = [
        ("wrong aud", |c, _| set(c, "aud", json!("someone-else")), SignWith::Published),
        ("wrong iss", |c, _| set(c, "iss", json!("https://evil.example.com/")), SignWith::Published),
        ("expired", |c, now| set(c, "exp", json!(now - 5)), SignWith::Published),
        ("bad signature", |_, _| {}, SignWith::Rogue),
        ("wrong nonce", |c, _| set(c, "nonce", json!("another-nonce")), SignWith::Published),
        ("no nonce", |c, _| c.retain(|name, _| name != "nonce"), SignWith::Published),
    ];
    for (what, spoil, sign_with) in cases {
        let begun = setup.begin("corp").await;
        let mut claims = setup.claims(&begun, "victim", "victim@example.com", true);
        spoil(&mut claims, b.clock_now());
        setup.mock.prepare(claims, sign_with);
        let response =
            callback(b, &setup.browser, "corp", &[("code", "upstream-code"), ("state", &begun.upstream["state"])])
                .await;
        assert_client_error(b, &response, "access_denied");
        assert!(set_cookie_value(&response, "oxidp_session").is_none(), "{what}: no session");
    }
    // An `iss` answer parameter from another issuer (mix-up) is refused before the code is used.
    let begun = setup.begin("corp").await;
    let requests = setup.mock.state.lock().expect("lock").token_requests.len();
    let response = callback(
        b,
        &setup.browser,
        "corp",
        &[("code", "upstream-code"), ("state", &begun.upstream["state"]), ("iss", "https://evil.example.com/")],
    )
    .await;
    assert_client_error(b, &response, "access_denied");
    assert_eq!(setup.mock.state.lock().expect("lock").token_requests.len(), requests);
    assert!(b.state.db.user_by_email("victim@example.com").await.expect("db").is_none(), "no user was made");
    assert!(b.state.db.identity("corp", "victim").await.expect("db").is_none());

    // The valid token after all that works, and the token request carried the PKCE verifier
    // matching the challenge and the client's credentials.
    let begun = setup.begin("corp").await;
    let response = setup.answer("corp", &begun, setup.claims(&begun, "victim", "victim@example.com", true)).await;
    let code = code_for_client(b, &setup.browser, response).await;
    let id = id_token_claims(b, &setup.rp, &code, &begun.pkce).await;
    assert_eq!(id["amr"], json!(["fed"]));
    let request = setup.mock.state.lock().expect("lock").token_requests.last().cloned().expect("token request");
    let verifier = request.get("code_verifier").expect("PKCE verifier sent");
    use base64::Engine;
    use sha2::Digest;
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()));
    assert_eq!(challenge, begun.upstream["code_challenge"]);
    assert!(request.get("authorization").is_some_and(|auth| auth.starts_with("Basic ")), "client_secret_basic");
}

async fn unreachable_upstream_times_out_without_a_5xx(backend: Backend) {
    let mock = MockIssuer::start().await;
    let (_silent, silent_url) = silent_listener();
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        format!("http://{}", listener.local_addr().expect("addr"))
    };
    let (issuer, silent) = (mock.issuer.clone(), silent_url.clone());
    let b = TestServer::start_with(backend, move |config| {
        let mut down = upstream(UpstreamKind::Oidc, Some(&silent), "oxidp-b", Some("s"));
        down.timeout = Some(1);
        config.upstream.insert("down".into(), down);
        config.upstream.insert("gone".into(), upstream(UpstreamKind::Oidc, Some(&closed), "oxidp-b", Some("s")));
        let mut slow = upstream(UpstreamKind::Oidc, Some(&issuer), "oxidp-b", Some("s"));
        slow.timeout = Some(1);
        config.upstream.insert("slowtoken".into(), slow);
    })
    .await;
    let rp = b.client(&["--name", "RP", "--redirect-uri", REDIRECT]).await;
    let browser = Browser::new();
    for provider in ["down", "gone"] {
        let pkce = pkce();
        let login = location(&browser.get(&authorize_url(&b, &rp, &pkce, &[])).await);
        let request = query_of(&login)["request"].clone();
        let started = std::time::Instant::now();
        let response = browser.get(&b.url(&format!("/login/{provider}?request={request}"))).await;
        assert!(started.elapsed() < std::time::Duration::from_secs(5), "bounded by the time-out");
        assert_client_error(&b, &response, "temporarily_unavailable");
    }
    // Discovery answers, the token endpoint does not.
    mock.state.lock().expect("lock").token_endpoint = Some(format!("{silent_url}/token"));
    let begun = begin(&b, &rp, &browser, "slowtoken", "openid email").await;
    let response = callback(&b, &browser, "slowtoken", &[("code", "c"), ("state", &begun.upstream["state"])]).await;
    assert_client_error(&b, &response, "temporarily_unavailable");
    // Without an authorization request, an HTML page (still not a 5xx).
    let response = browser.get(&b.url("/login/down")).await;
    assert_page(&response, 400, "unreachable, no request");
}

async fn unknown_kid_refreshes_the_jwks(backend: Backend) {
    let setup = mock_setup(backend, true).await;
    let begun = setup.begin("corp").await;
    let response = setup.answer("corp", &begun, setup.claims(&begun, "rotating", "rot@example.com", true)).await;
    code_for_client(&setup.b, &setup.browser, response).await;
    assert_eq!(setup.mock.state.lock().expect("lock").jwks_fetches, 1, "discovery fetched the JWKS once");

    // The upstream rotates its key; B's cached JWKS does not have the new kid.
    setup.mock.rotate();
    setup.b.clock.advance(30);
    let begun = setup.begin("corp").await;
    let response = setup.answer("corp", &begun, setup.claims(&begun, "rotating", "rot@example.com", true)).await;
    let code = code_for_client(&setup.b, &setup.browser, response).await;
    id_token_claims(&setup.b, &setup.rp, &code, &begun.pkce).await;
    assert_eq!(setup.mock.state.lock().expect("lock").jwks_fetches, 2, "one refresh for the unknown kid");
}
