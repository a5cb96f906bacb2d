//! DPoP (RFC 9449): proofs at /token, /par and /userinfo, tokens bound with `cnf.jkt`, a public
//! client's refresh tokens bound to its key, codes bound with `dpop_jkt`, per-client
//! `dpop_bound_access_tokens`, server nonces, and a nonce and a replay across two instances.
//! Proofs are made here with josekit, thumbprints computed here from the RFC 7638 rule.

use std::collections::BTreeMap;

use base64::Engine;
use josekit::jwk::Jwk;
use josekit::jws::{JwsHeader, JwsSigner};
use josekit::jwt::JwtPayload;
use serde_json::{Map, Value, json};
use sha2::Digest;

use super::{SERVICE, expect_oauth_error, introspect};
use crate::common::*;
use crate::on_both_backends;

mod resources;

on_both_backends!(
    a_code_flow_binds_access_and_refresh_tokens_to_the_key,
    bad_proofs_are_refused_at_the_token_endpoint,
    every_advertised_algorithm_is_accepted,
    dpop_jkt_binds_the_code_to_a_key,
    a_proof_at_par_binds_the_code,
    a_dpop_bound_client_must_send_a_proof,
    nonces_are_required_when_switched_on,
    a_registered_client_may_ask_for_dpop_bound_tokens,
    a_token_exchange_with_a_proof_issues_a_bound_token,
);

fn b64(bytes: impl AsRef<[u8]>) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A client's DPoP key: its signer and public JWK.
struct Key {
    signer: Box<dyn JwsSigner>,
    public: Jwk,
}

impl Key {
    fn es256() -> Key {
        let pair = josekit::jws::ES256.generate_key_pair().expect("key pair");
        let signer = josekit::jws::ES256.signer_from_jwk(&pair.to_jwk_private_key()).expect("signer");
        Key { signer: Box::new(signer), public: pair.to_jwk_public_key() }
    }

    fn of(alg: &str) -> Key {
        use josekit::jws::{EdDSA, PS256, RS256};
        match alg {
            "ES256" => Key::es256(),
            "EdDSA" => {
                let pair = EdDSA.generate_key_pair(josekit::jwk::alg::ed::EdCurve::Ed25519).expect("key pair");
                let signer = EdDSA.signer_from_jwk(&pair.to_jwk_private_key()).expect("signer");
                Key { signer: Box::new(signer), public: pair.to_jwk_public_key() }
            }
            "RS256" => {
                let pair = RS256.generate_key_pair(2048).expect("key pair");
                let signer = RS256.signer_from_jwk(&pair.to_jwk_private_key()).expect("signer");
                Key { signer: Box::new(signer), public: pair.to_jwk_public_key() }
            }
            _ => {
                let pair = PS256.generate_key_pair(2048).expect("key pair");
                let signer = PS256.signer_from_jwk(&pair.to_jwk_private_key()).expect("signer");
                Key { signer: Box::new(signer), public: pair.to_jwk_public_key() }
            }
        }
    }

    /// RFC 7638 thumbprint, computed independently of the server.
    fn jkt(&self) -> String {
        let members: &[&str] = match self.public.key_type() {
            "EC" => &["crv", "kty", "x", "y"],
            "RSA" => &["e", "kty", "n"],
            _ => &["crv", "kty", "x"],
        };
        let canonical: BTreeMap<&str, &Value> =
            members.iter().map(|m| (*m, self.public.parameter(m).expect("member"))).collect();
        b64(sha2::Sha256::digest(serde_json::to_string(&canonical).expect("json")))
    }

    fn header(&self) -> Map<String, Value> {
        let mut header = Map::new();
        header.insert("typ".into(), json!("dpop+jwt"));
        header.insert("jwk".into(), Value::Object(self.public.as_ref().clone()));
        header
    }

    /// A compact JWS made by hand (josekit would refuse some of the bad headers made here).
    fn sign(&self, mut header: Map<String, Value>, claims: Map<String, Value>) -> String {
        header.entry("alg").or_insert(json!(self.signer.algorithm().name()));
        let input = format!("{}.{}", b64(Value::Object(header).to_string()), b64(Value::Object(claims).to_string()));
        let signature = self.signer.sign(input.as_bytes()).expect("sign");
        format!("{input}.{}", b64(signature))
    }

    /// A good proof for `method` and the issuer's `path`.
    fn proof(&self, server: &TestServer, method: &str, path: &str) -> String {
        self.sign(self.header(), claims(server, method, path))
    }

    /// A good proof for a resource request with `token`.
    fn proof_for(&self, server: &TestServer, method: &str, path: &str, token: &str) -> String {
        let mut claims = claims(server, method, path);
        claims.insert("ath".into(), json!(b64(sha2::Sha256::digest(token.as_bytes()))));
        self.sign(self.header(), claims)
    }
}

/// `jti`, `htm`, `htu` = issuer + path, `iat` = the server's now.
fn claims(server: &TestServer, method: &str, path: &str) -> Map<String, Value> {
    let mut claims = Map::new();
    claims.insert("jti".into(), json!(oxidp::crypto::random_token(12)));
    claims.insert("htm".into(), json!(method));
    claims.insert("htu".into(), json!(format!("{}{path}", server.state.config.issuer)));
    claims.insert("iat".into(), json!(server.clock_now()));
    claims
}

/// POSTs `form` to `path` as `client` with the given `DPoP` headers.
async fn post_dpop(
    server: &TestServer,
    path: &str,
    client: &TestClient,
    form: &[(&str, &str)],
    proofs: &[&str],
) -> reqwest::Response {
    let mut form: Vec<(&str, &str)> = form.to_vec();
    let mut request = reqwest::Client::new().post(server.url(path));
    match &client.secret {
        Some(secret) => request = request.basic_auth(&client.id, Some(secret)),
        None => form.push(("client_id", &client.id)),
    }
    for proof in proofs {
        request = request.header("DPoP", *proof);
    }
    request.form(&form).send().await.expect("POST")
}

const CLIENT_CREDENTIALS: [(&str, &str); 1] = [("grant_type", "client_credentials")];

/// A successful DPoP token response: `token_type` DPoP and `cnf.jkt` of `key` in the token.
async fn expect_dpop_token(response: reqwest::Response, key: &Key) -> Value {
    let text = response.text().await.expect("body");
    let body: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
    assert_eq!(body["token_type"], "DPoP", "{body}");
    let access = body["access_token"].as_str().expect("access_token");
    let payload = access.split('.').nth(1).expect("JWT");
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).expect("base64");
    let claims: Value = serde_json::from_slice(&payload).expect("claims");
    assert_eq!(claims["cnf"]["jkt"], key.jkt(), "{claims}");
    body
}

async fn redeem_dpop(
    server: &TestServer,
    client: &TestClient,
    code: &str,
    pkce: &Pkce,
    proof: Option<&str>,
) -> reqwest::Response {
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT),
        ("code_verifier", pkce.verifier.as_str()),
    ];
    post_dpop(server, "/token", client, &form, proof.as_slice()).await
}

async fn refresh_dpop(server: &TestServer, client: &TestClient, token: &str, proof: Option<&str>) -> reqwest::Response {
    let form = [("grant_type", "refresh_token"), ("refresh_token", token)];
    post_dpop(server, "/token", client, &form, proof.as_slice()).await
}

async fn userinfo(server: &TestServer, authorization: &str, proofs: &[&str]) -> reqwest::Response {
    let mut request = reqwest::Client::new().get(server.url("/userinfo")).header("Authorization", authorization);
    for proof in proofs {
        request = request.header("DPoP", *proof);
    }
    request.send().await.expect("userinfo")
}

/// A 401 with a `DPoP` challenge naming `error` and the algorithms.
async fn expect_dpop_challenge(response: reqwest::Response, error: &str) {
    let status = response.status().as_u16();
    let challenge = response.headers().get("www-authenticate").map(|v| v.to_str().expect("ascii").to_string());
    let text = response.text().await.expect("body");
    assert_eq!(status, 401, "{text}");
    let challenge = challenge.unwrap_or_else(|| panic!("no WWW-Authenticate: {text}"));
    assert!(challenge.starts_with("DPoP "), "{challenge}");
    assert!(challenge.contains(&format!("error=\"{error}\"")), "{challenge}");
    assert!(challenge.contains("algs=\"ES256 EdDSA RS256 PS256\""), "{challenge}");
    let body: Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(body["error"], error, "{body}");
}

async fn public_client_with_alice(server: &TestServer) -> TestClient {
    server.user("alice@example.com", PASSWORD).await;
    server.client(&["--name", "SPA", "--public", "--redirect-uri", REDIRECT]).await
}

async fn a_code_flow_binds_access_and_refresh_tokens_to_the_key(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = public_client_with_alice(&server).await;
    let (key, other) = (Key::es256(), Key::es256());
    let (code, pkce) = obtain_code(&server, &Browser::new(), &client, &[]).await;
    let proof = key.proof(&server, "POST", "/token");
    let tokens = expect_dpop_token(redeem_dpop(&server, &client, &code, &pkce, Some(&proof)).await, &key).await;
    let access = tokens["access_token"].as_str().expect("access").to_string();
    let refresh = tokens["refresh_token"].as_str().expect("refresh").to_string();

    // Introspection reports the binding; the resource server checks the proof.
    let answer = introspect(&server, &client, &access).await;
    assert_eq!(answer["active"], true);
    assert_eq!(answer["token_type"], "DPoP");
    assert_eq!(answer["cnf"]["jkt"], key.jkt());

    // The public client's refresh token needs a proof of the same key; refusals keep it usable.
    let wrong = other.proof(&server, "POST", "/token");
    expect_oauth_error(refresh_dpop(&server, &client, &refresh, Some(&wrong)).await, 400, "invalid_grant").await;
    expect_oauth_error(refresh_dpop(&server, &client, &refresh, None).await, 400, "invalid_grant").await;
    let proof = key.proof(&server, "POST", "/token");
    let rotated = expect_dpop_token(refresh_dpop(&server, &client, &refresh, Some(&proof)).await, &key).await;
    assert!(rotated["refresh_token"].is_string());

    // A confidential client's refresh tokens are not bound (RFC 9449 §5): another key refreshes.
    let web = server.client(&["--name", "Web", "--redirect-uri", REDIRECT]).await;
    let (code, pkce) = obtain_code(&server, &Browser::new(), &web, &[]).await;
    let proof = key.proof(&server, "POST", "/token");
    let tokens = expect_dpop_token(redeem_dpop(&server, &web, &code, &pkce, Some(&proof)).await, &key).await;
    let refresh = tokens["refresh_token"].as_str().expect("refresh");
    let proof = other.proof(&server, "POST", "/token");
    expect_dpop_token(refresh_dpop(&server, &web, refresh, Some(&proof)).await, &other).await;
}

async fn bad_proofs_are_refused_at_the_token_endpoint(backend: Backend) {
    let server = TestServer::start(backend).await;
    let service = server.client(SERVICE).await;
    let (key, other) = (Key::es256(), Key::es256());
    let now = server.clock_now();
    // Each refusal for its own reason (the description names it).
    let refused = |proof: String, reason: &'static str| {
        let (server, service) = (&server, &service);
        async move {
            let response = post_dpop(server, "/token", service, &CLIENT_CREDENTIALS, &[&proof]).await;
            let body = expect_oauth_error(response, 400, "invalid_dpop_proof").await;
            let description = body["error_description"].as_str().unwrap_or_default();
            assert!(description.contains(reason), "expected '{reason}', got '{description}'");
        }
    };
    let with_claim = |name: &str, value: Value| {
        let mut claims = claims(&server, "POST", "/token");
        claims.insert(name.into(), value);
        key.sign(key.header(), claims)
    };
    let with_header = |name: &str, value: Value| {
        let mut header = key.header();
        header.insert(name.into(), value);
        key.sign(header, claims(&server, "POST", "/token"))
    };

    refused(with_header("typ", json!("JWT")), "typ must be dpop+jwt").await;
    let mut no_jwk = key.header();
    no_jwk.remove("jwk");
    refused(key.sign(no_jwk, claims(&server, "POST", "/token")), "no jwk header").await;
    let mut private = key.public.as_ref().clone();
    private.insert("d".into(), json!(b64([7u8; 32])));
    refused(with_header("jwk", Value::Object(private)), "private key material").await;
    // Signed by another key than the one in the header.
    refused(other.sign(key.header(), claims(&server, "POST", "/token")), "signature does not verify").await;
    // alg none: an unsigned token.
    let unsigned = {
        let mut header = key.header();
        header.insert("alg".into(), json!("none"));
        let claims = Value::Object(claims(&server, "POST", "/token"));
        format!("{}.{}.", b64(Value::Object(header).to_string()), b64(claims.to_string()))
    };
    refused(unsigned, "alg must be one of").await;
    // HS256 with the public key's bytes as the secret.
    let hmac = josekit::jws::HS256.signer_from_bytes(key.public.to_string().as_bytes()).expect("hmac");
    let hs256 = josekit::jwt::encode_with_signer(
        &JwtPayload::from_map(claims(&server, "POST", "/token")).expect("payload"),
        &JwsHeader::from_map(key.header()).expect("header"),
        &hmac,
    )
    .expect("sign");
    refused(hs256, "alg must be one of").await;
    refused(key.proof(&server, "POST", "/par"), "htu must be").await;
    refused(with_claim("htu", json!(server.url("/token").replace("127.0.0.1", "localhost"))), "htu must be").await;
    refused(key.proof(&server, "GET", "/token"), "htm must be POST").await;
    refused(with_claim("iat", json!(now - 61)), "iat must be within 60 seconds").await;
    refused(with_claim("iat", json!(now + 61)), "iat must be within 60 seconds").await;
    refused(with_claim("jti", json!("")), "needs a jti").await;
    refused("not.a.jwt".into(), "not a JWS").await;

    // Two DPoP headers.
    let (a, b) = (key.proof(&server, "POST", "/token"), key.proof(&server, "POST", "/token"));
    let response = post_dpop(&server, "/token", &service, &CLIENT_CREDENTIALS, &[&a, &b]).await;
    expect_oauth_error(response, 400, "invalid_dpop_proof").await;

    // A good proof works once: its replay is refused.
    let good = key.proof(&server, "POST", "/token");
    let response = post_dpop(&server, "/token", &service, &CLIENT_CREDENTIALS, &[&good]).await;
    expect_dpop_token(response, &key).await;
    refused(good, "already used").await;
    // Within the leeway either side is fine.
    let response =
        post_dpop(&server, "/token", &service, &CLIENT_CREDENTIALS, &[&with_claim("iat", json!(now - 59))]).await;
    expect_dpop_token(response, &key).await;
}

async fn every_advertised_algorithm_is_accepted(backend: Backend) {
    let server = TestServer::start(backend).await;
    let service = server.client(SERVICE).await;
    let discovery = json(reqwest::get(server.url("/.well-known/openid-configuration")).await.expect("discovery")).await;
    assert_eq!(discovery["dpop_signing_alg_values_supported"], json!(["ES256", "EdDSA", "RS256", "PS256"]));
    for alg in ["ES256", "EdDSA", "RS256", "PS256"] {
        let key = Key::of(alg);
        let response =
            post_dpop(&server, "/token", &service, &CLIENT_CREDENTIALS, &[&key.proof(&server, "POST", "/token")]).await;
        expect_dpop_token(response, &key).await;
    }
    // Without a proof, a client not registered for DPoP gets a Bearer token.
    let response = post_dpop(&server, "/token", &service, &CLIENT_CREDENTIALS, &[]).await;
    assert_eq!(json(response).await["token_type"], "Bearer");
}

async fn dpop_jkt_binds_the_code_to_a_key(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = public_client_with_alice(&server).await;
    let (key, other) = (Key::es256(), Key::es256());
    let jkt = key.jkt();
    let browser = Browser::new();

    let (code, pkce) = obtain_code(&server, &browser, &client, &[("dpop_jkt", &jkt)]).await;
    let proof = other.proof(&server, "POST", "/token");
    expect_oauth_error(redeem_dpop(&server, &client, &code, &pkce, Some(&proof)).await, 400, "invalid_grant").await;

    let (code, pkce) = obtain_code(&server, &browser, &client, &[("dpop_jkt", &jkt)]).await;
    expect_oauth_error(redeem_dpop(&server, &client, &code, &pkce, None).await, 400, "invalid_grant").await;

    let (code, pkce) = obtain_code(&server, &browser, &client, &[("dpop_jkt", &jkt)]).await;
    let proof = key.proof(&server, "POST", "/token");
    expect_dpop_token(redeem_dpop(&server, &client, &code, &pkce, Some(&proof)).await, &key).await;

    // A malformed dpop_jkt is the client's error, reported at its redirect URI.
    let url = authorize_url(&server, &client, &pkce, &[("dpop_jkt", "not-a-thumbprint")]);
    let redirect = location(&browser.get(&url).await);
    assert_eq!(query_of(&redirect).get("error").map(String::as_str), Some("invalid_request"), "{redirect}");
}

async fn a_proof_at_par_binds_the_code(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = public_client_with_alice(&server).await;
    let (key, other) = (Key::es256(), Key::es256());
    let push = |proof: String, extra: Vec<(&'static str, String)>| {
        let (server, client) = (&server, &client);
        async move {
            let pkce = pkce();
            let mut form = vec![
                ("response_type", "code".to_string()),
                ("redirect_uri", REDIRECT.to_string()),
                ("code_challenge", pkce.challenge.clone()),
                ("code_challenge_method", "S256".to_string()),
                ("scope", "openid".to_string()),
            ];
            form.extend(extra);
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            (post_dpop(server, "/par", client, &form, &[&proof]).await, pkce)
        }
    };
    // A bad proof at /par is refused, and so is a dpop_jkt naming another key than the proof's.
    let (response, _) = push(key.proof(&server, "POST", "/token"), vec![]).await;
    expect_oauth_error(response, 400, "invalid_dpop_proof").await;
    let (response, _) = push(key.proof(&server, "POST", "/par"), vec![("dpop_jkt", other.jkt())]).await;
    expect_oauth_error(response, 400, "invalid_dpop_proof").await;

    let (response, pkce) = push(key.proof(&server, "POST", "/par"), vec![]).await;
    assert_eq!(response.status(), 201);
    let request_uri = json(response).await["request_uri"].as_str().expect("request_uri").to_string();
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    query.append_pair("client_id", &client.id).append_pair("request_uri", &request_uri);
    let url = server.url(&format!("/authorize?{}", query.finish()));
    let redirect = run_browser_flow(&server, &Browser::new(), &url, "alice@example.com", PASSWORD).await;
    let code = query_of(&redirect).get("code").cloned().expect("code");
    let proof = other.proof(&server, "POST", "/token");
    expect_oauth_error(redeem_dpop(&server, &client, &code, &pkce, Some(&proof)).await, 400, "invalid_grant").await;
}

async fn a_dpop_bound_client_must_send_a_proof(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut flags = SERVICE.to_vec();
    flags.push("--dpop-bound-access-tokens");
    let service = server.client(&flags).await;
    let response = post_dpop(&server, "/token", &service, &CLIENT_CREDENTIALS, &[]).await;
    expect_oauth_error(response, 400, "invalid_dpop_proof").await;
    let key = Key::es256();
    let response =
        post_dpop(&server, "/token", &service, &CLIENT_CREDENTIALS, &[&key.proof(&server, "POST", "/token")]).await;
    expect_dpop_token(response, &key).await;
    // The administrators' view shows the setting.
    let admin = admin_token(&server).await;
    let view = reqwest::Client::new()
        .get(server.url(&format!("/api/v1/admin/clients/{}", service.id)))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("admin view");
    assert_eq!(json(view).await["dpop_bound_access_tokens"], true);
    // An administrator lifts the requirement: Bearer tokens again.
    let patched = reqwest::Client::new()
        .patch(server.url(&format!("/api/v1/admin/clients/{}", service.id)))
        .bearer_auth(&admin)
        .json(&json!({ "dpop_bound_access_tokens": false }))
        .send()
        .await
        .expect("admin patch");
    assert_eq!(json(patched).await["dpop_bound_access_tokens"], false);
    let response = post_dpop(&server, "/token", &service, &CLIENT_CREDENTIALS, &[]).await;
    assert_eq!(json(response).await["token_type"], "Bearer");
}

async fn nonces_are_required_when_switched_on(backend: Backend) {
    let server = TestServer::start_with(backend, |config| config.dpop_nonces = oxidp::config::Switch::On).await;
    let service = server.client(SERVICE).await;
    let key = Key::es256();
    let nonce = fetch_nonce(&server, &service, &key).await;
    let response =
        post_dpop(&server, "/token", &service, &CLIENT_CREDENTIALS, &[&nonce_proof(&server, &key, &nonce)]).await;
    // A success hands out the current nonce as well.
    assert_eq!(response.headers().get("dpop-nonce").and_then(|v| v.to_str().ok()), Some(nonce.as_str()));
    expect_dpop_token(response, &key).await;

    // Ten minutes later the nonce is stale: a new one comes with the refusal.
    server.clock.advance(601);
    let response =
        post_dpop(&server, "/token", &service, &CLIENT_CREDENTIALS, &[&nonce_proof(&server, &key, &nonce)]).await;
    let fresh = response.headers().get("dpop-nonce").map(|v| v.to_str().expect("ascii").to_string());
    expect_oauth_error(response, 400, "use_dpop_nonce").await;
    assert_ne!(fresh.as_deref(), Some(nonce.as_str()));
    let forged = format!("{}.AAAA", nonce.split('.').next().expect("window"));
    let response =
        post_dpop(&server, "/token", &service, &CLIENT_CREDENTIALS, &[&nonce_proof(&server, &key, &forged)]).await;
    expect_oauth_error(response, 400, "use_dpop_nonce").await;

    // At /userinfo: 401 with a DPoP challenge and the nonce, then the same request with it.
    let client = public_client_with_alice(&server).await;
    let nonce = fresh.expect("DPoP-Nonce header");
    let (code, pkce) = obtain_code(&server, &Browser::new(), &client, &[]).await;
    let tokens = redeem_dpop(&server, &client, &code, &pkce, Some(&nonce_proof(&server, &key, &nonce))).await;
    let tokens = expect_dpop_token(tokens, &key).await;
    let access = tokens["access_token"].as_str().expect("access");
    let scheme = format!("DPoP {access}");
    let response = userinfo(&server, &scheme, &[&key.proof_for(&server, "GET", "/userinfo", access)]).await;
    assert_eq!(response.headers().get("dpop-nonce").and_then(|v| v.to_str().ok()), Some(nonce.as_str()));
    expect_dpop_challenge(response, "use_dpop_nonce").await;
    let mut claims = claims(&server, "GET", "/userinfo");
    claims.insert("ath".into(), json!(b64(sha2::Sha256::digest(access.as_bytes()))));
    claims.insert("nonce".into(), json!(nonce));
    assert_eq!(userinfo(&server, &scheme, &[&key.sign(key.header(), claims)]).await.status(), 200);
}

async fn a_registered_client_may_ask_for_dpop_bound_tokens(backend: Backend) {
    use oxidp::store::ClientStore;
    let server = TestServer::start_with(backend, |config| {
        config.dynamic_registration = oxidp::config::DynamicRegistration::Open;
    })
    .await;
    let metadata = json!({
        "client_name": "Native",
        "redirect_uris": [REDIRECT],
        "token_endpoint_auth_method": "none",
        "dpop_bound_access_tokens": true,
    });
    let response = reqwest::Client::new().post(server.url("/register")).json(&metadata).send().await.expect("register");
    assert_eq!(response.status(), 201);
    let registered = json(response).await;
    assert_eq!(registered["dpop_bound_access_tokens"], true, "{registered}");
    let id = registered["client_id"].as_str().expect("client_id");
    let client = server.state.db.client_by_id(id).await.expect("store").expect("client");
    assert!(client.dpop_bound_access_tokens);
}

/// A refused proof without a nonce: 400 `use_dpop_nonce` with the nonce in `DPoP-Nonce`.
async fn fetch_nonce(server: &TestServer, client: &TestClient, key: &Key) -> String {
    let response =
        post_dpop(server, "/token", client, &CLIENT_CREDENTIALS, &[&key.proof(server, "POST", "/token")]).await;
    let nonce = response.headers().get("dpop-nonce").map(|v| v.to_str().expect("ascii").to_string());
    expect_oauth_error(response, 400, "use_dpop_nonce").await;
    nonce.expect("DPoP-Nonce header")
}

fn nonce_proof(server: &TestServer, key: &Key, nonce: &str) -> String {
    let mut claims = claims(server, "POST", "/token");
    claims.insert("nonce".into(), json!(nonce));
    key.sign(key.header(), claims)
}

/// Two instances: a nonce from A is accepted at B, and a proof used at A is refused at B.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nonces_and_replays_hold_across_instances() {
    assert!(std::env::var("TEST_REDIS_URL").is_ok(), "TEST_REDIS_URL is not set: run the suite with scripts/test");
    let a = TestServer::start_with(Backend::Postgres, |config| config.dpop_nonces = oxidp::config::Switch::On).await;
    let b = a.second_instance().await;
    let service = a.client(SERVICE).await;
    let key = Key::es256();
    let nonce = fetch_nonce(&a, &service, &key).await;
    let proof = nonce_proof(&b, &key, &nonce);
    expect_dpop_token(post_dpop(&b, "/token", &service, &CLIENT_CREDENTIALS, &[&proof]).await, &key).await;

    let proof = nonce_proof(&a, &key, &nonce);
    expect_dpop_token(post_dpop(&a, "/token", &service, &CLIENT_CREDENTIALS, &[&proof]).await, &key).await;
    let replay = post_dpop(&b, "/token", &service, &CLIENT_CREDENTIALS, &[&proof]).await;
    expect_oauth_error(replay, 400, "invalid_dpop_proof").await;

    // htu is the issuer's URL, never the address B was reached at.
    assert_ne!(b.base, b.state.config.issuer);
    let mut claims = claims(&b, "POST", "/token");
    claims.insert("htu".into(), json!(b.url("/token")));
    claims.insert("nonce".into(), json!(nonce));
    let by_host = key.sign(key.header(), claims);
    let response = post_dpop(&b, "/token", &service, &CLIENT_CREDENTIALS, &[&by_host]).await;
    expect_oauth_error(response, 400, "invalid_dpop_proof").await;
}

async fn a_token_exchange_with_a_proof_issues_a_bound_token(backend: Backend) {
    const GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
    let server = TestServer::start(backend).await;
    server.user("alice@example.com", PASSWORD).await;
    let grants = format!("authorization_code,refresh_token,{GRANT}");
    let gateway = server.client(&["--name", "Gateway", "--redirect-uri", REDIRECT, "--grant-types", &grants]).await;
    let orders = server.client(&["--name", "Orders", "--resource-server", "--grant-types", "client_credentials"]).await;
    let admin = admin_token(&server).await;
    let policy = reqwest::Client::new()
        .put(server.url(&format!("/api/v1/admin/clients/{}/token-exchange", gateway.id)))
        .bearer_auth(&admin)
        .json(&json!({ "audiences": [orders.id] }))
        .send()
        .await
        .expect("policy");
    assert_eq!(policy.status(), 200);
    let (code, pkce) = obtain_code(&server, &Browser::new(), &gateway, &[]).await;
    let subject = json(redeem_dpop(&server, &gateway, &code, &pkce, None).await).await;
    let subject = subject["access_token"].as_str().expect("access");
    let form = [
        ("grant_type", GRANT),
        ("subject_token", subject),
        ("subject_token_type", "urn:ietf:params:oauth:token-type:access_token"),
        ("audience", orders.id.as_str()),
    ];
    let key = Key::es256();
    let response = post_dpop(&server, "/token", &gateway, &form, &[&key.proof(&server, "POST", "/token")]).await;
    let exchanged = expect_dpop_token(response, &key).await;
    let answer = introspect(&server, &orders, exchanged["access_token"].as_str().expect("access")).await;
    assert_eq!(answer["cnf"]["jkt"], key.jkt());

    // A DPoP-bound subject token: exchanged only with a proof of its own key, and stays bound.
    let (code, pkce) = obtain_code(&server, &Browser::new(), &gateway, &[]).await;
    let holder = Key::es256();
    let proof = holder.proof(&server, "POST", "/token");
    let bound = expect_dpop_token(redeem_dpop(&server, &gateway, &code, &pkce, Some(&proof)).await, &holder).await;
    let bound = bound["access_token"].as_str().expect("access");
    let form = [form[0], ("subject_token", bound), form[2], form[3]];
    for proofs in [vec![], vec![key.proof(&server, "POST", "/token")]] {
        let proofs: Vec<&str> = proofs.iter().map(String::as_str).collect();
        let refused = post_dpop(&server, "/token", &gateway, &form, &proofs).await;
        assert_eq!(refused.status(), 400, "without the holder's key");
        assert_eq!(json(refused).await["error"], "invalid_grant");
    }
    let response = post_dpop(&server, "/token", &gateway, &form, &[&holder.proof(&server, "POST", "/token")]).await;
    let exchanged = expect_dpop_token(response, &holder).await;
    let answer = introspect(&server, &orders, exchanged["access_token"].as_str().expect("access")).await;
    assert_eq!(answer["cnf"]["jkt"], holder.jkt(), "still bound to the holder's key");
}
