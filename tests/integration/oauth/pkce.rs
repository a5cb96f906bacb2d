//! PKCE (`src/oauth/pkce.rs`): S256 required at /authorize, the verifier checked at /token, and
//! the one exemption (a flagged confidential client) without a downgrade.

use crate::browser::{
    ALICE, Overrides, authorize_with, expect_code_redirect, expect_error_redirect, expect_login_page, log_in, setup,
};
use crate::common::*;
use crate::on_both_backends;

on_both_backends!(
    pkce_s256_is_required,
    pkce_wrong_verifier_is_invalid_grant,
    pkce_exempt_client_may_omit_pkce_but_not_downgrade,
);

async fn pkce_s256_is_required(backend: Backend) {
    let (server, client) = setup(backend).await;
    let browser = Browser::new();
    let pkce = pkce();
    let cases: [Overrides<'_>; 5] = [
        &[("code_challenge", None), ("code_challenge_method", None)],
        &[("code_challenge", None)],
        &[("code_challenge_method", Some("plain"))],
        &[("code_challenge_method", None)],
        &[("code_challenge", Some("too-short"))],
    ];
    for overrides in cases {
        let response = browser.get(&authorize_with(&server, &client.id, &pkce, overrides)).await;
        expect_error_redirect(&server, &response, REDIRECT, "invalid_request", Some("state-123"));
    }
    // plain with a verifier as its own challenge is refused as well.
    let plain = authorize_with(
        &server,
        &client.id,
        &pkce,
        &[("code_challenge", Some(&pkce.verifier)), ("code_challenge_method", Some("plain"))],
    );
    expect_error_redirect(&server, &browser.get(&plain).await, REDIRECT, "invalid_request", Some("state-123"));
}

async fn pkce_wrong_verifier_is_invalid_grant(backend: Backend) {
    let (server, client) = setup(backend).await;
    let browser = Browser::new();
    let (code, _) = obtain_code(&server, &browser, &client, &[]).await;
    let other = pkce();
    let response = redeem(&server, &client, &code, &other.verifier).await;
    assert_eq!(response.status(), 400);
    assert_eq!(json(response).await["error"], "invalid_grant");

    // Without any verifier.
    let (code, _) = obtain_code(&server, &browser, &client, &[]).await;
    let response = token_request(
        &server,
        &client,
        &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", REDIRECT)],
    )
    .await;
    assert_eq!(response.status(), 400);
    assert_eq!(json(response).await["error"], "invalid_grant");

    // The right one works.
    let (code, pkce) = obtain_code(&server, &browser, &client, &[]).await;
    assert_eq!(redeem(&server, &client, &code, &pkce.verifier).await.status(), 200);
}

async fn pkce_exempt_client_may_omit_pkce_but_not_downgrade(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.user(ALICE, PASSWORD).await;
    let legacy =
        server.client(&["--name", "Legacy", "--redirect-uri", REDIRECT, "--pkce-exempt", "--first-party"]).await;
    assert!(legacy.secret.is_some(), "a confidential client");
    let browser = Browser::new();
    let unused = pkce();
    let no_pkce: Overrides<'_> = &[("code_challenge", None), ("code_challenge_method", None)];

    let response = browser.get(&authorize_with(&server, &legacy.id, &unused, no_pkce)).await;
    let login = expect_login_page(&response);
    let response = log_in(&server, &browser, &login, ALICE, PASSWORD).await;
    let code = expect_code_redirect(&server, &response, REDIRECT, "state-123");
    let ok = token_request(
        &server,
        &legacy,
        &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", REDIRECT)],
    )
    .await;
    assert_eq!(ok.status(), 200, "an exempt client may omit PKCE");

    // A verifier for a code issued without a challenge: a downgrade, refused.
    let response = browser.get(&authorize_with(&server, &legacy.id, &unused, no_pkce)).await;
    let code = expect_code_redirect(&server, &response, REDIRECT, "state-123");
    let refused = redeem(&server, &legacy, &code, &unused.verifier).await;
    assert_eq!(refused.status(), 400);
    assert_eq!(json(refused).await["error"], "invalid_grant");

    // The exempt client may still use PKCE properly.
    let pkce = pkce();
    let response = browser.get(&authorize_with(&server, &legacy.id, &pkce, &[])).await;
    let code = expect_code_redirect(&server, &response, REDIRECT, "state-123");
    assert_eq!(redeem(&server, &legacy, &code, &pkce.verifier).await.status(), 200);

    // Without the flag the same confidential client type must use PKCE.
    let strict = server.client(&["--name", "Strict", "--redirect-uri", REDIRECT, "--first-party"]).await;
    let response = browser.get(&authorize_with(&server, &strict.id, &unused, no_pkce)).await;
    expect_error_redirect(&server, &response, REDIRECT, "invalid_request", Some("state-123"));
}
