//! Redirect URIs (`src/oauth/redirect_uri.rs`): an unknown client or an unregistered URI gets an
//! error page, never a redirect; loopback IPs accept any port (RFC 8252 §7.3), `localhost` never.

use crate::browser::{ALICE, authorize_with, expect_code_redirect, expect_login_page, expect_page, log_in, setup};
use crate::common::*;
use crate::on_both_backends;

on_both_backends!(
    untrusted_client_or_redirect_uri_gets_an_error_page,
    loopback_redirect_uris_accept_any_port_but_localhost_does_not,
);

async fn untrusted_client_or_redirect_uri_gets_an_error_page(backend: Backend) {
    let (server, client) = setup(backend).await;
    let browser = Browser::new();
    let pkce = pkce();
    let cases: Vec<(&str, String)> = vec![
        (
            "unregistered host",
            authorize_with(&server, &client.id, &pkce, &[("redirect_uri", Some("https://evil.example/callback"))]),
        ),
        (
            "unregistered path",
            authorize_with(&server, &client.id, &pkce, &[("redirect_uri", Some("http://127.0.0.1:9999/callback/x"))]),
        ),
        (
            "extra query",
            authorize_with(
                &server,
                &client.id,
                &pkce,
                &[("redirect_uri", Some("http://127.0.0.1:9999/callback?next=x"))],
            ),
        ),
        ("unknown client", authorize_with(&server, "no-such-client", &pkce, &[])),
        ("missing client_id", authorize_with(&server, &client.id, &pkce, &[("client_id", None)])),
        // Other errors in the same request must not turn into a redirect either.
        (
            "bad redirect and bad response_type",
            authorize_with(
                &server,
                &client.id,
                &pkce,
                &[("redirect_uri", Some("https://evil.example/cb")), ("response_type", Some("token"))],
            ),
        ),
    ];
    for (case, url) in cases {
        let response = browser.get(&url).await;
        assert_eq!(response.status(), 400, "{case}");
        let html = expect_page(response, 400).await;
        assert!(!html.contains("evil.example"), "{case}: the page does not link to the untrusted URI");
    }
    // The same client with a registered URI is fine.
    let response = browser.get(&authorize_with(&server, &client.id, &pkce, &[])).await;
    expect_login_page(&response);
}

async fn loopback_redirect_uris_accept_any_port_but_localhost_does_not(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.user(ALICE, PASSWORD).await;
    let client = server
        .client(&[
            "--name",
            "Native App",
            "--first-party",
            "--redirect-uri",
            "http://127.0.0.1/callback",
            "--redirect-uri",
            "http://[::1]/callback",
            "--redirect-uri",
            "https://localhost/callback",
        ])
        .await;
    let browser = Browser::new();

    // Any port on 127.0.0.1: the flow completes and the code redeems with that URI.
    let v4 = "http://127.0.0.1:53123/callback";
    let pkce1 = pkce();
    let response = browser.get(&authorize_with(&server, &client.id, &pkce1, &[("redirect_uri", Some(v4))])).await;
    let login = expect_login_page(&response);
    let response = log_in(&server, &browser, &login, ALICE, PASSWORD).await;
    assert_eq!(response.status(), 303);
    let code = expect_code_redirect(&server, &response, v4, "state-123");
    let token = token_request(
        &server,
        &client,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", v4),
            ("code_verifier", &pkce1.verifier),
        ],
    )
    .await;
    assert_eq!(token.status(), 200, "{}", token.text().await.unwrap_or_default());

    // [::1] with any port, and the registered URIs themselves.
    for accepted in [
        "http://[::1]:4000/callback",
        "http://[::1]/callback",
        "http://127.0.0.1/callback",
        "http://127.0.0.1:1/callback",
    ] {
        let pkce = pkce();
        let response =
            browser.get(&authorize_with(&server, &client.id, &pkce, &[("redirect_uri", Some(accepted))])).await;
        let code = expect_code_redirect(&server, &response, accepted, "state-123");
        let token = token_request(
            &server,
            &client,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", accepted),
                ("code_verifier", &pkce.verifier),
            ],
        )
        .await;
        assert_eq!(token.status(), 200, "{accepted}");
    }

    // Never localhost, nor another path, scheme or host.
    for refused in [
        "https://localhost:8443/callback",
        "http://localhost:53123/callback",
        "http://localhost/callback",
        "http://127.0.0.1:53123/other",
        "http://127.0.0.1:53123/callback/",
        "http://[::1]:4000/other",
        "https://127.0.0.1:53123/callback",
        "http://127.0.0.2:53123/callback",
    ] {
        let response =
            browser.get(&authorize_with(&server, &client.id, &pkce(), &[("redirect_uri", Some(refused))])).await;
        expect_page(response, 400).await;
    }
    // localhost never gets the loopback exception: plain http on it cannot even be registered.
    assert!(!can_register(&server, &["--name", "Local", "--redirect-uri", "http://localhost/callback"]).await);
    assert!(can_register(&server, &["--name", "Loopback", "--redirect-uri", "http://[::1]:8080/callback"]).await);
}

/// Whether `oxidp client create` with these flags succeeds.
async fn can_register(server: &TestServer, flags: &[&str]) -> bool {
    use clap::Parser;
    #[derive(clap::Parser)]
    struct Wrapper {
        #[command(flatten)]
        args: oxidp::cli::CreateClientArgs,
    }
    let mut argv = vec!["client"];
    argv.extend_from_slice(flags);
    let args = Wrapper::try_parse_from(argv).expect("client flags").args;
    oxidp::cli::create_client(&server.state, args).await.is_ok()
}
