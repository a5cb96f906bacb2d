//! Client authentication on /token, /revoke and /introspect (`src/oauth/client_auth.rs`):
//! failures are 401 `invalid_client` with a challenge, `client_secret_post` works like Basic, one
//! method per request, and repeated failures per client are limited (429).

use serde_json::json;

use super::{ENDPOINTS, SERVICE, expect_oauth_error, expect_token, post_with_authorization};
use crate::common::*;
use crate::on_both_backends;

on_both_backends!(
    client_authentication_failures,
    client_secret_post_works_like_basic,
    repeated_client_auth_failures_are_rate_limited,
);

async fn client_authentication_failures(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = server.client(SERVICE).await;
    let secret = client.secret.clone().expect("secret");
    let wrong = TestClient { id: client.id.clone(), secret: Some(format!("{secret}x")) };
    let unknown = TestClient { id: "no-such-client".into(), secret: Some(secret.clone()) };
    let grant = [("grant_type", "client_credentials")];

    for path in ENDPOINTS {
        let form: &[(&str, &str)] = if path == "/token" { &grant } else { &[("token", "whatever")] };
        // Wrong secret, unknown client: 401 invalid_client with a challenge.
        expect_oauth_error(client_post(&server, path, &wrong, form).await, 401, "invalid_client").await;
        expect_oauth_error(client_post(&server, path, &unknown, form).await, 401, "invalid_client").await;
        // The same with client_secret_post.
        let mut post = form.to_vec();
        post.extend([("client_id", client.id.as_str()), ("client_secret", "wrong")]);
        expect_oauth_error(post_with_authorization(&server, path, None, &post).await, 401, "invalid_client").await;
        // A confidential client cannot authenticate as public (no secret).
        let mut no_secret = form.to_vec();
        no_secret.push(("client_id", client.id.as_str()));
        expect_oauth_error(post_with_authorization(&server, path, None, &no_secret).await, 401, "invalid_client").await;
        // No authentication at all.
        expect_oauth_error(post_with_authorization(&server, path, None, form).await, 401, "invalid_client").await;

        // Basic and client_secret_post together.
        let mut both = form.to_vec();
        both.extend([("client_id", client.id.as_str()), ("client_secret", secret.as_str())]);
        let response = reqwest::Client::new()
            .post(server.url(path))
            .basic_auth(&client.id, Some(&secret))
            .form(&both)
            .send()
            .await
            .expect("POST");
        expect_oauth_error(response, 400, "invalid_request").await;
        // Basic with a different client_id in the form.
        let mut mismatch = form.to_vec();
        mismatch.push(("client_id", "someone-else"));
        let response = reqwest::Client::new()
            .post(server.url(path))
            .basic_auth(&client.id, Some(&secret))
            .form(&mismatch)
            .send()
            .await
            .expect("POST");
        expect_oauth_error(response, 400, "invalid_request").await;

        // Malformed Basic headers.
        use base64::Engine;
        let b64 = |text: &str| base64::engine::general_purpose::STANDARD.encode(text);
        let malformed = [
            "Basic".to_string(),
            "Basic !!!not-base64!!!".to_string(),
            format!("Basic {}", b64("no-colon-here")),
            format!("Basic {}", base64::engine::general_purpose::STANDARD.encode([0xff, 0xfe, b':', b'x'])),
            format!("Bearer {secret}"),
        ];
        for header in &malformed {
            let response = post_with_authorization(&server, path, Some(header), form).await;
            expect_oauth_error(response, 401, "invalid_client").await;
        }
    }

    // After all that, the right credentials still work (9 failures stay under the default limit of 20).
    expect_token(token_request(&server, &client, &grant).await).await;
}

async fn client_secret_post_works_like_basic(backend: Backend) {
    let server = TestServer::start(backend).await;
    let service = server.client(SERVICE).await;
    let secret = service.secret.clone().expect("secret");

    let basic = expect_token(token_request(&server, &service, &[("grant_type", "client_credentials")]).await).await;
    let post_form =
        [("grant_type", "client_credentials"), ("client_id", service.id.as_str()), ("client_secret", secret.as_str())];
    let post = expect_token(post_with_authorization(&server, "/token", None, &post_form).await).await;
    for body in [&basic, &post] {
        let claims = server.verify_jwt(body["access_token"].as_str().expect("token"), &service.id, "at+jwt").await;
        assert_eq!(claims["sub"], service.id.as_str());
    }

    // A code redeemed with client_secret_post.
    server.user("alice@example.com", PASSWORD).await;
    let web = server.client(&["--name", "Web App", "--redirect-uri", REDIRECT]).await;
    let web_secret = web.secret.clone().expect("secret");
    let (code, pkce) = obtain_code(&server, &Browser::new(), &web, &[]).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", pkce.verifier.as_str()),
        ("client_id", web.id.as_str()),
        ("client_secret", web_secret.as_str()),
    ];
    let body = expect_token(post_with_authorization(&server, "/token", None, &form).await).await;
    server.verify_jwt(body["access_token"].as_str().expect("token"), &web.id, "at+jwt").await;
    assert!(body["id_token"].is_string());

    // /revoke and /introspect accept client_secret_post too.
    let access = body["access_token"].as_str().expect("token");
    let form = [("token", access), ("client_id", web.id.as_str()), ("client_secret", web_secret.as_str())];
    let answer = json(post_with_authorization(&server, "/introspect", None, &form).await).await;
    assert_eq!(answer["active"], true);
    assert_eq!(post_with_authorization(&server, "/revoke", None, &form).await.status(), 200);
    let answer = json(post_with_authorization(&server, "/introspect", None, &form).await).await;
    assert_eq!(answer, json!({ "active": false }));
}

/// Issue #12 item 3: a client_id is public, so failures must never lock the client out. They
/// are counted per client and source address, after the credential is checked.
async fn repeated_client_auth_failures_are_rate_limited(backend: Backend) {
    let server = TestServer::start_with(backend, |config| config.client_auth_failure_limit = 3).await;
    let victim = server.client(SERVICE).await;
    let bystander = server.client(SERVICE).await;
    let wrong = TestClient { id: victim.id.clone(), secret: Some("wrong-secret".into()) };
    let grant = [("grant_type", "client_credentials")];

    for _ in 0..3 {
        expect_oauth_error(token_request(&server, &wrong, &grant).await, 401, "invalid_client").await;
    }
    let limited = |response: reqwest::Response| async move {
        let retry_after = response.headers().get("retry-after").map(|v| v.to_str().expect("retry-after").to_string());
        let status = response.status().as_u16();
        let body = json(response).await;
        assert_eq!(status, 429, "{body}");
        assert!(body["error"].is_string() && body["error_description"].is_string(), "{body}");
        let seconds: i64 = retry_after.expect("Retry-After header").parse().expect("Retry-After in seconds");
        assert!((1..=60).contains(&seconds), "Retry-After {seconds}");
    };
    limited(token_request(&server, &wrong, &grant).await).await;
    limited(client_post(&server, "/introspect", &wrong, &[("token", "x")]).await).await;
    // The attacker locked nobody out: the right secret works on every endpoint, from the very
    // address the failures came from.
    expect_token(token_request(&server, &victim, &grant).await).await;
    let introspected = client_post(&server, "/introspect", &victim, &[("token", "x")]).await;
    assert_eq!(introspected.status().as_u16(), 200);
    let revoked = client_post(&server, "/revoke", &victim, &[("token", "x")]).await;
    assert_eq!(revoked.status().as_u16(), 200);
    // Other clients are not affected.
    expect_token(token_request(&server, &bystander, &grant).await).await;
    // Failures count per source address: the same wrong secret from 127.0.0.2 is its own count.
    let elsewhere = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .build()
        .expect("client bound to 127.0.0.2");
    let response = elsewhere
        .post(server.url("/token"))
        .basic_auth(&wrong.id, wrong.secret.as_deref())
        .form(&grant)
        .send()
        .await
        .expect("token request from 127.0.0.2");
    expect_oauth_error(response, 401, "invalid_client").await;

    // The window passes.
    server.clock.advance(61);
    expect_oauth_error(token_request(&server, &wrong, &grant).await, 401, "invalid_client").await;
    // Successful attempts do not count as failures.
    for _ in 0..5 {
        expect_token(token_request(&server, &victim, &grant).await).await;
    }
}
