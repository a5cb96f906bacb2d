//! A pending authorization request belongs to the browser that started it, and a consent
//! belongs to the person who gave it (issue #12 item 2). The attack replayed here: an attacker
//! starts `/authorize` for their own client with `prompt=login`, approves the consent page
//! themselves, and sends the victim the `/login?request=…` link.

use crate::browser::{
    ALICE, BOB, authorize_with, decide_consent, expect_consent_page, expect_login_page, expect_page, first_party,
    log_in, post_login, setup, sign_in,
};
use crate::common::*;
use crate::on_both_backends;

on_both_backends!(a_request_link_works_only_in_its_browser_and_consent_only_for_its_user,);

async fn a_request_link_works_only_in_its_browser_and_consent_only_for_its_user(backend: Backend) {
    let (server, client) = setup(backend).await;
    server.user(BOB, PASSWORD).await;
    let attacker = Browser::new();
    // The attacker (bob) is signed in, starts a request that needs a fresh login, and approves
    // the consent page for it while the login is still owed.
    let portal = first_party(&server).await;
    sign_in(&server, &attacker, &portal, BOB).await;
    let started = attacker.get(&authorize_with(&server, &client.id, &pkce(), &[("prompt", Some("login"))])).await;
    let first_link = expect_login_page(&started);
    let consent_path = first_link.replacen("/login", "/consent", 1);
    let relayed_link =
        expect_login_page_after_form(&decide_consent(&server, &attacker, &consent_path, "approve").await);
    assert_ne!(relayed_link, first_link, "the request is re-keyed after consent");

    // The victim opens the link in their own browser: a clear error page, never the client.
    let victim = Browser::new();
    let html = expect_page(victim.get(&server.url(&relayed_link)).await, 400).await;
    assert!(html.contains("another browser"), "{html}");
    // Submitting the sign-in form with that request (with the victim's own CSRF token) is refused
    // the same way, before any password is checked.
    let own_form = expect_page(victim.get(&server.url("/login")).await, 200).await;
    let csrf = form_field(&own_form, "csrf").expect("csrf");
    let request_id = relayed_link.trim_start_matches("/login?request=");
    let submitted = post_login(&server, &victim, &csrf, request_id, ALICE, PASSWORD).await;
    let html = expect_page(submitted, 400).await;
    assert!(html.contains("another browser"), "{html}");

    // In the attacker's own browser, the first id is spent.
    let html = expect_page(attacker.get(&server.url(&first_link)).await, 400).await;
    assert!(html.contains("expired"), "{html}");

    // Bob's consent is his alone: alice signing in on the relayed request in that same browser
    // (a shared computer) is asked herself, and nothing is stored in her name until she answers.
    let after_login = log_in(&server, &attacker, &relayed_link, ALICE, PASSWORD).await;
    let asked = expect_consent_page(&after_login);
    let html = expect_page(attacker.get(&server.url(&asked)).await, 200).await;
    assert!(html.contains(ALICE), "the consent page is alice's: {html}");
    let again = attacker.get(&authorize_with(&server, &client.id, &pkce(), &[])).await;
    expect_consent_page(&again);
    // And the relayed id is spent too, even for the browser that owns it.
    let html = expect_page(attacker.get(&server.url(&relayed_link)).await, 400).await;
    assert!(html.contains("expired"), "{html}");
}

/// The 303 after a form to the login page; returns its path.
fn expect_login_page_after_form(response: &reqwest::Response) -> String {
    assert_eq!(response.status(), 303, "expected a redirect to /login");
    let next = location(response);
    assert!(next.starts_with("/login?request="), "expected /login, got {next}");
    next
}
