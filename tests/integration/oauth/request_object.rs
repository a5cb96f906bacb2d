//! JWT-secured authorization requests (RFC 9101; issue #14 item 6): a signed `request` object by
//! value at /authorize and /par, verified with the client's registered keys; its parameters are
//! the request. Every rule on the object has a refused case.

use josekit::jwk::Jwk;
use josekit::jws::{HS256, JwsHeader, JwsSigner};
use josekit::jwt::{self, JwtPayload};
use serde_json::{Map, Value, json};

use super::{expect_oauth_error, expect_token, key_pair};
use crate::browser::{ALICE, expect_error_redirect, expect_page};
use crate::common::*;
use crate::on_both_backends;

on_both_backends!(
    a_signed_request_object_is_the_whole_request,
    a_request_object_can_be_pushed,
    an_object_that_does_not_verify_is_an_error_page,
    a_verified_object_that_breaks_a_rule_is_redirected,
    discovery_advertises_request_objects,
);

pub(crate) const TYP: &str = "oauth-authz-req+jwt";
const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

pub(crate) fn sign(signer: &dyn JwsSigner, typ: Option<&str>, claims: &Value) -> String {
    let mut header = JwsHeader::new();
    if let Some(typ) = typ {
        header.set_token_type(typ);
    }
    let map: Map<String, Value> = claims.as_object().expect("claims object").clone();
    let payload = JwtPayload::from_map(map).expect("payload");
    jwt::encode_with_signer(&payload, &header, signer).expect("sign")
}

/// A private_key_jwt web client with one ES256 key; returns it with its signer and public key.
async fn keyed_client(server: &TestServer) -> (TestClient, Box<dyn JwsSigner>, Jwk) {
    let (signer, public) = key_pair("k1");
    let jwks = json!({ "keys": [Value::Object(public.as_ref().clone())] }).to_string();
    let client = server
        .client(&[
            "--name",
            "Signed Requests",
            "--redirect-uri",
            REDIRECT,
            "--token-endpoint-auth-method",
            "private_key_jwt",
            "--jwks",
            &jwks,
        ])
        .await;
    (client, signer, public)
}

/// The claims of a good request object for `client_id`.
pub(crate) fn object_claims(server: &TestServer, client_id: &str, pkce: &Pkce) -> Value {
    json!({
        "iss": client_id,
        "aud": server.issuer(),
        "exp": server.clock_now() + 300,
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT,
        "scope": "openid profile",
        "state": "object-state",
        "nonce": "object-nonce",
        "code_challenge": pkce.challenge,
        "code_challenge_method": "S256",
    })
}

fn with(mut claims: Value, name: &str, value: Value) -> Value {
    claims[name] = value;
    claims
}

pub(crate) fn query_url(server: &TestServer, pairs: &[(&str, &str)]) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for (key, value) in pairs {
        query.append_pair(key, value);
    }
    server.url(&format!("/authorize?{}", query.finish()))
}

/// A client assertion (RFC 7523) for /token or /par.
fn assertion(server: &TestServer, signer: &dyn JwsSigner, client_id: &str) -> String {
    let claims = json!({
        "iss": client_id, "sub": client_id, "aud": server.issuer(),
        "exp": server.clock_now() + 300, "jti": uuid::Uuid::new_v4().to_string(),
    });
    sign(signer, Some("JWT"), &claims)
}

async fn post_signed(
    server: &TestServer,
    path: &str,
    signer: &dyn JwsSigner,
    client_id: &str,
    form: &[(&str, &str)],
) -> reqwest::Response {
    post_assertion(server, path, &assertion(server, signer, client_id), form).await
}

async fn post_assertion(server: &TestServer, path: &str, assertion: &str, form: &[(&str, &str)]) -> reqwest::Response {
    let mut form = form.to_vec();
    form.extend([("client_assertion_type", ASSERTION_TYPE), ("client_assertion", assertion)]);
    reqwest::Client::new().post(server.url(path)).form(&form).send().await.expect("POST")
}

async fn redeem_signed(server: &TestServer, signer: &dyn JwsSigner, client_id: &str, code: &str, pkce: &Pkce) -> Value {
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT),
        ("code_verifier", pkce.verifier.as_str()),
    ];
    expect_token(post_signed(server, "/token", signer, client_id, &form).await).await
}

async fn a_signed_request_object_is_the_whole_request(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.user(ALICE, PASSWORD).await;
    let (client, signer, _) = keyed_client(&server).await;
    let pkce = pkce();
    for typ in [Some(TYP), Some("JWT"), None] {
        let object = sign(signer.as_ref(), typ, &object_claims(&server, &client.id, &pkce));
        // Outside the object only client_id counts: these conflicting values are ignored.
        let url = query_url(
            &server,
            &[
                ("client_id", &client.id),
                ("response_type", "code"),
                ("request", &object),
                ("redirect_uri", "https://evil.example/cb"),
                ("scope", "openid email"),
                ("state", "query-state"),
                ("nonce", "query-nonce"),
                ("code_challenge", "not-the-challenge"),
            ],
        );
        let browser = Browser::new();
        let redirect = run_browser_flow(&server, &browser, &url, ALICE, PASSWORD).await;
        assert!(redirect.starts_with(&format!("{REDIRECT}?")), "{redirect}");
        let params = query_of(&redirect);
        assert_eq!(params.get("state").map(String::as_str), Some("object-state"), "{redirect}");
        let code = params.get("code").unwrap_or_else(|| panic!("no code in {redirect}"));
        let tokens = redeem_signed(&server, signer.as_ref(), &client.id, code, &pkce).await;
        let scope = tokens["scope"].as_str().expect("scope");
        assert!(scope.contains("profile") && !scope.contains("email"), "the object's scope is used: {scope}");
        let id_token = tokens["id_token"].as_str().expect("id_token");
        let claims = server.verify_jwt(id_token, &client.id, "JWT").await;
        assert_eq!(claims["nonce"], "object-nonce", "the object's nonce reaches the ID token");
    }
}

async fn a_request_object_can_be_pushed(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.user(ALICE, PASSWORD).await;
    let (client, signer, _) = keyed_client(&server).await;
    let pkce = pkce();
    let object = sign(signer.as_ref(), Some(TYP), &object_claims(&server, &client.id, &pkce));
    // The pushed form holds only the object (and the client's authentication).
    let response = post_signed(&server, "/par", signer.as_ref(), &client.id, &[("request", &object)]).await;
    assert_eq!(response.status(), 201);
    let request_uri = json(response).await["request_uri"].as_str().expect("request_uri").to_string();
    let url = query_url(&server, &[("client_id", &client.id), ("request_uri", &request_uri)]);
    let redirect = run_browser_flow(&server, &Browser::new(), &url, ALICE, PASSWORD).await;
    let params = query_of(&redirect);
    assert_eq!(params.get("state").map(String::as_str), Some("object-state"), "{redirect}");
    let code = params.get("code").unwrap_or_else(|| panic!("no code in {redirect}"));
    let tokens = redeem_signed(&server, signer.as_ref(), &client.id, code, &pkce).await;
    let claims = server.verify_jwt(tokens["id_token"].as_str().expect("id_token"), &client.id, "JWT").await;
    assert_eq!(claims["nonce"], "object-nonce");

    // Refusals at /par are JSON invalid_request_object, never redirects.
    let (other_signer, _) = key_pair("k1");
    let good = object_claims(&server, &client.id, &pkce);
    for (what, object) in [
        ("expired", sign(signer.as_ref(), Some(TYP), &with(good.clone(), "exp", json!(server.clock_now() - 120)))),
        ("another key", sign(other_signer.as_ref(), Some(TYP), &good)),
        ("aud", sign(signer.as_ref(), Some(TYP), &with(good.clone(), "aud", json!("https://other.example")))),
    ] {
        let response = post_signed(&server, "/par", signer.as_ref(), &client.id, &[("request", &object)]).await;
        assert!(response.headers().get("location").is_none(), "{what}");
        expect_oauth_error(response, 400, "invalid_request_object").await;
    }
}

async fn an_object_that_does_not_verify_is_an_error_page(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (client, signer, public) = keyed_client(&server).await;
    let plain = server.client(&["--name", "No Keys", "--redirect-uri", REDIRECT]).await;
    let (other, _, _) = keyed_client(&server).await;
    let pkce = pkce();
    let good = object_claims(&server, &client.id, &pkce);
    let (other_signer, _) = key_pair("k1");
    let unsigned = {
        let signed = sign(signer.as_ref(), Some(TYP), &good);
        let payload = signed.split('.').nth(1).expect("payload").to_string();
        format!("eyJhbGciOiJub25lIn0.{payload}.")
    };
    let forged = {
        let public_bytes = serde_json::to_vec(&public).expect("jwk bytes");
        let hmac = HS256.signer_from_bytes(&public_bytes).expect("hmac");
        sign(&hmac, Some(TYP), &good)
    };
    let plain_object = sign(signer.as_ref(), Some(TYP), &object_claims(&server, &plain.id, &pkce));
    let cases: Vec<(&str, &str, String)> = vec![
        ("alg none", client.id.as_str(), unsigned),
        ("another key", client.id.as_str(), sign(other_signer.as_ref(), Some(TYP), &good)),
        ("HMAC with the public key", client.id.as_str(), forged),
        ("a client without keys", plain.id.as_str(), plain_object),
        ("client_id names another client", other.id.as_str(), sign(signer.as_ref(), Some(TYP), &good)),
        ("another typ", client.id.as_str(), sign(signer.as_ref(), Some("logout+jwt"), &good)),
        ("not a JWT", client.id.as_str(), "not-a-jwt".to_string()),
    ];
    let browser = Browser::new();
    for (what, client_id, object) in cases {
        let url = query_url(&server, &[("client_id", client_id), ("response_type", "code"), ("request", &object)]);
        let html = expect_page(browser.get(&url).await, 400).await;
        assert!(html.contains("invalid_request_object"), "{what}: {html}");
    }
}

async fn a_verified_object_that_breaks_a_rule_is_redirected(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (client, signer, _) = keyed_client(&server).await;
    let pkce = pkce();
    let good = object_claims(&server, &client.id, &pkce);
    let now = server.clock_now();
    let mut no_exp = good.clone();
    no_exp.as_object_mut().expect("object").remove("exp");
    let cases: Vec<(&str, Value)> = vec![
        ("expired", with(good.clone(), "exp", json!(now - 120))),
        ("no exp", no_exp),
        ("over an hour", with(good.clone(), "exp", json!(now + 7200))),
        ("not yet valid", with(good.clone(), "nbf", json!(now + 600))),
        ("aud not the issuer", with(good.clone(), "aud", json!("https://other.example"))),
        ("aud list without the issuer", with(good.clone(), "aud", json!(["https://other.example"]))),
        ("iss not the client", with(good.clone(), "iss", json!("someone-else"))),
        ("client_id differs", with(good.clone(), "client_id", json!("someone-else"))),
        ("nested request_uri", with(good.clone(), "request_uri", json!("https://client.example/r"))),
    ];
    let browser = Browser::new();
    for (what, claims) in cases {
        let object = sign(signer.as_ref(), Some(TYP), &claims);
        let url = query_url(&server, &[("client_id", &client.id), ("response_type", "code"), ("request", &object)]);
        let response = browser.get(&url).await;
        assert!(response.status().is_redirection(), "{what}: {}", response.status());
        expect_error_redirect(&server, &response, REDIRECT, "invalid_request_object", Some("object-state"));
    }
    // aud as a list holding the issuer is accepted; the object's own checks still run.
    let listed = with(good.clone(), "aud", json!(["https://other.example", server.base]));
    let bad_scope = with(listed, "scope", json!("openid unknown-scope"));
    let url =
        query_url(&server, &[("client_id", &client.id), ("request", &sign(signer.as_ref(), Some(TYP), &bad_scope))]);
    expect_error_redirect(&server, &browser.get(&url).await, REDIRECT, "invalid_scope", Some("object-state"));
    // request together with request_uri.
    let object = sign(signer.as_ref(), Some(TYP), &good);
    let url = authorize_url(
        &server,
        &client,
        &pkce,
        &[("request", &object), ("request_uri", "urn:ietf:params:oauth:request_uri:abc")],
    );
    expect_error_redirect(&server, &browser.get(&url).await, REDIRECT, "invalid_request", Some("state-123"));
}

async fn discovery_advertises_request_objects(backend: Backend) {
    let server = TestServer::start(backend).await;
    for path in ["/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"] {
        let document = json(reqwest::get(server.url(path)).await.expect("discovery")).await;
        assert_eq!(document["request_parameter_supported"], true, "{path}");
        assert_eq!(document["request_uri_parameter_supported"], false, "{path}");
        let algs = document["request_object_signing_alg_values_supported"].as_array().expect("algs");
        for alg in ["RS256", "PS256", "ES256", "EdDSA", "HS256"] {
            assert!(algs.iter().any(|a| a == alg), "{path}: {alg} in {algs:?}");
        }
        assert!(!algs.iter().any(|a| a == "none"), "{path}: {algs:?}");
    }
}

/// Two instances of one deployment: a request object signed for a client registered at A is
/// accepted at B; an assertion's `jti` spent at one instance is refused at the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_and_assertions_hold_across_instances() {
    let (a, b) = pair().await;
    a.user(ALICE, PASSWORD).await;
    let (client, signer, _) = keyed_client(&a).await;
    let pkce = pkce();
    let claims = with(object_claims(&b, &client.id, &pkce), "scope", json!("openid offline_access"));
    let object = sign(signer.as_ref(), Some(TYP), &claims);
    let url = query_url(&b, &[("client_id", &client.id), ("response_type", "code"), ("request", &object)]);
    let redirect = run_browser_flow(&b, &Browser::new(), &url, ALICE, PASSWORD).await;
    let params = query_of(&redirect);
    assert_eq!(params.get("state").map(String::as_str), Some("object-state"), "{redirect}");
    let code = params.get("code").unwrap_or_else(|| panic!("no code in {redirect}"));
    let tokens = redeem_signed(&b, signer.as_ref(), &client.id, code, &pkce).await;
    let claims = a.verify_jwt(tokens["id_token"].as_str().expect("id_token"), &client.id, "JWT").await;
    assert_eq!(claims["nonce"], "object-nonce", "the object verified at B was the request");

    // One assertion, accepted at one instance, is a replay at the other (with a good refresh token).
    let mut refresh = tokens["refresh_token"].as_str().expect("refresh token").to_string();
    for (first, second) in [(&a, &b), (&b, &a)] {
        let once = assertion(first, signer.as_ref(), &client.id);
        let form = [("grant_type", "refresh_token"), ("refresh_token", refresh.as_str())];
        let rotated = expect_token(post_assertion(first, "/token", &once, &form).await).await;
        refresh = rotated["refresh_token"].as_str().expect("rotated").to_string();
        let form = [("grant_type", "refresh_token"), ("refresh_token", refresh.as_str())];
        expect_oauth_error(post_assertion(second, "/token", &once, &form).await, 401, "invalid_client").await;
    }
}
