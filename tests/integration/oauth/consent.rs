//! Consent: asked once per user, client and scopes (again for more, or with `prompt=consent`),
//! never for first-party clients, and a denial is `access_denied`. CSRF on the consent form is
//! in pages.rs.

use crate::browser::{
    ALICE, ALL_SCOPES, BOB, Overrides, authorize_with, decide_consent, expect_code_redirect, expect_consent_page,
    expect_error_redirect, expect_login_page, expect_page, first_party, log_in, setup, silent,
};
use crate::common::*;
use crate::on_both_backends;

on_both_backends!(
    consent_is_remembered_per_client_and_scopes,
    first_party_clients_never_show_consent,
    denying_consent_is_access_denied,
);

async fn consent_is_remembered_per_client_and_scopes(backend: Backend) {
    let (server, client) = setup(backend).await;
    let other = server.client(&["--name", "Other App", "--redirect-uri", REDIRECT]).await;
    let browser = Browser::new();
    let narrow: Overrides<'_> = &[("scope", Some("openid profile"))];

    let pkce1 = pkce();
    let response = browser.get(&authorize_with(&server, &client.id, &pkce1, narrow)).await;
    let login = expect_login_page(&response);
    let consent = expect_consent_page(&log_in(&server, &browser, &login, ALICE, PASSWORD).await);
    let html = expect_page(browser.get(&server.url(&consent)).await, 200).await;
    assert!(html.contains("Third Party App") && html.contains("profile"), "consent page names the client and scopes");
    expect_code_redirect(&server, &decide_consent(&server, &browser, &consent, "approve").await, REDIRECT, "state-123");

    // Same client, same scopes (or fewer): no consent page.
    for scope in ["openid profile", "profile openid", "openid"] {
        let response = browser.get(&authorize_with(&server, &client.id, &pkce(), &[("scope", Some(scope))])).await;
        expect_code_redirect(&server, &response, REDIRECT, "state-123");
    }
    // An extra scope asks again.
    let response =
        browser.get(&authorize_with(&server, &client.id, &pkce(), &[("scope", Some("openid profile email"))])).await;
    let consent = expect_consent_page(&response);
    let html = expect_page(browser.get(&server.url(&consent)).await, 200).await;
    assert!(html.contains("email"));
    // prompt=consent asks even for scopes already granted.
    let response = browser
        .get(&authorize_with(&server, &client.id, &pkce(), &[("scope", Some("openid")), ("prompt", Some("consent"))]))
        .await;
    expect_consent_page(&response);
    // Consent is per client.
    let response = browser.get(&authorize_with(&server, &other.id, &pkce(), narrow)).await;
    expect_consent_page(&response);
    // And per user: bob in another browser is asked.
    server.user(BOB, PASSWORD).await;
    let bob = Browser::new();
    let response = bob.get(&authorize_with(&server, &client.id, &pkce(), narrow)).await;
    let login = expect_login_page(&response);
    expect_consent_page(&log_in(&server, &bob, &login, BOB, PASSWORD).await);
}

async fn first_party_clients_never_show_consent(backend: Backend) {
    let (server, _) = setup(backend).await;
    let trusted = first_party(&server).await;
    let browser = Browser::new();
    let pkce = pkce();
    let response = browser.get(&authorize_with(&server, &trusted.id, &pkce, &[])).await;
    let login = expect_login_page(&response);
    let response = log_in(&server, &browser, &login, ALICE, PASSWORD).await;
    assert_eq!(response.status(), 303);
    let code = expect_code_redirect(&server, &response, REDIRECT, "state-123");
    let body = json(redeem(&server, &trusted, &code, &pkce.verifier).await).await;
    assert!(body["refresh_token"].is_string(), "offline_access is implicit for first-party clients: {body}");
    for scope in ["openid", "openid email", ALL_SCOPES] {
        let response = browser.get(&authorize_with(&server, &trusted.id, &pkce, &[("scope", Some(scope))])).await;
        expect_code_redirect(&server, &response, REDIRECT, "state-123");
    }
}

async fn denying_consent_is_access_denied(backend: Backend) {
    let (server, client) = setup(backend).await;
    let browser = Browser::new();
    let response = browser.get(&authorize_with(&server, &client.id, &pkce(), &[("state", Some("deny-me"))])).await;
    let login = expect_login_page(&response);
    let consent = expect_consent_page(&log_in(&server, &browser, &login, ALICE, PASSWORD).await);
    let response = decide_consent(&server, &browser, &consent, "deny").await;
    assert_eq!(response.status(), 303);
    expect_error_redirect(&server, &response, REDIRECT, "access_denied", Some("deny-me"));
    // Nothing was remembered.
    assert_eq!(silent(&server, &browser.http, &client, None).await, Err("consent_required".into()));
}
