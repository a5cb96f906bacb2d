//! What the HTML pages carry besides their content (`src/http/csrf.rs`, `cookies.rs`,
//! `middleware.rs`): CSRF tokens on the login and consent forms bound to the browser, the cookie
//! policy (`HttpOnly`, `SameSite=Lax`, `Secure` and the `__Host-` prefix on an https issuer) and the
//! security headers.

use crate::browser::{
    ALICE, authorize_with, cookie_value, expect_code_redirect, expect_consent_page, expect_login_page, expect_page,
    log_in, open_form, plain_http, post_login, set_cookie, setup, silent,
};
use crate::common::*;
use crate::on_both_backends;

on_both_backends!(
    login_form_requires_this_browsers_csrf_token,
    consent_form_requires_this_browsers_csrf_token,
    cookies_and_security_headers,
    cookies_are_secure_and_host_only_on_an_https_issuer,
);

async fn login_form_requires_this_browsers_csrf_token(backend: Backend) {
    let (server, client) = setup(backend).await;
    let browser = Browser::new();
    let login = expect_login_page(&browser.get(&authorize_with(&server, &client.id, &pkce(), &[])).await);
    let (csrf, request) = open_form(&server, &browser, &login).await;
    let (foreign_csrf, _) = open_form(&server, &Browser::new(), "/login").await;
    assert_ne!(csrf, foreign_csrf);

    let attempts = [
        browser
            .post_form(&server.url("/login"), &[("request", &request), ("email", ALICE), ("password", PASSWORD)])
            .await,
        post_login(&server, &browser, "", &request, ALICE, PASSWORD).await,
        post_login(&server, &browser, &foreign_csrf, &request, ALICE, PASSWORD).await,
        // The right token without the browser's cookie.
        plain_http()
            .post(server.url("/login"))
            .form(&[("csrf", csrf.as_str()), ("request", &request), ("email", ALICE), ("password", PASSWORD)])
            .send()
            .await
            .expect("POST"),
    ];
    for response in attempts {
        assert!(set_cookie(&response, "oxidp_session").is_none(), "no session without a valid CSRF token");
        expect_page(response, 403).await;
    }
    assert_eq!(silent(&server, &browser.http, &client, None).await, Err("login_required".into()));

    // The right token in the right browser signs in.
    let response = post_login(&server, &browser, &csrf, &request, ALICE, PASSWORD).await;
    assert!(set_cookie(&response, "oxidp_session").is_some());
    expect_consent_page(&response);
}

async fn consent_form_requires_this_browsers_csrf_token(backend: Backend) {
    let (server, client) = setup(backend).await;
    let browser = Browser::new();
    let login = expect_login_page(&browser.get(&authorize_with(&server, &client.id, &pkce(), &[])).await);
    let (login_csrf, _) = open_form(&server, &browser, &login).await;
    let consent = expect_consent_page(&log_in(&server, &browser, &login, ALICE, PASSWORD).await);
    let (csrf, request) = open_form(&server, &browser, &consent).await;

    // Another browser of the same user, at its own consent page.
    let other = Browser::new();
    let other_login = expect_login_page(&other.get(&authorize_with(&server, &client.id, &pkce(), &[])).await);
    let other_consent = expect_consent_page(&log_in(&server, &other, &other_login, ALICE, PASSWORD).await);
    let (foreign_csrf, _) = open_form(&server, &other, &other_consent).await;

    for token in [None, Some(""), Some(foreign_csrf.as_str()), Some(login_csrf.as_str())] {
        let mut form = vec![("request", request.as_str()), ("decision", "approve")];
        if let Some(token) = token {
            form.push(("csrf", token));
        }
        let response = browser.post_form(&server.url("/consent"), &form).await;
        expect_page(response, 403).await;
    }
    assert_eq!(
        silent(&server, &browser.http, &client, None).await,
        Err("consent_required".into()),
        "no consent was recorded"
    );

    let response = browser
        .post_form(&server.url("/consent"), &[("csrf", &csrf), ("request", &request), ("decision", "approve")])
        .await;
    assert_eq!(response.status(), 303);
    expect_code_redirect(&server, &response, REDIRECT, "state-123");
}

fn assert_security_headers(response: &reqwest::Response, what: &str) {
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("{what}: no {name}"))
            .to_string()
    };
    assert_eq!(header("x-frame-options"), "DENY", "{what}");
    assert!(header("content-security-policy").contains("frame-ancestors 'none'"), "{what}");
    assert_eq!(header("x-content-type-options"), "nosniff", "{what}");
    assert_eq!(header("referrer-policy"), "no-referrer", "{what}");
}

fn cookie_attributes(set_cookie: &str) -> Vec<String> {
    set_cookie.split(';').skip(1).map(|attribute| attribute.trim().to_ascii_lowercase()).collect()
}

async fn cookies_and_security_headers(backend: Backend) {
    let (server, client) = setup(backend).await;
    let browser = Browser::new();
    let response = browser.get(&authorize_with(&server, &client.id, &pkce(), &[])).await;
    assert_security_headers(&response, "authorize redirect");
    let login = expect_login_page(&response);

    let page = browser.get(&server.url(&login)).await;
    assert_security_headers(&page, "login page");
    let csrf_cookie = set_cookie(&page, "oxidp_csrf").expect("CSRF cookie");
    let html = expect_page(page, 200).await;
    assert!(!html.contains("<script"), "pages have no scripts");

    let response = post_login(
        &server,
        &browser,
        &form_field(&html, "csrf").expect("csrf"),
        &form_field(&html, "request").expect("request"),
        ALICE,
        PASSWORD,
    )
    .await;
    let session_cookie = set_cookie(&response, "oxidp_session").expect("session cookie");
    for (name, line) in [("session", &session_cookie), ("csrf", &csrf_cookie)] {
        let attributes = cookie_attributes(line);
        assert!(attributes.contains(&"httponly".to_string()), "{name}: {line}");
        assert!(attributes.contains(&"samesite=lax".to_string()), "{name}: {line}");
        assert!(!attributes.contains(&"secure".to_string()), "{name}: no Secure on an http issuer: {line}");
        assert!(attributes.contains(&"path=/".to_string()), "{name}: {line}");
    }
    let consent = expect_consent_page(&response);
    let page = browser.get(&server.url(&consent)).await;
    assert_security_headers(&page, "consent page");
    expect_page(page, 200).await;

    let error = browser.get(&authorize_with(&server, "unknown", &pkce(), &[])).await;
    assert_security_headers(&error, "error page");
    expect_page(error, 400).await;
    let failed = post_login(&server, &browser, "bad", "", ALICE, PASSWORD).await;
    assert_security_headers(&failed, "403 page");
}

async fn cookies_are_secure_and_host_only_on_an_https_issuer(backend: Backend) {
    let server = TestServer::start_with(backend, |c| c.issuer = "https://idp.example".into()).await;
    server.user(ALICE, PASSWORD).await;
    let client = server.client(&["--name", "Third Party App", "--redirect-uri", REDIRECT]).await;
    // A browser would not send Secure cookies over http: this one sends them by hand.
    let http = plain_http();
    let started = http.get(authorize_with(&server, &client.id, &pkce(), &[])).send().await.expect("authorize");
    let authorize_cookie = set_cookie(&started, "__Host-oxidp_authorize").expect("authorization cookie");
    let page = http.get(server.url("/login")).send().await.expect("login page");
    assert!(set_cookie(&page, "oxidp_csrf").is_none(), "never the unprefixed name on https");
    let csrf_cookie = set_cookie(&page, "__Host-oxidp_csrf").expect("CSRF cookie");
    let html = expect_page(page, 200).await;
    let token = form_field(&html, "csrf").expect("csrf");
    let form = [("csrf", token.as_str()), ("email", ALICE), ("password", PASSWORD)];

    // A cookie planted without the prefix (by a sibling subdomain or a plain-http page, which
    // cannot set a `__Host-` cookie) is not read: the form's token does not match anything.
    let planted = http
        .post(server.url("/login"))
        .header("cookie", format!("oxidp_csrf={}", cookie_value(&csrf_cookie)))
        .form(&form)
        .send()
        .await
        .expect("POST");
    expect_page(planted, 403).await;

    let response = http
        .post(server.url("/login"))
        .header("cookie", format!("__Host-oxidp_csrf={}", cookie_value(&csrf_cookie)))
        .form(&form)
        .send()
        .await
        .expect("POST");
    let session_cookie = set_cookie(&response, "__Host-oxidp_session").expect("session cookie");
    for line in [&session_cookie, &csrf_cookie, &authorize_cookie] {
        let attributes = cookie_attributes(line);
        // `__Host-` cookies must be Secure, for path `/`, and have no Domain.
        for expected in ["secure", "httponly", "samesite=lax", "path=/"] {
            assert!(attributes.contains(&expected.to_string()), "{expected} in {line}");
        }
        assert!(!attributes.iter().any(|attribute| attribute.starts_with("domain")), "{line}");
    }
    expect_page(response, 200).await;
}
