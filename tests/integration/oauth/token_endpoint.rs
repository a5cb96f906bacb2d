//! Requests to /token, /revoke and /introspect before any grant runs (`src/oauth/token.rs`,
//! `src/oauth/params.rs`): missing and unsupported grant types, repeated parameters, malformed
//! and oversized bodies (RFC 6749 §5.2), and the per-client rate limit on /token.

use reqwest::header::CONTENT_TYPE;
use serde_json::json;

use super::{ENDPOINTS, SERVICE, expect_oauth_error, expect_token};
use crate::common::*;
use crate::on_both_backends;

on_both_backends!(
    missing_and_unsupported_grant_types_are_refused,
    repeated_parameters_are_refused,
    malformed_bodies_are_refused,
    token_requests_are_rate_limited_per_client,
);

const FORM: &str = "application/x-www-form-urlencoded";

/// POSTs raw bytes with the given content type and, optionally, Basic credentials.
async fn post_raw(
    server: &TestServer,
    path: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
    basic: Option<&TestClient>,
) -> reqwest::Response {
    let mut request = reqwest::Client::new().post(server.url(path)).body(body);
    if let Some(content_type) = content_type {
        request = request.header(CONTENT_TYPE, content_type);
    }
    if let Some(client) = basic {
        request = request.basic_auth(&client.id, client.secret.as_deref());
    }
    request.send().await.expect("POST")
}

async fn expect_description_names(response: reqwest::Response, status: u16, error: &str, name: &str) {
    let body = expect_oauth_error(response, status, error).await;
    let description = body["error_description"].as_str().expect("description");
    assert!(description.contains(name), "the description should name '{name}': {description}");
}

async fn missing_and_unsupported_grant_types_are_refused(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = server.client(SERVICE).await;

    let response = token_request(&server, &client, &[("scope", "api:read")]).await;
    expect_description_names(response, 400, "invalid_request", "grant_type").await;
    // An empty value counts as absent (RFC 6749 §3.1).
    let response = token_request(&server, &client, &[("grant_type", "")]).await;
    expect_oauth_error(response, 400, "invalid_request").await;

    for grant_type in
        ["password", "implicit", "urn:ietf:params:oauth:grant-type:jwt-bearer", "CLIENT_CREDENTIALS", "nonsense"]
    {
        let response = token_request(
            &server,
            &client,
            &[("grant_type", grant_type), ("username", "alice@example.com"), ("password", PASSWORD)],
        )
        .await;
        expect_oauth_error(response, 400, "unsupported_grant_type").await;
    }
    // The same client succeeds with a grant it has: the refusals above were about the grant type.
    expect_token(token_request(&server, &client, &[("grant_type", "client_credentials")]).await).await;
}

async fn repeated_parameters_are_refused(backend: Backend) {
    let server = TestServer::start(backend).await;
    let service = server.client(SERVICE).await;
    let web = server.client(&["--name", "Web App", "--redirect-uri", REDIRECT]).await;

    let body = b"grant_type=client_credentials&grant_type=client_credentials".to_vec();
    let response = post_raw(&server, "/token", Some(FORM), body, Some(&service)).await;
    expect_description_names(response, 400, "invalid_request", "grant_type").await;
    let body = b"grant_type=client_credentials&grant_type=authorization_code".to_vec();
    let response = post_raw(&server, "/token", Some(FORM), body, Some(&service)).await;
    expect_description_names(response, 400, "invalid_request", "grant_type").await;

    let body = format!(
        "grant_type=authorization_code&code=a&redirect_uri={REDIRECT}&code=b&code_verifier={}",
        pkce().verifier
    );
    let response = post_raw(&server, "/token", Some(FORM), body.into_bytes(), Some(&web)).await;
    expect_description_names(response, 400, "invalid_request", "code").await;

    let body = b"grant_type=client_credentials&scope=api:read&scope=api:write".to_vec();
    let response = post_raw(&server, "/token", Some(FORM), body, Some(&service)).await;
    expect_description_names(response, 400, "invalid_request", "scope").await;

    // client_secret_post with the client_id twice.
    let secret = service.secret.clone().expect("secret");
    let body = format!("grant_type=client_credentials&client_id={0}&client_id={0}&client_secret={secret}", service.id);
    let response = post_raw(&server, "/token", Some(FORM), body.into_bytes(), None).await;
    expect_description_names(response, 400, "invalid_request", "client_id").await;

    for path in ["/revoke", "/introspect"] {
        let response = post_raw(&server, path, Some(FORM), b"token=a&token=b".to_vec(), Some(&service)).await;
        expect_description_names(response, 400, "invalid_request", "token").await;
    }

    // The same requests without the repetition succeed.
    expect_token(
        post_raw(
            &server,
            "/token",
            Some(FORM),
            b"grant_type=client_credentials&scope=api:read".to_vec(),
            Some(&service),
        )
        .await,
    )
    .await;
    let response = post_raw(&server, "/introspect", Some(FORM), b"token=a".to_vec(), Some(&service)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(json(response).await, json!({ "active": false }));
}

async fn malformed_bodies_are_refused(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = server.client(SERVICE).await;
    let web = server.client(&["--name", "Web App", "--redirect-uri", REDIRECT]).await;

    for path in ENDPOINTS {
        // Invalid UTF-8 after percent-decoding, in a value and in a name.
        for body in [
            &b"grant_type=client_credentials&token=%FF%FE"[..],
            b"grant_type=client_credentials&%C3%28=x",
            b"token=\xff\xfe&grant_type=client_credentials",
        ] {
            let response = post_raw(&server, path, Some(FORM), body.to_vec(), Some(&client)).await;
            expect_oauth_error(response, 400, "invalid_request").await;
        }
        // A body over the 64 KiB limit.
        let mut body = b"grant_type=client_credentials&token=x&padding=".to_vec();
        body.resize(64 * 1024 + 1, b'a');
        let response = post_raw(&server, path, Some(FORM), body, Some(&client)).await;
        expect_oauth_error(response, 400, "invalid_request").await;
        // JSON and missing or other content types are not forms.
        let body = br#"{"grant_type":"client_credentials","token":"x"}"#.to_vec();
        for content_type in
            [Some("application/json"), Some("text/plain"), Some("multipart/form-data; boundary=x"), None]
        {
            let response = post_raw(&server, path, content_type, body.clone(), Some(&client)).await;
            expect_oauth_error(response, 400, "invalid_request").await;
        }
    }

    // A single parameter over 4096 characters is refused before anything looks at it.
    let long = "a".repeat(4097);
    let response = token_request(&server, &client, &[("grant_type", "client_credentials"), ("scope", &long)]).await;
    expect_description_names(response, 400, "invalid_request", "scope").await;
    let response = token_request(
        &server,
        &web,
        &[("grant_type", "authorization_code"), ("code", &long), ("redirect_uri", REDIRECT)],
    )
    .await;
    expect_description_names(response, 400, "invalid_request", "code").await;
    for path in ["/revoke", "/introspect"] {
        let response = client_post(&server, path, &client, &[("token", &long)]).await;
        expect_oauth_error(response, 400, "invalid_request").await;
    }
    // At exactly the limit the code is merely unknown.
    let at_limit = "a".repeat(4096);
    let response = token_request(
        &server,
        &web,
        &[("grant_type", "authorization_code"), ("code", &at_limit), ("redirect_uri", REDIRECT)],
    )
    .await;
    expect_oauth_error(response, 400, "invalid_grant").await;

    // A body just under the size limit is still read; a charset parameter is fine.
    let mut body = b"grant_type=client_credentials&padding=".to_vec();
    body.resize(60 * 1024, b'a');
    let response =
        post_raw(&server, "/token", Some("application/x-www-form-urlencoded; charset=UTF-8"), body, Some(&client))
            .await;
    // The padding value is too long as a parameter, which proves the body was read and parsed.
    expect_description_names(response, 400, "invalid_request", "padding").await;
    let body = b"grant_type=client_credentials&scope=api%3Aread".to_vec();
    let response =
        post_raw(&server, "/token", Some("application/x-www-form-urlencoded; charset=UTF-8"), body, Some(&client))
            .await;
    assert_eq!(expect_token(response).await["scope"], "api:read");
}

/// SPEC §8 "per client on /token": `OXIDP_TOKEN_RATE_LIMIT` requests per client and minute.
async fn token_requests_are_rate_limited_per_client(backend: Backend) {
    let server = TestServer::start_with(backend, |config| config.token_rate_limit = 3).await;
    let busy = server.client(SERVICE).await;
    let bystander = server.client(SERVICE).await;
    let wrong = TestClient { id: busy.id.clone(), secret: Some("wrong-secret".into()) };
    let grant = [("grant_type", "client_credentials")];

    // Requests that fail client authentication do not use the client's allowance: it is
    // counted after authentication, so nobody without the secret can exhaust it.
    for _ in 0..2 {
        expect_oauth_error(token_request(&server, &wrong, &grant).await, 401, "invalid_client").await;
    }
    for _ in 0..3 {
        expect_token(token_request(&server, &busy, &grant).await).await;
    }
    let response = token_request(&server, &busy, &grant).await;
    let retry_after: i64 =
        response.headers().get("retry-after").expect("Retry-After").to_str().expect("header").parse().expect("seconds");
    assert_eq!(retry_after, 60 - server.clock_now() % 60, "until the next minute");
    expect_oauth_error(response, 429, "temporarily_unavailable").await;
    // Other clients have their own allowance.
    expect_token(token_request(&server, &bystander, &grant).await).await;

    server.clock.advance(retry_after);
    for _ in 0..3 {
        expect_token(token_request(&server, &busy, &grant).await).await;
    }
    expect_oauth_error(token_request(&server, &busy, &grant).await, 429, "temporarily_unavailable").await;
}
