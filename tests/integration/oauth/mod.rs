//! The OAuth 2.1 core (`src/oauth/`) over real HTTP: one file per part of the protocol. The
//! helpers here check the answers of /token, /revoke and /introspect (RFC 6749 §5.2, RFC 7009,
//! RFC 7662) for the files that call those endpoints.

mod authorization_code;
mod authorize;
mod client_assertion;
mod client_auth;
mod client_cache;
mod client_credentials;
mod consent;
pub(crate) mod device_code;
mod dpop;
mod metadata_document;
mod par;
mod pkce;
mod redirect_uri;
mod refresh_token;
mod request_binding;
pub(crate) mod request_object;
mod revocation_and_introspection;
mod token_endpoint;
mod token_exchange;

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use serde_json::Value;

use crate::common::*;

const ENDPOINTS: [&str; 3] = ["/token", "/revoke", "/introspect"];

/// A confidential client that may use client_credentials, with two custom scopes.
const SERVICE: &[&str] =
    &["--name", "Service", "--grant-types", "client_credentials", "--scopes", "api:read api:write"];

/// An ES256 key pair, for clients that sign (assertions, request objects): its signer and its
/// public JWK (with `kid`).
pub(crate) fn key_pair(kid: &str) -> (Box<dyn josekit::jws::JwsSigner>, josekit::jwk::Jwk) {
    let pair = josekit::jws::ES256.generate_key_pair().expect("key pair");
    let mut public = pair.to_jwk_public_key();
    public.set_key_id(kid);
    let signer = josekit::jws::ES256.signer_from_jwk(&pair.to_jwk_private_key()).expect("signer");
    (Box::new(signer), public)
}

/// POSTs a form with an arbitrary `Authorization` header (or none).
async fn post_with_authorization(
    server: &TestServer,
    path: &str,
    authorization: Option<&str>,
    form: &[(&str, &str)],
) -> reqwest::Response {
    let mut request = reqwest::Client::new().post(server.url(path)).form(form);
    if let Some(value) = authorization {
        request = request.header(AUTHORIZATION, value);
    }
    request.send().await.expect("POST")
}

/// Checks an RFC 6749 §5.2 error: status, JSON content type, `error`, a non-empty
/// `error_description`, and `Cache-Control: no-store`. Returns the body.
async fn expect_oauth_error(response: reqwest::Response, status: u16, error: &str) -> Value {
    let url = response.url().path().to_string();
    let actual = response.status().as_u16();
    assert!(actual < 500, "{url} answered with a server error {actual}");
    let content_type = response.headers().get(CONTENT_TYPE).map(|v| v.to_str().expect("content type").to_string());
    let cache = response.headers().get("cache-control").map(|v| v.to_str().expect("cache-control").to_string());
    let challenge =
        response.headers().get("www-authenticate").map(|v| v.to_str().expect("www-authenticate").to_string());
    let text = response.text().await.expect("body");
    assert_eq!(actual, status, "{url}: expected {status} {error}, got {actual}: {text}");
    assert!(
        content_type.as_deref().is_some_and(|c| c.starts_with("application/json")),
        "{url}: content type {content_type:?}"
    );
    let body: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("{url}: not JSON: {text}"));
    assert_eq!(body["error"], error, "{url}: {body}");
    let description =
        body["error_description"].as_str().unwrap_or_else(|| panic!("{url}: no error_description in {body}"));
    assert!(!description.trim().is_empty(), "{url}: empty error_description");
    assert_eq!(cache.as_deref(), Some("no-store"), "{url}: error responses are not cached either");
    if error == "invalid_client" {
        let challenge = challenge.unwrap_or_else(|| panic!("{url}: invalid_client without WWW-Authenticate"));
        assert!(challenge.starts_with("Basic"), "{url}: challenge {challenge}");
    }
    body
}

/// A successful token response: 200, `no-store`, JSON.
async fn expect_token(response: reqwest::Response) -> Value {
    let status = response.status();
    let cache = response.headers().get("cache-control").map(|v| v.to_str().expect("cache-control").to_string());
    let pragma = response.headers().get("pragma").map(|v| v.to_str().expect("pragma").to_string());
    let text = response.text().await.expect("body");
    assert_eq!(status, 200, "token request failed: {text}");
    assert_eq!(cache.as_deref(), Some("no-store"), "token responses carry Cache-Control: no-store");
    assert_eq!(pragma.as_deref(), Some("no-cache"));
    let body: Value = serde_json::from_str(&text).expect("token JSON");
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["access_token"].is_string(), "{body}");
    body
}

async fn introspect(server: &TestServer, caller: &TestClient, token: &str) -> Value {
    let response = client_post(server, "/introspect", caller, &[("token", token)]).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    json(response).await
}

async fn revoke(server: &TestServer, caller: &TestClient, token: &str) {
    let response = client_post(server, "/revoke", caller, &[("token", token)]).await;
    assert_eq!(response.status(), 200, "revocation answers 200 whatever the token");
}

/// A server with alice, a web client, and tokens from a full code flow for it.
struct CodeFlow {
    server: TestServer,
    client: TestClient,
    access_token: String,
    refresh_token: String,
}

async fn code_flow(backend: Backend) -> CodeFlow {
    let server = TestServer::start(backend).await;
    server.user("alice@example.com", PASSWORD).await;
    let client = server.client(&["--name", "Web App", "--redirect-uri", REDIRECT]).await;
    let browser = Browser::new();
    let (code, pkce) = obtain_code(&server, &browser, &client, &[]).await;
    let body = expect_token(redeem(&server, &client, &code, &pkce.verifier).await).await;
    CodeFlow {
        access_token: body["access_token"].as_str().expect("access token").to_string(),
        refresh_token: body["refresh_token"].as_str().expect("refresh token (offline_access)").to_string(),
        server,
        client,
    }
}
