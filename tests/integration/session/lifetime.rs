//! Session fixation and lifetimes: a fresh session id at every login (a planted id dies with it),
//! the idle timeout and the absolute lifetime.

use crate::browser::{
    ALICE, BOB, authorize_with, cookie_value, expect_code_redirect, expect_login_page, expect_page, first_party,
    log_in, plain_http, set_cookie, setup, sign_in, silent,
};
use crate::common::*;
use crate::on_both_backends;

on_both_backends!(session_id_rotates_at_every_login, session_idle_timeout, session_absolute_lifetime,);

async fn session_id_rotates_at_every_login(backend: Backend) {
    let (server, _) = setup(backend).await;
    let client = first_party(&server).await;
    let browser = Browser::new();
    let login = expect_login_page(&browser.get(&authorize_with(&server, &client.id, &pkce(), &[])).await);
    let response = log_in(&server, &browser, &login, ALICE, PASSWORD).await;
    let first = cookie_value(&set_cookie(&response, "oxidp_session").expect("session cookie"));
    expect_code_redirect(&server, &response, REDIRECT, "state-123");
    assert!(silent(&server, &plain_http(), &client, Some(&first)).await.is_ok(), "the first cookie works on its own");

    let login = expect_login_page(
        &browser.get(&authorize_with(&server, &client.id, &pkce(), &[("prompt", Some("login"))])).await,
    );
    let response = log_in(&server, &browser, &login, ALICE, PASSWORD).await;
    let second = cookie_value(&set_cookie(&response, "oxidp_session").expect("session cookie"));
    expect_code_redirect(&server, &response, REDIRECT, "state-123");
    assert_ne!(first, second, "a new session id at login");

    assert_eq!(
        silent(&server, &plain_http(), &client, Some(&first)).await,
        Err("login_required".into()),
        "the old id is dead"
    );
    assert!(silent(&server, &plain_http(), &client, Some(&second)).await.is_ok());
    assert!(silent(&server, &browser.http, &client, None).await.is_ok(), "the browser holds the new id");

    // A session id planted in a browser before its login (here bob's) is ended by that login.
    server.user(BOB, PASSWORD).await;
    let attacker = Browser::new();
    let login = expect_login_page(&attacker.get(&authorize_with(&server, &client.id, &pkce(), &[])).await);
    let planted = cookie_value(
        &set_cookie(&log_in(&server, &attacker, &login, BOB, PASSWORD).await, "oxidp_session").expect("session cookie"),
    );
    let victim = plain_http();
    let with_planted = |request: reqwest::RequestBuilder, others: &str| {
        request.header("cookie", format!("oxidp_session={planted}{others}"))
    };
    let authorize = authorize_with(&server, &client.id, &pkce(), &[("prompt", Some("login"))]);
    let started = with_planted(victim.get(authorize), "").send().await.expect("authorize");
    let binding = cookie_value(&set_cookie(&started, "oxidp_authorize").expect("authorization cookie"));
    let login = expect_login_page(&started);
    let browser_cookie = format!("; oxidp_authorize={binding}");
    let page = with_planted(victim.get(server.url(&login)), &browser_cookie).send().await.expect("login page");
    let csrf_cookie = cookie_value(&set_cookie(&page, "oxidp_csrf").expect("CSRF cookie"));
    let html = expect_page(page, 200).await;
    let form = [
        ("csrf", form_field(&html, "csrf").expect("csrf")),
        ("request", form_field(&html, "request").expect("request")),
        ("email", ALICE.to_string()),
        ("password", PASSWORD.to_string()),
    ];
    let others = format!("{browser_cookie}; oxidp_csrf={csrf_cookie}");
    let response = with_planted(victim.post(server.url("/login")), &others).form(&form).send().await.expect("POST");
    let fresh = cookie_value(&set_cookie(&response, "oxidp_session").expect("session cookie"));
    assert_ne!(fresh, planted);
    expect_code_redirect(&server, &response, REDIRECT, "state-123");
    assert_eq!(
        silent(&server, &plain_http(), &client, Some(&planted)).await,
        Err("login_required".into()),
        "the planted id is dead"
    );
    assert!(silent(&server, &plain_http(), &client, Some(&fresh)).await.is_ok());
}

async fn session_idle_timeout(backend: Backend) {
    let (server, _) = setup(backend).await;
    let client = first_party(&server).await;
    assert_eq!(server.state.config.session_idle_ttl, 3600);
    let browser = Browser::new();
    sign_in(&server, &browser, &client, ALICE).await;
    // Used within the idle time, it stays alive.
    for _ in 0..3 {
        server.clock.advance(3599);
        assert!(silent(&server, &browser.http, &client, None).await.is_ok());
    }
    // Unused for the idle time: gone.
    server.clock.advance(3601);
    assert_eq!(silent(&server, &browser.http, &client, None).await, Err("login_required".into()));
    let response = browser.get(&authorize_with(&server, &client.id, &pkce(), &[])).await;
    let login = expect_login_page(&response);
    let response = log_in(&server, &browser, &login, ALICE, PASSWORD).await;
    expect_code_redirect(&server, &response, REDIRECT, "state-123");
}

async fn session_absolute_lifetime(backend: Backend) {
    let (server, _) = setup(backend).await;
    let client = first_party(&server).await;
    assert_eq!(server.state.config.session_ttl, 86400);
    let browser = Browser::new();
    sign_in(&server, &browser, &client, ALICE).await;
    let mut elapsed = 0;
    while elapsed + 3000 < 86400 {
        server.clock.advance(3000);
        elapsed += 3000;
        assert!(silent(&server, &browser.http, &client, None).await.is_ok(), "alive after {elapsed} s of regular use");
    }
    // Less than the idle time since the last use, but past the absolute lifetime.
    server.clock.advance(86400 - elapsed);
    assert_eq!(silent(&server, &browser.http, &client, None).await, Err("login_required".into()));
}
