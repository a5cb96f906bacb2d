//! JWT client authentication (RFC 7523 §2.2, OIDC Core §9; issue #14 item 4): `private_key_jwt`
//! with registered keys (inline or at a `jwks_uri`) and `client_secret_jwt`, at /token,
//! /introspect and /revoke; every rule on the assertion has a refused case.

use josekit::jws::{HS256, JwsHeader, JwsSigner};
use josekit::jwt::{self, JwtPayload};
use poem::{Response, Route, get, handler};
use serde_json::{Value, json};

use super::{expect_oauth_error, expect_token, key_pair};
use crate::common::*;
use crate::on_both_backends;

on_both_backends!(
    private_key_jwt_authenticates_and_every_claim_rule_refuses,
    client_secret_jwt_secret_is_only_for_assertions,
    keys_at_a_jwks_uri_are_fetched_under_the_outgoing_rule,
    a_slow_or_unreachable_jwks_uri_refuses_the_client_in_bounded_time,
);

const TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

struct Claims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: Value,
    exp: Option<i64>,
    jti: Option<String>,
}

fn sign(signer: &dyn JwsSigner, kid: Option<&str>, claims: &Claims<'_>) -> String {
    let mut header = JwsHeader::new();
    header.set_token_type("JWT");
    if let Some(kid) = kid {
        header.set_key_id(kid);
    }
    let mut payload = JwtPayload::new();
    payload.set_claim("iss", Some(json!(claims.iss))).expect("iss");
    payload.set_claim("sub", Some(json!(claims.sub))).expect("sub");
    payload.set_claim("aud", Some(claims.aud.clone())).expect("aud");
    if let Some(exp) = claims.exp {
        payload.set_claim("exp", Some(json!(exp))).expect("exp");
    }
    if let Some(jti) = &claims.jti {
        payload.set_claim("jti", Some(json!(jti))).expect("jti");
    }
    jwt::encode_with_signer(&payload, &header, signer).expect("sign")
}

fn fresh_jti() -> Option<String> {
    Some(uuid::Uuid::new_v4().to_string())
}

async fn post_assertion(server: &TestServer, path: &str, assertion: &str, extra: &[(&str, &str)]) -> reqwest::Response {
    let mut form = vec![("client_assertion_type", TYPE), ("client_assertion", assertion)];
    form.extend_from_slice(extra);
    reqwest::Client::new().post(server.url(path)).form(&form).send().await.expect("POST")
}

async fn client_credentials(server: &TestServer, assertion: &str) -> reqwest::Response {
    post_assertion(server, "/token", assertion, &[("grant_type", "client_credentials")]).await
}

async fn private_key_jwt_authenticates_and_every_claim_rule_refuses(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (signer, public) = key_pair("k1");
    let jwks = json!({ "keys": [Value::Object(public.as_ref().clone())] }).to_string();
    let client = server
        .client(&[
            "--name",
            "Signer",
            "--grant-types",
            "client_credentials",
            "--scopes",
            "api",
            "--token-endpoint-auth-method",
            "private_key_jwt",
            "--jwks",
            &jwks,
        ])
        .await;
    assert!(client.secret.is_none(), "a private_key_jwt client gets no secret");
    let discovery = json(reqwest::get(server.url("/.well-known/openid-configuration")).await.expect("discovery")).await;
    for method in ["private_key_jwt", "client_secret_jwt"] {
        let listed = discovery["token_endpoint_auth_methods_supported"].as_array().expect("methods");
        assert!(listed.iter().any(|m| m == method), "{method} in {discovery}");
    }
    let algs = discovery["token_endpoint_auth_signing_alg_values_supported"].as_array().expect("algs");
    assert!(algs.iter().any(|a| a == "ES256") && !algs.iter().any(|a| a == "none"), "{algs:?}");
    let id = client.id.as_str();
    let now = server.clock_now();
    let token_url = json!(server.url("/token"));
    let good = |aud: Value| Claims { iss: id, sub: id, aud, exp: Some(now + 300), jti: fresh_jti() };

    // aud may be the token endpoint (authlib's choice) or the issuer; client_id is optional.
    let assertion = sign(signer.as_ref(), Some("k1"), &good(token_url.clone()));
    let tokens = expect_token(client_credentials(&server, &assertion).await).await;
    assert!(tokens["access_token"].is_string());
    let by_issuer = sign(signer.as_ref(), Some("k1"), &good(json!([server.base.clone()])));
    let with_id =
        post_assertion(&server, "/token", &by_issuer, &[("grant_type", "client_credentials"), ("client_id", id)]).await;
    expect_token(with_id).await;
    // At /introspect with aud = its own URL.
    let at_introspect = sign(signer.as_ref(), None, &good(json!(server.url("/introspect"))));
    let token = tokens["access_token"].as_str().expect("token");
    let answer = post_assertion(&server, "/introspect", &at_introspect, &[("token", token)]).await;
    assert_eq!(answer.status(), 200);
    assert_eq!(json(answer).await["active"], true);

    // A replayed assertion is refused (its jti is spent until exp).
    expect_oauth_error(client_credentials(&server, &assertion).await, 401, "invalid_client").await;

    let (other_signer, _) = key_pair("k1");
    let cases: Vec<(&str, String)> = vec![
        ("another key", sign(other_signer.as_ref(), Some("k1"), &good(token_url.clone()))),
        ("unknown kid", sign(signer.as_ref(), Some("k9"), &good(token_url.clone()))),
        ("wrong aud", sign(signer.as_ref(), None, &good(json!("https://elsewhere.example/token")))),
        ("no exp", sign(signer.as_ref(), None, &Claims { exp: None, ..good(token_url.clone()) })),
        ("expired", sign(signer.as_ref(), None, &Claims { exp: Some(now - 120), ..good(token_url.clone()) })),
        ("over an hour", sign(signer.as_ref(), None, &Claims { exp: Some(now + 7200), ..good(token_url.clone()) })),
        ("no jti", sign(signer.as_ref(), None, &Claims { jti: None, ..good(token_url.clone()) })),
        ("iss is not sub", sign(signer.as_ref(), None, &Claims { iss: "someone", ..good(token_url.clone()) })),
        ("alg none", {
            let unsigned = sign(signer.as_ref(), None, &good(token_url.clone()));
            let payload = unsigned.split('.').nth(1).expect("payload").to_string();
            format!("eyJhbGciOiJub25lIn0.{payload}.")
        }),
        ("HMAC with the public key", {
            let public_bytes = serde_json::to_vec(&public).expect("jwk bytes");
            let forged = HS256.signer_from_bytes(&public_bytes).expect("hmac");
            sign(&forged, Some("k1"), &good(token_url.clone()))
        }),
    ];
    for (what, assertion) in cases {
        let answer =
            post_assertion(&server, "/token", &assertion, &[("grant_type", "client_credentials"), ("client_id", id)])
                .await;
        let body = expect_oauth_error(answer, 401, "invalid_client").await;
        assert!(body.get("access_token").is_none(), "{what}");
    }
    // One method at a time; the assertion type must be the JWT bearer one.
    let assertion = sign(signer.as_ref(), None, &good(token_url.clone()));
    let both =
        post_assertion(&server, "/token", &assertion, &[("grant_type", "client_credentials"), ("client_secret", "x")])
            .await;
    expect_oauth_error(both, 400, "invalid_request").await;
    let wrong_type = reqwest::Client::new()
        .post(server.url("/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_assertion_type", "urn:other"),
            ("client_assertion", &assertion),
        ])
        .send()
        .await
        .expect("POST");
    expect_oauth_error(wrong_type, 401, "invalid_client").await;
    // Nor can the client fall back to a secret it does not have.
    let plain = reqwest::Client::new()
        .post(server.url("/token"))
        .basic_auth(id, Some("guess"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("POST");
    expect_oauth_error(plain, 401, "invalid_client").await;
}

async fn client_secret_jwt_secret_is_only_for_assertions(backend: Backend) {
    let server = TestServer::start_with(backend, |config| {
        config.dynamic_registration = oxidp::config::DynamicRegistration::Open;
    })
    .await;
    let registered = reqwest::Client::new()
        .post(server.url("/register"))
        .json(&json!({
            "redirect_uris": [REDIRECT],
            "grant_types": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_method": "client_secret_jwt",
            "token_endpoint_auth_signing_alg": "HS256",
        }))
        .send()
        .await
        .expect("register");
    assert_eq!(registered.status(), 201);
    let registered = json(registered).await;
    assert_eq!(registered["token_endpoint_auth_method"], "client_secret_jwt");
    let id = registered["client_id"].as_str().expect("id");
    let secret = registered["client_secret"].as_str().expect("a client_secret_jwt client gets a secret");
    let signer = HS256.signer_from_bytes(secret.as_bytes()).expect("hmac");
    let now = server.clock_now();
    let claims = Claims { iss: id, sub: id, aud: json!(server.url("/token")), exp: Some(now + 300), jti: fresh_jti() };
    let assertion = sign(&signer, None, &claims);
    // A refresh grant it has none of: the answer is about the grant, so authentication passed.
    let answer =
        post_assertion(&server, "/token", &assertion, &[("grant_type", "refresh_token"), ("refresh_token", "x")]).await;
    expect_oauth_error(answer, 400, "invalid_grant").await;
    // The secret itself, sent as is, is refused: it is kept only encrypted, for the HMAC.
    let plain = reqwest::Client::new()
        .post(server.url("/token"))
        .basic_auth(id, Some(secret))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", "x")])
        .send()
        .await
        .expect("POST");
    expect_oauth_error(plain, 401, "invalid_client").await;
    // The secret is not in the database in clear (nor as the usual keyed hash).
    let dump = crate::secrets::at_rest::full_database_dump(&server).await;
    assert!(!dump.contains(secret), "the client_secret_jwt secret is stored encrypted");
    // An algorithm other than the registered one is refused.
    let other = josekit::jws::HS512.signer_from_bytes(secret.as_bytes()).expect("hmac");
    let claims = Claims { jti: fresh_jti(), ..claims };
    let answer = post_assertion(
        &server,
        "/token",
        &sign(&other, None, &claims),
        &[("grant_type", "refresh_token"), ("refresh_token", "x")],
    )
    .await;
    expect_oauth_error(answer, 401, "invalid_client").await;
}

#[handler]
fn published_keys(req: &poem::Request) -> Response {
    let jwks = req.data::<String>().cloned().unwrap_or_default();
    Response::builder().content_type("application/json").body(jwks)
}

async fn keys_at_a_jwks_uri_are_fetched_under_the_outgoing_rule(backend: Backend) {
    let (signer, public) = key_pair("uri-key");
    let jwks = json!({ "keys": [Value::Object(public.as_ref().clone())] }).to_string();
    use poem::EndpointExt;
    let base = crate::federation::serve_mock(Route::new().at("/jwks", get(published_keys)).data(jwks)).await;
    let jwks_uri = format!("{base}/jwks");
    let metadata = json!({
        "grant_types": ["client_credentials"],
        "token_endpoint_auth_method": "private_key_jwt",
        "jwks_uri": jwks_uri,
        "scope": "api",
    });
    // Without the loopback allowance the registration is refused: the URL could never be fetched.
    let strict = TestServer::start_with(backend, |config| {
        config.dynamic_registration = oxidp::config::DynamicRegistration::Token;
    })
    .await;
    let admin = admin_token(&strict).await;
    let token = json(api_post(&strict, "/api/v1/admin/registration-tokens", Some(&admin), &json!({})).await).await;
    let token = token["token"].as_str().expect("token");
    let refused = reqwest::Client::new().post(strict.url("/register")).bearer_auth(token).json(&metadata).send().await;
    let refused = refused.expect("register");
    assert_eq!(refused.status(), 400);
    assert_eq!(json(refused).await["error"], "invalid_client_metadata");

    let server = TestServer::start_with(backend, |config| {
        config.dynamic_registration = oxidp::config::DynamicRegistration::Token;
        config.outbound_allow_loopback = true;
    })
    .await;
    let admin = admin_token(&server).await;
    let token = json(api_post(&server, "/api/v1/admin/registration-tokens", Some(&admin), &json!({})).await).await;
    let token = token["token"].as_str().expect("token");
    let registered =
        reqwest::Client::new().post(server.url("/register")).bearer_auth(token).json(&metadata).send().await;
    let registered = registered.expect("register");
    assert_eq!(registered.status(), 201);
    let registered = json(registered).await;
    assert_eq!(registered["jwks_uri"], jwks_uri.as_str());
    let id = registered["client_id"].as_str().expect("id");
    let now = server.clock_now();
    let claims = Claims { iss: id, sub: id, aud: json!(server.base.clone()), exp: Some(now + 300), jti: fresh_jti() };
    expect_token(client_credentials(&server, &sign(signer.as_ref(), Some("uri-key"), &claims)).await).await;
}

async fn a_slow_or_unreachable_jwks_uri_refuses_the_client_in_bounded_time(backend: Backend) {
    let server = TestServer::start_with(backend, |config| config.outbound_allow_loopback = true).await;
    let (signer, _) = key_pair("k1");
    let (silent, cases) = crate::federation::slow_and_unreachable();
    for (what, base, bound) in cases {
        let jwks_uri = format!("{base}/jwks");
        let flags = ["--name", what, "--grant-types", "client_credentials", "--scopes", "api"];
        let method = ["--token-endpoint-auth-method", "private_key_jwt", "--jwks-uri", &jwks_uri];
        let client = server.client(&[&flags[..], &method[..]].concat()).await;
        let id = client.id.as_str();
        let claims =
            Claims { iss: id, sub: id, aud: json!(server.base), exp: Some(server.clock_now() + 300), jti: fresh_jti() };
        let started = std::time::Instant::now();
        let answer = client_credentials(&server, &sign(signer.as_ref(), Some("k1"), &claims)).await;
        let body = expect_oauth_error(answer, 401, "invalid_client").await;
        let took = started.elapsed();
        assert!(took < bound, "{what} jwks_uri answered after {took:?}");
        assert!(body.get("access_token").is_none(), "{what}");
    }
    // The slow one was really asked (the refusal is not the outgoing-request rule's).
    silent.set_nonblocking(true).expect("nonblocking");
    assert!(silent.accept().is_ok(), "the server connected to the slow jwks_uri");
}
