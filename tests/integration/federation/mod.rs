//! Upstream login over real HTTP, no internet: a second oxidp acting as the upstream (the full
//! chain relying party → B → A → B → relying party), a mock OIDC issuer shaped like Authentik
//! (issuer with a trailing slash) that signs whatever ID token a test asks for, and a GitHub
//! look-alike. Every failure is an HTML page or an OAuth error redirect, never a 5xx.
//!
//! The OIDC upstreams, a second oxidp and the mock issuer (oidc.rs); linking to local accounts and
//! the identities API (linking.rs); GitHub (github.rs). The helpers and mock servers are here.

mod github;
mod linking;
mod oidc;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use josekit::jwk::alg::rsa::RsaKeyPair;
use oxidp::config::{Config, UpstreamConfig, UpstreamKind};
use poem::web::{Data, Form, Json};
use poem::{EndpointExt, Request, Route, get, handler, post};
use serde_json::{Map, Value, json};

use crate::common::*;

// ---------------------------------------------------------------------------------------------
// Small HTTP servers inside the tests

/// Serves `app` on 127.0.0.1 at a free port; returns its base URL.
pub async fn serve_mock(app: impl poem::Endpoint + 'static) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let addr = listener.local_addr().expect("addr");
    let acceptor = poem::listener::TcpAcceptor::from_std(listener).expect("acceptor");
    tokio::spawn(async move {
        let _ = poem::Server::new_with_acceptor(acceptor).run(app).await;
    });
    format!("http://{addr}")
}

/// A port that accepts connections and never answers: an upstream that times out.
pub fn silent_listener() -> (std::net::TcpListener, String) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    (listener, url)
}

/// Base URLs for the outgoing-request rule's failures: a silent listener (returned, to keep it
/// open and to see whether it was connected to) and a port nobody listens on, each with the
/// longest an answer may take when oxidp fetches from it (its time limit, plus slack when slow).
pub fn slow_and_unreachable() -> (std::net::TcpListener, [(&'static str, String, std::time::Duration); 2]) {
    let limit = oxidp::outbound::DEFAULT_TIMEOUT;
    let (silent, slow) = silent_listener();
    let (closed, unreachable) = silent_listener();
    drop(closed);
    (silent, [("slow", slow, limit + std::time::Duration::from_secs(3)), ("unreachable", unreachable, limit)])
}

pub fn upstream(kind: UpstreamKind, issuer: Option<&str>, client_id: &str, secret: Option<&str>) -> UpstreamConfig {
    UpstreamConfig {
        kind,
        issuer: issuer.map(str::to_string),
        client_id: client_id.into(),
        client_secret: secret.map(str::to_string),
        scopes: None,
        trust_email: None,
        trust_unverified_email: false,
        auth_url: None,
        token_url: None,
        api_url: None,
        label: None,
        timeout: Some(2),
    }
}

struct MockKey {
    kid: String,
    pair: RsaKeyPair,
}

impl MockKey {
    fn generate(kid: &str) -> MockKey {
        MockKey { kid: kid.into(), pair: RsaKeyPair::generate(2048).expect("rsa key") }
    }

    fn public_jwk(&self) -> Value {
        let mut jwk = self.pair.to_jwk_public_key();
        jwk.set_key_id(&self.kid);
        jwk.set_algorithm("RS256");
        jwk.set_key_use("sig");
        serde_json::to_value(jwk.as_ref()).expect("jwk")
    }

    fn sign(&self, claims: &Map<String, Value>) -> String {
        let mut header = josekit::jws::JwsHeader::new();
        header.set_token_type("JWT");
        header.set_key_id(&self.kid);
        let payload = josekit::jwt::JwtPayload::from_map(claims.clone()).expect("payload");
        let signer = josekit::jws::RS256.signer_from_pem(self.pair.to_pem_private_key()).expect("signer");
        josekit::jwt::encode_with_signer(&payload, &header, &signer).expect("sign")
    }
}

#[derive(Clone, Copy)]
enum SignWith {
    Published,
    /// A key that is not in the JWKS but carries the published key's `kid`: a bad signature.
    Rogue,
}

struct MockIssuerState {
    published: Vec<MockKey>,
    rogue: MockKey,
    sign_with: SignWith,
    next_claims: Option<Map<String, Value>>,
    token_endpoint: Option<String>,
    token_requests: Vec<HashMap<String, String>>,
    jwks_fetches: usize,
}

/// An OIDC issuer at `{base}/application/o/oxidp/` (Authentik's shape, trailing slash
/// included) that answers the token endpoint with the ID token the test prepared.
struct MockIssuer {
    issuer: String,
    state: Arc<Mutex<MockIssuerState>>,
}

struct MockShared {
    issuer: String,
    state: Arc<Mutex<MockIssuerState>>,
}

#[handler]
fn mock_discovery(Data(shared): Data<&Arc<MockShared>>) -> Json<Value> {
    let state = shared.state.lock().expect("lock");
    let issuer = &shared.issuer;
    let token_endpoint = state.token_endpoint.clone().unwrap_or_else(|| format!("{issuer}token/"));
    Json(json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}authorize/"),
        "token_endpoint": token_endpoint,
        "jwks_uri": format!("{issuer}jwks/"),
        "userinfo_endpoint": format!("{issuer}userinfo/"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "code_challenge_methods_supported": ["S256"],
    }))
}

#[handler]
fn mock_jwks(Data(shared): Data<&Arc<MockShared>>) -> Json<Value> {
    let mut state = shared.state.lock().expect("lock");
    state.jwks_fetches += 1;
    let keys: Vec<Value> = state.published.iter().map(MockKey::public_jwk).collect();
    Json(json!({ "keys": keys }))
}

#[handler]
fn mock_token(
    req: &Request,
    Data(shared): Data<&Arc<MockShared>>,
    Form(form): Form<HashMap<String, String>>,
) -> Json<Value> {
    let mut state = shared.state.lock().expect("lock");
    let mut recorded = form.clone();
    if let Some(auth) = req.header("authorization") {
        recorded.insert("authorization".into(), auth.to_string());
    }
    state.token_requests.push(recorded);
    let claims = state.next_claims.take().expect("the test prepares the next ID token");
    let key = match state.sign_with {
        SignWith::Published => state.published.last().expect("key"),
        SignWith::Rogue => &state.rogue,
    };
    Json(
        json!({ "access_token": "mock-access-token", "token_type": "Bearer", "expires_in": 300, "id_token": key.sign(&claims) }),
    )
}

impl MockIssuer {
    async fn start() -> MockIssuer {
        let first = MockKey::generate("mock-key-1");
        let rogue = MockKey::generate("mock-key-1");
        let state = Arc::new(Mutex::new(MockIssuerState {
            published: vec![first],
            rogue,
            sign_with: SignWith::Published,
            next_claims: None,
            token_endpoint: None,
            token_requests: Vec::new(),
            jwks_fetches: 0,
        }));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let issuer = format!("{base}/application/o/oxidp/");
        let shared = Arc::new(MockShared { issuer: issuer.clone(), state: state.clone() });
        let app = Route::new()
            .at("/application/o/oxidp/.well-known/openid-configuration", get(mock_discovery))
            .at("/application/o/oxidp/jwks/", get(mock_jwks))
            .at("/application/o/oxidp/token/", post(mock_token))
            .data(shared);
        listener.set_nonblocking(true).expect("nonblocking");
        let acceptor = poem::listener::TcpAcceptor::from_std(listener).expect("acceptor");
        tokio::spawn(async move {
            let _ = poem::Server::new_with_acceptor(acceptor).run(app).await;
        });
        MockIssuer { issuer, state }
    }

    fn prepare(&self, claims: Map<String, Value>, sign_with: SignWith) {
        let mut state = self.state.lock().expect("lock");
        state.next_claims = Some(claims);
        state.sign_with = sign_with;
    }

    fn rotate(&self) {
        self.state.lock().expect("lock").published.push(MockKey::generate("mock-key-2"));
    }
}

// ---------------------------------------------------------------------------------------------
// Driving the browser

/// What a started upstream login left: the authorization request at B and the upstream URL.
pub(crate) struct Begun {
    pub(crate) pkce: Pkce,
    /// Where B sent the browser: the upstream's authorization endpoint.
    location: String,
    upstream: HashMap<String, String>,
    binding: String,
}

fn set_cookie_value(response: &reqwest::Response, name: &str) -> Option<String> {
    response.headers().get_all("set-cookie").iter().filter_map(|v| v.to_str().ok()).find_map(|cookie| {
        let (pair, _) = cookie.split_once(';').unwrap_or((cookie, ""));
        let (key, value) = pair.split_once('=')?;
        (key == name).then(|| value.to_string())
    })
}

pub(crate) fn assert_page(response: &reqwest::Response, status: u16, what: &str) {
    assert_eq!(response.status(), status, "{what}");
    let content_type = response.headers()["content-type"].to_str().expect("type");
    assert!(content_type.starts_with("text/html"), "{what}: an HTML page, got {content_type}");
}

/// The RP's authorization request at B, then the login page's button for `provider`, then the
/// redirect to the upstream.
async fn begin(b: &TestServer, rp: &TestClient, browser: &Browser, provider: &str, scope: &str) -> Begun {
    let pkce = pkce();
    // prompt=login: the browser may hold a session at B from an earlier test step.
    let extra = [("scope", scope), ("nonce", "rp-nonce"), ("prompt", "login")];
    let response = browser.get(&authorize_url(b, rp, &pkce, &extra)).await;
    assert_eq!(response.status(), 302, "{:?}", response.headers().get("location"));
    let login = location(&response);
    assert!(login.starts_with("/login?request="), "{login}");
    let page = browser.get(&b.url(&login)).await.text().await.expect("login page");
    let request = query_of(&login)["request"].clone();
    let button = format!("href=\"/login/{provider}?request={request}\"");
    assert!(page.contains(&button), "the login page offers {provider}: {page}");
    let response = browser.get(&b.url(&format!("/login/{provider}?request={request}"))).await;
    assert_eq!(response.status(), 302, "starting the upstream login");
    let binding = set_cookie_value(&response, "oxidp_federation").expect("binding cookie");
    let cookie = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("oxidp_federation="))
        .expect("cookie")
        .to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax") && cookie.contains("Max-Age=600"),
        "{cookie}"
    );
    let upstream_url = location(&response);
    let upstream = query_of(&upstream_url);
    assert_eq!(upstream["code_challenge_method"], "S256");
    assert_eq!(upstream["redirect_uri"], format!("{}/login/{provider}/callback", b.base));
    Begun { pkce, location: upstream_url, upstream, binding }
}

async fn callback(b: &TestServer, browser: &Browser, provider: &str, query: &[(&str, &str)]) -> reqwest::Response {
    let query = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(query).finish();
    browser.get(&b.url(&format!("/login/{provider}/callback?{query}"))).await
}

/// The redirect to the relying party carries an OAuth error with its state and B's issuer.
fn assert_client_error(b: &TestServer, response: &reqwest::Response, error: &str) {
    assert_eq!(response.status(), 303);
    let target = location(response);
    assert!(target.starts_with(REDIRECT), "{target}");
    let params = query_of(&target);
    assert_eq!(params.get("error").map(String::as_str), Some(error), "{target}");
    assert_eq!(params["state"], "state-123");
    assert_eq!(params["iss"], b.base);
    assert!(!params.contains_key("code"));
}

/// Follows B's consent page when asked, and returns the RP's code.
pub(crate) async fn code_for_client(b: &TestServer, browser: &Browser, response: reqwest::Response) -> String {
    assert_eq!(response.status(), 303, "the callback continues the authorization request");
    let mut next = location(&response);
    if next.starts_with("/consent") {
        let html = browser.get(&b.url(&next)).await.text().await.expect("consent");
        let csrf = form_field(&html, "csrf").expect("csrf");
        let request = form_field(&html, "request").expect("request");
        let response = browser
            .post_form(&b.url("/consent"), &[("csrf", &csrf), ("request", &request), ("decision", "approve")])
            .await;
        assert_eq!(response.status(), 303);
        next = location(&response);
    }
    assert!(next.starts_with(REDIRECT), "{next}");
    let params = query_of(&next);
    assert_eq!(params["state"], "state-123");
    params.get("code").unwrap_or_else(|| panic!("no code in {next}")).clone()
}

pub(crate) async fn id_token_claims(b: &TestServer, rp: &TestClient, code: &str, pkce: &Pkce) -> Map<String, Value> {
    let body = json(redeem(b, rp, code, &pkce.verifier).await).await;
    b.verify_jwt(body["id_token"].as_str().expect("id_token"), &rp.id, "JWT").await
}

// ---------------------------------------------------------------------------------------------
// The mock issuer (Authentik's shape)

pub(crate) struct MockSetup {
    pub(crate) b: TestServer,
    mock: MockIssuer,
    pub(crate) rp: TestClient,
    pub(crate) browser: Browser,
}

pub(crate) async fn mock_setup(backend: Backend, first_party: bool) -> MockSetup {
    mock_setup_with(backend, first_party, |_| {}).await
}

/// [`mock_setup`], with a last word on the configuration.
pub(crate) async fn mock_setup_with(
    backend: Backend,
    first_party: bool,
    adjust: impl FnOnce(&mut Config) + Send + 'static,
) -> MockSetup {
    let mock = MockIssuer::start().await;
    let issuer = mock.issuer.clone();
    let b = TestServer::start_with(backend, move |config: &mut Config| {
        // Not trusted for email (the default of generic issuers).
        config
            .upstream
            .insert("corp".into(), upstream(UpstreamKind::Oidc, Some(&issuer), "oxidp-b", Some("mock-secret")));
        let mut trusted = upstream(UpstreamKind::Oidc, Some(&issuer), "oxidp-b", Some("mock-secret"));
        trusted.trust_email = Some(true);
        trusted.label = Some("Trusted IdP".into());
        config.upstream.insert("trusted".into(), trusted);
        adjust(config);
    })
    .await;
    let mut flags = vec!["--name", "Relying party", "--redirect-uri", REDIRECT];
    if first_party {
        flags.extend(["--first-party", "--scopes", "openid profile email offline_access account"]);
    }
    let rp = b.client(&flags).await;
    MockSetup { b, mock, rp, browser: Browser::new() }
}

impl MockSetup {
    pub(crate) fn claims(&self, begun: &Begun, sub: &str, email: &str, verified: bool) -> Map<String, Value> {
        let now = self.b.clock_now();
        let value = json!({
            "iss": self.mock.issuer,
            "sub": sub,
            "aud": "oxidp-b",
            "exp": now + 300,
            "iat": now,
            "nonce": begun.upstream["nonce"],
            "email": email,
            "email_verified": verified,
            "name": "Upstream Person",
        });
        value.as_object().expect("object").clone()
    }

    pub(crate) async fn begin(&self, provider: &str) -> Begun {
        begin(&self.b, &self.rp, &self.browser, provider, "openid profile email").await
    }

    pub(crate) async fn answer(&self, provider: &str, begun: &Begun, claims: Map<String, Value>) -> reqwest::Response {
        self.mock.prepare(claims, SignWith::Published);
        callback(&self.b, &self.browser, provider, &[("code", "upstream-code"), ("state", &begun.upstream["state"])])
            .await
    }
}
