//! The authorization endpoint (`src/oauth/authorize/`): error redirects with `state` and
//! RFC 9207 `iss`, `prompt=none`, `max_age` and `prompt=login`, and a POSTed request answered
//! with 303 to the GET. Redirect URIs, PKCE and consent have files of their own.

use crate::browser::{
    ALICE, Overrides, authorize_with, decide_consent, expect_code_redirect, expect_consent_page, expect_error_redirect,
    expect_login_page, first_party, id_token_claims, log_in, setup, sign_in, silent,
};
use crate::common::*;
use crate::on_both_backends;

on_both_backends!(
    errors_redirect_with_state_and_iss,
    prompt_none_never_shows_a_page,
    max_age_and_prompt_login_force_a_new_login,
    post_authorize_is_answered_with_303_to_get,
);

async fn errors_redirect_with_state_and_iss(backend: Backend) {
    let (server, client) = setup(backend).await;
    let browser = Browser::new();
    let pkce = pkce();
    let state = "a b&c=d/é?";
    let cases: [(Overrides<'_>, &str); 5] = [
        (&[("response_type", Some("token"))], "unsupported_response_type"),
        (&[("response_type", Some("code id_token"))], "unsupported_response_type"),
        (&[("response_type", None)], "invalid_request"),
        (&[("scope", Some("openid no-such-scope"))], "invalid_scope"),
        (&[("prompt", Some("none"))], "login_required"),
    ];
    for (overrides, error) in cases {
        let mut overrides = overrides.to_vec();
        overrides.push(("state", Some(state)));
        let response = browser.get(&authorize_with(&server, &client.id, &pkce, &overrides)).await;
        expect_error_redirect(&server, &response, REDIRECT, error, Some(state));
    }
    // Without a state there is none to echo; iss is still there.
    let response =
        browser.get(&authorize_with(&server, &client.id, &pkce, &[("state", None), ("scope", Some("nope"))])).await;
    expect_error_redirect(&server, &response, REDIRECT, "invalid_scope", None);

    // Success: code, state and iss.
    let response = browser.get(&authorize_with(&server, &client.id, &pkce, &[("state", Some(state))])).await;
    let login = expect_login_page(&response);
    let response = log_in(&server, &browser, &login, ALICE, PASSWORD).await;
    let consent = expect_consent_page(&response);
    let response = decide_consent(&server, &browser, &consent, "approve").await;
    assert_eq!(response.status(), 303);
    let code = expect_code_redirect(&server, &response, REDIRECT, state);
    assert_eq!(redeem(&server, &client, &code, &pkce.verifier).await.status(), 200);
}

async fn prompt_none_never_shows_a_page(backend: Backend) {
    let (server, client) = setup(backend).await;
    let trusted = first_party(&server).await;
    let browser = Browser::new();
    assert_eq!(silent(&server, &browser.http, &client, None).await, Err("login_required".into()));
    assert_eq!(silent(&server, &browser.http, &trusted, None).await, Err("login_required".into()));

    // Sign in, but stop at the consent page: the third-party client still needs consent.
    let pkce1 = pkce();
    let response = browser.get(&authorize_with(&server, &client.id, &pkce1, &[])).await;
    let login = expect_login_page(&response);
    let consent = expect_consent_page(&log_in(&server, &browser, &login, ALICE, PASSWORD).await);
    assert_eq!(silent(&server, &browser.http, &client, None).await, Err("consent_required".into()));
    // The first-party client needs no consent: a code straight away.
    let code = silent(&server, &browser.http, &trusted, None).await.expect("code for the first-party client");
    let pkce_unknown = redeem(&server, &trusted, &code, &pkce().verifier).await;
    assert_eq!(pkce_unknown.status(), 400, "silent codes are bound to their own challenge");

    // After consent, prompt=none succeeds for the third-party client too.
    let response = decide_consent(&server, &browser, &consent, "approve").await;
    expect_code_redirect(&server, &response, REDIRECT, "state-123");
    let code = silent(&server, &browser.http, &client, None).await.expect("code after consent");
    assert!(!code.is_empty());

    // prompt=none cannot be combined with other prompts.
    let response = browser.get(&authorize_with(&server, &client.id, &pkce1, &[("prompt", Some("none login"))])).await;
    expect_error_redirect(&server, &response, REDIRECT, "invalid_request", Some("state-123"));
}

async fn max_age_and_prompt_login_force_a_new_login(backend: Backend) {
    let (server, client) = setup(backend).await;
    let browser = Browser::new();
    sign_in(&server, &browser, &client, ALICE).await;
    let first_login = server.clock_now();

    // The session is fresh, yet max_age=0 and prompt=login both ask for the password again.
    for forcing in [("max_age", Some("0")), ("prompt", Some("login"))] {
        let pkce = pkce();
        let response = browser.get(&authorize_with(&server, &client.id, &pkce, &[forcing])).await;
        let login = expect_login_page(&response);
        server.clock.advance(5);
        let response = log_in(&server, &browser, &login, ALICE, PASSWORD).await;
        assert_eq!(response.status(), 303);
        let code = expect_code_redirect(&server, &response, REDIRECT, "state-123");
        let id = id_token_claims(&server, &client, &code, &pkce.verifier).await;
        assert_eq!(id["auth_time"].as_i64(), Some(server.clock_now()), "{forcing:?}: auth_time is the new login");
        assert!(server.clock_now() > first_login);
    }

    // max_age compares with the time of the last login.
    let last_login = server.clock_now();
    server.clock.advance(100);
    let pkce = pkce();
    let response = browser.get(&authorize_with(&server, &client.id, &pkce, &[("max_age", Some("300"))])).await;
    let code = expect_code_redirect(&server, &response, REDIRECT, "state-123");
    let id = id_token_claims(&server, &client, &code, &pkce.verifier).await;
    assert_eq!(id["auth_time"].as_i64(), Some(last_login));
    server.clock.advance(201);
    let response = browser.get(&authorize_with(&server, &client.id, &pkce, &[("max_age", Some("300"))])).await;
    expect_login_page(&response);
    // With prompt=none an old login is an error, not a page.
    let response = browser
        .get(&authorize_with(&server, &client.id, &pkce, &[("max_age", Some("300")), ("prompt", Some("none"))]))
        .await;
    expect_error_redirect(&server, &response, REDIRECT, "login_required", Some("state-123"));
    // A malformed max_age is an error redirect.
    let response = browser.get(&authorize_with(&server, &client.id, &pkce, &[("max_age", Some("-1"))])).await;
    expect_error_redirect(&server, &response, REDIRECT, "invalid_request", Some("state-123"));
}

async fn post_authorize_is_answered_with_303_to_get(backend: Backend) {
    let (server, client) = setup(backend).await;
    let browser = Browser::new();
    let pkce = pkce();
    let form = [
        ("response_type", "code"),
        ("client_id", client.id.as_str()),
        ("redirect_uri", REDIRECT),
        ("scope", "openid email"),
        ("state", "posted state"),
        ("code_challenge", pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    let response = browser.post_form(&server.url("/authorize"), &form).await;
    assert_eq!(response.status(), 303);
    let next = location(&response);
    assert!(next.starts_with("/authorize?"), "{next}");
    let query = query_of(&next);
    assert_eq!(query.len(), form.len());
    for (key, value) in form {
        assert_eq!(query.get(key).map(String::as_str), Some(value), "{key}");
    }
    // Following it behaves like the GET.
    let login = expect_login_page(&browser.get(&server.url(&next)).await);
    let consent = expect_consent_page(&log_in(&server, &browser, &login, ALICE, PASSWORD).await);
    let code = expect_code_redirect(
        &server,
        &decide_consent(&server, &browser, &consent, "approve").await,
        REDIRECT,
        "posted state",
    );
    assert_eq!(redeem(&server, &client, &code, &pkce.verifier).await.status(), 200);

    // A repeated parameter is refused like in the query: a second client_id or redirect_uri
    // gets the error page, never a redirect (issue #12 item 7).
    for repeated in ["client_id", "redirect_uri"] {
        let mut twice: Vec<(&str, &str)> = form.to_vec();
        twice.push((repeated, if repeated == "client_id" { "another-client" } else { "https://evil.example/cb" }));
        let response = browser.post_form(&server.url("/authorize"), &twice).await;
        assert_eq!(response.status(), 303, "{repeated}");
        let page = browser.get(&server.url(&location(&response))).await;
        assert_eq!(page.status(), 400, "{repeated}");
        assert!(page.headers().get("location").is_none(), "{repeated}");
        let html = page.text().await.expect("html");
        assert!(html.contains(&format!("more than one {repeated}")), "{repeated}: {html}");
    }
}
