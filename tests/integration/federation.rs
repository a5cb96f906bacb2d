//! Upstream login over real HTTP, no internet: a second oxidp acting as the upstream (the full
//! chain relying party → B → A → B → relying party), a mock OIDC issuer shaped like Authentik
//! (issuer with a trailing slash) that signs whatever ID token a test asks for, and a GitHub
//! look-alike. Every failure is an HTML page or an OAuth error redirect, never a 5xx.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use josekit::jwk::alg::rsa::RsaKeyPair;
use oxidp::config::{Config, UpstreamConfig, UpstreamKind};
use oxidp::store::{IdentityStore, NewUser, UserStore};
use poem::web::{Data, Form, Json};
use poem::{EndpointExt, Request, Route, get, handler, post};
use serde_json::{Map, Value, json};

use crate::common::*;
use crate::on_both_backends;

on_both_backends!(
    login_through_a_second_oxidp_continues_the_authorization_request,
    callback_must_come_from_the_starting_browser_once_and_in_time,
    upstream_errors_and_bad_id_tokens_go_back_to_the_client,
    unreachable_upstream_times_out_without_a_5xx,
    unknown_kid_refreshes_the_jwks,
    linking_follows_the_email_rules,
    linking_with_a_password_waits_like_the_login_page,
    identities_are_listed_and_the_last_one_is_kept,
    github_login_with_pkce_and_the_emails_api,
);

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
// Generic OIDC with a second oxidp as the upstream

async fn login_through_a_second_oxidp_continues_the_authorization_request(backend: Backend) {
    // A answers as `localhost`, B as `127.0.0.1`: two sites, so the one browser keeps their
    // cookies apart (cookies ignore ports).
    let a =
        TestServer::start_with(backend, |config| config.issuer = config.issuer.replace("127.0.0.1", "localhost")).await;
    let a_issuer = a.state.config.issuer.clone();
    let at_a = |path: &str| format!("{a_issuer}{path}");
    a.user("alice@example.com", PASSWORD).await;
    // B's callback on any port of 127.0.0.1 (RFC 8252): B's port is not known yet.
    let b_at_a = a.client(&["--name", "oxidp B", "--redirect-uri", "http://127.0.0.1/login/a/callback"]).await;
    let (issuer, client_id, secret) = (a_issuer.clone(), b_at_a.id.clone(), b_at_a.secret.clone());
    let b = TestServer::start_with(backend, move |config| {
        let mut a = upstream(UpstreamKind::Oidc, Some(&issuer), &client_id, secret.as_deref());
        a.trust_email = Some(true);
        config.upstream.insert("a".into(), a);
    })
    .await;
    let rp = b.client(&["--name", "Relying party", "--redirect-uri", REDIRECT]).await;
    let browser = Browser::new();
    let mut chain = vec!["RP → B /authorize 302".to_string(), "B /login 200".into(), "B /login/a 302".into()];

    let begun = begin(&b, &rp, &browser, "a", "openid profile email").await;
    assert!(begun.location.starts_with(&at_a("/authorize?")), "{}", begun.location);
    assert!(begun.upstream.contains_key("nonce") && begun.upstream["scope"].contains("openid"));
    // At A: authorize → login → consent → back to B's callback.
    let next = through_a(&browser, &a_issuer, &begun.location, &mut chain).await;
    let callback_prefix = format!("{}/login/a/callback?", b.base);
    assert!(next.starts_with(&callback_prefix), "A answers B's callback: {next}");
    let answer = query_of(&next);
    assert_eq!(answer["state"], begun.upstream["state"]);
    assert_eq!(answer["iss"], a_issuer, "RFC 9207 iss from A");
    let response = browser.get(&next).await;
    chain.push(format!("B /login/a/callback {}", response.status().as_u16()));
    let cleared = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .any(|c| c.to_str().is_ok_and(|c| c.starts_with("oxidp_federation=;") && c.contains("Max-Age=0")));
    assert!(cleared, "the binding cookie is cleared after the callback");
    let code = code_for_client(&b, &browser, response).await;
    chain.push("B /consent 200, POST 303 → RP with code".into());
    let id = id_token_claims(&b, &rp, &code, &begun.pkce).await;
    assert_eq!(id["amr"], json!(["fed"]), "the ID token says the login was federated");
    assert_eq!(id["nonce"], "rp-nonce");
    assert_eq!(id["email"], "alice@example.com");
    assert_eq!(id["email_verified"], true, "A verified it and is trusted for email");
    let user = b.state.db.user_by_email("alice@example.com").await.expect("db").expect("user made at B");
    assert_eq!(id["sub"], user.sub.as_str(), "B's own subject, not A's");
    assert!(user.password_hash.is_none());
    let alice_at_a = a.state.db.user_by_email("alice@example.com").await.expect("db").expect("alice");
    let identity = b.state.db.identity("a", &alice_at_a.sub).await.expect("db").expect("identity (a, A's sub)");
    assert_eq!(identity.user_id, user.id);
    eprintln!("redirect chain: {}", chain.join(" → "));

    // Another browser, another login: same identity, same user; A remembers the consent.
    let browser = Browser::new();
    let begun = begin(&b, &rp, &browser, "a", "openid profile email").await;
    let mut second = Vec::new();
    let back = through_a(&browser, &a_issuer, &begun.location, &mut second).await;
    assert!(back.starts_with(&callback_prefix), "{back}");
    assert!(!second.iter().any(|step| step.contains("consent")), "{second:?}");
    let code = code_for_client(&b, &browser, browser.get(&back).await).await;
    let again = id_token_claims(&b, &rp, &code, &begun.pkce).await;
    assert_eq!(again["sub"], id["sub"]);
    assert_eq!(b.state.db.count_users().await.expect("count"), 1);
}

/// Signs in at A (login page, consent page when asked) until A redirects away; returns that URL.
async fn through_a(browser: &Browser, a_issuer: &str, authorize: &str, chain: &mut Vec<String>) -> String {
    let at_a = |path: &str| format!("{a_issuer}{path}");
    let response = browser.get(authorize).await;
    chain.push(format!("A /authorize {}", response.status().as_u16()));
    assert_eq!(response.status(), 302);
    let mut next = location(&response);
    for _ in 0..3 {
        if next.starts_with("http") {
            break;
        }
        let html = browser.get(&at_a(&next)).await.text().await.expect("page at A");
        let csrf = form_field(&html, "csrf").expect("csrf");
        let request = form_field(&html, "request").expect("request");
        let path = next.split('?').next().unwrap_or("").to_string();
        let response = if path == "/login" {
            let form = [
                ("csrf", csrf.as_str()),
                ("request", &request),
                ("email", "alice@example.com"),
                ("password", PASSWORD),
            ];
            browser.post_form(&at_a("/login"), &form).await
        } else {
            assert_eq!(path, "/consent");
            browser
                .post_form(&at_a("/consent"), &[("csrf", &csrf), ("request", &request), ("decision", "approve")])
                .await
        };
        chain.push(format!("A {path} 200, POST {}", response.status().as_u16()));
        assert_eq!(response.status(), 303);
        next = location(&response);
    }
    next
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

async fn callback_must_come_from_the_starting_browser_once_and_in_time(backend: Backend) {
    let setup = mock_setup(backend, true).await;
    let b = &setup.b;
    let state_of = |begun: &Begun| begun.upstream["state"].clone();

    // State mismatch: the browser's cookie binds another state.
    let begun = setup.begin("corp").await;
    let response = callback(b, &setup.browser, "corp", &[("code", "c"), ("state", "forged-state")]).await;
    assert_page(&response, 400, "state mismatch");
    let response = callback(b, &setup.browser, "corp", &[("code", "c")]).await;
    assert_page(&response, 400, "no state at all");

    // Another browser (no binding cookie) cannot use the state, and does not use it up.
    let other = Browser::new();
    let response = callback(b, &other, "corp", &[("code", "c"), ("state", &state_of(&begun))]).await;
    assert_page(&response, 400, "callback in a different browser");
    let html = response.text().await.expect("html");
    assert!(html.contains("not started in this browser"), "{html}");
    let response = setup.answer("corp", &begun, setup.claims(&begun, "bound-user", "bound@example.com", true)).await;
    assert_eq!(response.status(), 303, "the starting browser still completes");
    assert!(location(&response).starts_with(REDIRECT));

    // Replay: the same callback again, even with the binding cookie, is refused.
    let replay = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    let url = b.url(&format!("/login/corp/callback?code=upstream-code&state={}", state_of(&begun)));
    let response =
        replay.get(&url).header("cookie", format!("oxidp_federation={}", begun.binding)).send().await.expect("replay");
    assert_page(&response, 400, "replayed callback");
    assert!(response.text().await.expect("html").contains("already completed"));

    // Expired: ten minutes at the upstream are too long.
    let begun = setup.begin("corp").await;
    b.clock.advance(601);
    setup.mock.prepare(setup.claims(&begun, "late-user", "late@example.com", true), SignWith::Published);
    let response = callback(b, &setup.browser, "corp", &[("code", "c"), ("state", &state_of(&begun))]).await;
    assert_page(&response, 400, "expired state");
    assert!(b.state.db.user_by_email("late@example.com").await.expect("db").is_none());

    // Unknown provider.
    let response = setup.browser.get(&b.url("/login/nobody?request=x")).await;
    assert_page(&response, 404, "unknown provider");
    // An expired authorization request at the start.
    let response = setup.browser.get(&b.url("/login/corp?request=gone")).await;
    assert_page(&response, 400, "expired request");
}

fn set(claims: &mut Map<String, Value>, name: &str, value: Value) {
    claims.insert(name.into(), value);
}

async fn upstream_errors_and_bad_id_tokens_go_back_to_the_client(backend: Backend) {
    let setup = mock_setup(backend, false).await;
    let b = &setup.b;

    // The user declines at the upstream.
    let begun = setup.begin("corp").await;
    let response = callback(
        b,
        &setup.browser,
        "corp",
        &[("error", "access_denied"), ("error_description", "nope"), ("state", &begun.upstream["state"])],
    )
    .await;
    assert_client_error(b, &response, "access_denied");

    type Spoil = fn(&mut Map<String, Value>, i64);
    let cases: [(&str, Spoil, SignWith); 6] = [
        ("wrong aud", |c, _| set(c, "aud", json!("someone-else")), SignWith::Published),
        ("wrong iss", |c, _| set(c, "iss", json!("https://evil.example.com/")), SignWith::Published),
        ("expired", |c, now| set(c, "exp", json!(now - 5)), SignWith::Published),
        ("bad signature", |_, _| {}, SignWith::Rogue),
        ("wrong nonce", |c, _| set(c, "nonce", json!("another-nonce")), SignWith::Published),
        ("no nonce", |c, _| c.retain(|name, _| name != "nonce"), SignWith::Published),
    ];
    for (what, spoil, sign_with) in cases {
        let begun = setup.begin("corp").await;
        let mut claims = setup.claims(&begun, "victim", "victim@example.com", true);
        spoil(&mut claims, b.clock_now());
        setup.mock.prepare(claims, sign_with);
        let response =
            callback(b, &setup.browser, "corp", &[("code", "upstream-code"), ("state", &begun.upstream["state"])])
                .await;
        assert_client_error(b, &response, "access_denied");
        assert!(set_cookie_value(&response, "oxidp_session").is_none(), "{what}: no session");
    }
    // An `iss` answer parameter from another issuer (mix-up) is refused before the code is used.
    let begun = setup.begin("corp").await;
    let requests = setup.mock.state.lock().expect("lock").token_requests.len();
    let response = callback(
        b,
        &setup.browser,
        "corp",
        &[("code", "upstream-code"), ("state", &begun.upstream["state"]), ("iss", "https://evil.example.com/")],
    )
    .await;
    assert_client_error(b, &response, "access_denied");
    assert_eq!(setup.mock.state.lock().expect("lock").token_requests.len(), requests);
    assert!(b.state.db.user_by_email("victim@example.com").await.expect("db").is_none(), "no user was made");
    assert!(b.state.db.identity("corp", "victim").await.expect("db").is_none());

    // The valid token after all that works, and the token request carried the PKCE verifier
    // matching the challenge and the client's credentials.
    let begun = setup.begin("corp").await;
    let response = setup.answer("corp", &begun, setup.claims(&begun, "victim", "victim@example.com", true)).await;
    let code = code_for_client(b, &setup.browser, response).await;
    let id = id_token_claims(b, &setup.rp, &code, &begun.pkce).await;
    assert_eq!(id["amr"], json!(["fed"]));
    let request = setup.mock.state.lock().expect("lock").token_requests.last().cloned().expect("token request");
    let verifier = request.get("code_verifier").expect("PKCE verifier sent");
    use base64::Engine;
    use sha2::Digest;
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()));
    assert_eq!(challenge, begun.upstream["code_challenge"]);
    assert!(request.get("authorization").is_some_and(|auth| auth.starts_with("Basic ")), "client_secret_basic");
}

async fn unreachable_upstream_times_out_without_a_5xx(backend: Backend) {
    let mock = MockIssuer::start().await;
    let (_silent, silent_url) = silent_listener();
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        format!("http://{}", listener.local_addr().expect("addr"))
    };
    let (issuer, silent) = (mock.issuer.clone(), silent_url.clone());
    let b = TestServer::start_with(backend, move |config| {
        let mut down = upstream(UpstreamKind::Oidc, Some(&silent), "oxidp-b", Some("s"));
        down.timeout = Some(1);
        config.upstream.insert("down".into(), down);
        config.upstream.insert("gone".into(), upstream(UpstreamKind::Oidc, Some(&closed), "oxidp-b", Some("s")));
        let mut slow = upstream(UpstreamKind::Oidc, Some(&issuer), "oxidp-b", Some("s"));
        slow.timeout = Some(1);
        config.upstream.insert("slowtoken".into(), slow);
    })
    .await;
    let rp = b.client(&["--name", "RP", "--redirect-uri", REDIRECT]).await;
    let browser = Browser::new();
    for provider in ["down", "gone"] {
        let pkce = pkce();
        let login = location(&browser.get(&authorize_url(&b, &rp, &pkce, &[])).await);
        let request = query_of(&login)["request"].clone();
        let started = std::time::Instant::now();
        let response = browser.get(&b.url(&format!("/login/{provider}?request={request}"))).await;
        assert!(started.elapsed() < std::time::Duration::from_secs(5), "bounded by the time-out");
        assert_client_error(&b, &response, "temporarily_unavailable");
    }
    // Discovery answers, the token endpoint does not.
    mock.state.lock().expect("lock").token_endpoint = Some(format!("{silent_url}/token"));
    let begun = begin(&b, &rp, &browser, "slowtoken", "openid email").await;
    let response = callback(&b, &browser, "slowtoken", &[("code", "c"), ("state", &begun.upstream["state"])]).await;
    assert_client_error(&b, &response, "temporarily_unavailable");
    // Without an authorization request, an HTML page (still not a 5xx).
    let response = browser.get(&b.url("/login/down")).await;
    assert_page(&response, 400, "unreachable, no request");
}

async fn unknown_kid_refreshes_the_jwks(backend: Backend) {
    let setup = mock_setup(backend, true).await;
    let begun = setup.begin("corp").await;
    let response = setup.answer("corp", &begun, setup.claims(&begun, "rotating", "rot@example.com", true)).await;
    code_for_client(&setup.b, &setup.browser, response).await;
    assert_eq!(setup.mock.state.lock().expect("lock").jwks_fetches, 1, "discovery fetched the JWKS once");

    // The upstream rotates its key; B's cached JWKS does not have the new kid.
    setup.mock.rotate();
    setup.b.clock.advance(30);
    let begun = setup.begin("corp").await;
    let response = setup.answer("corp", &begun, setup.claims(&begun, "rotating", "rot@example.com", true)).await;
    let code = code_for_client(&setup.b, &setup.browser, response).await;
    id_token_claims(&setup.b, &setup.rp, &code, &begun.pkce).await;
    assert_eq!(setup.mock.state.lock().expect("lock").jwks_fetches, 2, "one refresh for the unknown kid");
}

async fn linking_follows_the_email_rules(backend: Backend) {
    let setup = mock_setup(backend, true).await;
    let b = &setup.b;
    let now = b.clock_now();
    let hash = oxidp::passwords::hash_password(PASSWORD).expect("hash");
    let unverified = NewUser {
        email: Some("unverified@example.com".into()),
        email_verified: false,
        password_hash: Some(hash),
        name: None,
        role: "user".into(),
    };
    let unverified = b.state.db.create_user(unverified, now).await.expect("unverified user");
    let admin = b.user_with_role("admin@example.com", PASSWORD, true).await;
    let verified = b.user("verified@example.com", PASSWORD).await;
    let carol = b.user("carol@example.com", PASSWORD).await;

    // A verified upstream email (trusted provider) meets an unverified local account: no link.
    let begun = setup.begin("trusted").await;
    let response = setup.answer("trusted", &begun, setup.claims(&begun, "up-1", "unverified@example.com", true)).await;
    assert_page(&response, 200, "sign in to link");
    assert!(set_cookie_value(&response, "oxidp_session").is_none());
    assert!(b.state.db.identity("trusted", "up-1").await.expect("db").is_none(), "not linked");
    assert!(b.state.db.user_by_id(&unverified.id).await.expect("db").is_some());

    // An untrusted generic issuer claims the administrator's (verified) email: no link, no form.
    let begun = setup.begin("corp").await;
    let response = setup.answer("corp", &begun, setup.claims(&begun, "evil", "admin@example.com", true)).await;
    assert_page(&response, 409, "admin email from an untrusted issuer");
    assert!(b.state.db.identity("corp", "evil").await.expect("db").is_none());
    // Not even a trusted provider links an administrator automatically.
    let begun = setup.begin("trusted").await;
    let response = setup.answer("trusted", &begun, setup.claims(&begun, "admin-up", "admin@example.com", true)).await;
    assert_page(&response, 409, "admin email from a trusted provider");
    assert!(b.state.db.identity("trusted", "admin-up").await.expect("db").is_none());
    assert!(b.state.db.user_by_id(&admin.id).await.expect("db").expect("admin").is_admin());

    // Trusted, verified upstream email + verified local account: linked automatically.
    let begun = setup.begin("trusted").await;
    let response =
        setup.answer("trusted", &begun, setup.claims(&begun, "up-verified", "verified@example.com", true)).await;
    let code = code_for_client(b, &setup.browser, response).await;
    let id = id_token_claims(b, &setup.rp, &code, &begun.pkce).await;
    assert_eq!(id["sub"], verified.sub.as_str());
    assert_eq!(id["amr"], json!(["fed"]));
    assert_eq!(b.state.db.identity("trusted", "up-verified").await.expect("db").expect("linked").user_id, verified.id);
    // An email the upstream does not assert verified is never used (issue 12): no link, no offer,
    // a new account without any email.
    let begun = setup.begin("trusted").await;
    let response =
        setup.answer("trusted", &begun, setup.claims(&begun, "up-unverified", "carol@example.com", false)).await;
    code_for_client(b, &setup.browser, response).await;
    let identity = b.state.db.identity("trusted", "up-unverified").await.expect("db").expect("identity");
    assert_ne!(identity.user_id, carol.id);
    let stranger = b.state.db.user_by_id(&identity.user_id).await.expect("db").expect("user");
    assert_eq!(stranger.email, None, "unverified upstream email");

    // Untrusted issuer, carol's email: carol signs in with her password to link.
    let browser = &setup.browser;
    let begun = setup.begin("corp").await;
    let response = setup.answer("corp", &begun, setup.claims(&begun, "carol-up", "carol@example.com", true)).await;
    assert_page(&response, 200, "link offer");
    let html = response.text().await.expect("html");
    assert!(html.contains("carol@example.com"));
    let csrf = form_field(&html, "csrf").expect("csrf");
    let link = form_field(&html, "link").expect("link");
    let response = browser
        .post_form(&b.url("/login/corp/callback"), &[("csrf", &csrf), ("link", &link), ("password", "wrong password!")])
        .await;
    assert_page(&response, 401, "wrong password");
    assert!(b.state.db.identity("corp", "carol-up").await.expect("db").is_none());
    // Another browser cannot use the offer even with the form values.
    let other = Browser::new();
    let response = other
        .post_form(&b.url("/login/corp/callback"), &[("csrf", &csrf), ("link", &link), ("password", PASSWORD)])
        .await;
    assert_page(&response, 403, "no CSRF cookie in another browser");
    let response = browser
        .post_form(&b.url("/login/corp/callback"), &[("csrf", &csrf), ("link", &link), ("password", PASSWORD)])
        .await;
    let code = code_for_client(b, browser, response).await;
    let id = id_token_claims(b, &setup.rp, &code, &begun.pkce).await;
    assert_eq!(id["sub"], carol.sub.as_str());
    assert_eq!(id["amr"], json!(["pwd", "fed"]));
    assert_eq!(b.state.db.identity("corp", "carol-up").await.expect("db").expect("linked").user_id, carol.id);
    // The offer was single-use.
    let response = browser
        .post_form(&b.url("/login/corp/callback"), &[("csrf", &csrf), ("link", &link), ("password", PASSWORD)])
        .await;
    assert_page(&response, 400, "used offer");

    // A new email makes a new user: with the email (verified) only when the provider is trusted
    // for email, else without any email (issue 12).
    for (provider, sub, email, trusted) in
        [("trusted", "new-1", "new1@example.com", true), ("corp", "new-2", "new2@example.com", false)]
    {
        let begun = setup.begin(provider).await;
        let response = setup.answer(provider, &begun, setup.claims(&begun, sub, email, true)).await;
        code_for_client(b, &setup.browser, response).await;
        let identity = b.state.db.identity(provider, sub).await.expect("db").expect("identity");
        let user = b.state.db.user_by_id(&identity.user_id).await.expect("db").expect("new user");
        assert_eq!(user.email.is_some(), trusted, "{provider}");
        assert_eq!(user.email_verified, trusted, "{provider}");
        assert_eq!(user.name.as_deref(), Some("Upstream Person"));
        assert_eq!(b.state.db.identity(provider, sub).await.expect("db").expect("identity").user_id, user.id);
    }
}

/// The password that links an upstream identity counts against the same limits as the login
/// page: after the free failures the next attempt waits, with the page shown again and a 429.
async fn linking_with_a_password_waits_like_the_login_page(backend: Backend) {
    let setup = mock_setup(backend, true).await;
    let b = &setup.b;
    let carol = b.user("carol@example.com", PASSWORD).await;
    let browser = &setup.browser;
    let begun = setup.begin("corp").await;
    let response = setup.answer("corp", &begun, setup.claims(&begun, "carol-up", "carol@example.com", true)).await;
    assert_page(&response, 200, "link offer");
    let html = response.text().await.expect("html");
    let (csrf, link) = (form_field(&html, "csrf").expect("csrf"), form_field(&html, "link").expect("link"));
    let submit = |password: &'static str| {
        let form = [("csrf", csrf.clone()), ("link", link.clone()), ("password", password.to_string())];
        async move {
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            browser.post_form(&b.url("/login/corp/callback"), &form).await
        }
    };
    for _ in 0..3 {
        assert_page(&submit("wrong password!").await, 401, "wrong password");
    }
    let refused = submit(PASSWORD).await;
    assert_page(&refused, 429, "inside the wait");
    assert_eq!(refused.headers().get("retry-after").and_then(|v| v.to_str().ok()), Some("1"));
    assert!(refused.text().await.expect("html").contains("Too many failed attempts"));
    assert!(b.state.db.identity("corp", "carol-up").await.expect("db").is_none(), "not linked");
    b.clock.advance(1);
    let code = code_for_client(b, browser, submit(PASSWORD).await).await;
    let id = id_token_claims(b, &setup.rp, &code, &begun.pkce).await;
    assert_eq!(id["sub"], carol.sub.as_str(), "linked after the wait");
}

async fn identities_are_listed_and_the_last_one_is_kept(backend: Backend) {
    let setup = mock_setup(backend, true).await;
    let b = &setup.b;
    let begun = begin(b, &setup.rp, &setup.browser, "trusted", "openid email account").await;
    let response = setup.answer("trusted", &begun, setup.claims(&begun, "dora-up", "dora@example.com", true)).await;
    let code = code_for_client(b, &setup.browser, response).await;
    let body = json(redeem(b, &setup.rp, &code, &begun.pkce.verifier).await).await;
    let token = body["access_token"].as_str().expect("access token").to_string();
    let http = reqwest::Client::new();
    let list = || async {
        let response = http.get(b.url("/api/v1/users/me/identities")).bearer_auth(&token).send().await.expect("list");
        assert_eq!(response.status(), 200);
        json(response).await
    };
    let listed = list().await;
    let items = listed["items"].as_array().expect("items");
    assert_eq!(items.len(), 1, "{listed}");
    assert_eq!(items[0]["provider"], "trusted");
    assert_eq!(items[0]["label"], "Trusted IdP");
    assert_eq!(items[0]["subject"], "dora-up");
    assert_eq!(items[0]["email"], "dora@example.com");
    let id = items[0]["id"].as_str().expect("id").to_string();

    // The only way to sign in (no password): kept.
    let delete = |id: String| {
        let http = http.clone();
        let token = token.clone();
        let url = b.url(&format!("/api/v1/users/me/identities/{id}"));
        async move { http.delete(url).bearer_auth(&token).send().await.expect("delete") }
    };
    let response = delete(id.clone()).await;
    assert_eq!(response.status(), 409);
    assert_eq!(json(response).await["code"], "last_login_method");
    let response = delete("00000000-0000-0000-0000-000000000000".into()).await;
    assert_eq!(response.status(), 404);

    // With a password, the identity can go.
    let dora = b.state.db.user_by_email("dora@example.com").await.expect("db").expect("dora");
    let hash = oxidp::passwords::hash_password(PASSWORD).expect("hash");
    b.state.db.set_password_hash(&dora.id, &hash, b.clock_now()).await.expect("password");
    assert_eq!(delete(id).await.status(), 204);
    assert_eq!(list().await["items"].as_array().expect("items").len(), 0);
    assert!(b.state.db.identity("trusted", "dora-up").await.expect("db").is_none());
    // Unauthenticated: 401 problem.
    let response = http.get(b.url("/api/v1/users/me/identities")).send().await.expect("list");
    assert_eq!(response.status(), 401);
}

// ---------------------------------------------------------------------------------------------
// GitHub

struct GithubState {
    challenge: Option<String>,
    token_requests: Vec<HashMap<String, String>>,
    api_headers: Vec<(String, String, String)>,
}

#[handler]
fn github_token(
    req: &Request,
    Data(state): Data<&Arc<Mutex<GithubState>>>,
    Form(form): Form<HashMap<String, String>>,
) -> Json<Value> {
    let mut state = state.lock().expect("lock");
    state.token_requests.push(form.clone());
    let accepts_json = req.header("accept").is_some_and(|a| a.contains("application/json"));
    let verifier_ok = form.get("code_verifier").is_some_and(|verifier| {
        use base64::Engine;
        use sha2::Digest;
        let challenge =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()));
        state.challenge.as_deref() == Some(challenge.as_str())
    });
    let ok = accepts_json
        && verifier_ok
        && form.get("code").map(String::as_str) == Some("gh-code")
        && form.get("client_id").map(String::as_str) == Some("gh-client")
        && form.get("client_secret").map(String::as_str) == Some("gh-secret");
    // GitHub answers a bad code with 200 and an error object.
    if ok {
        Json(json!({ "access_token": "gho_mock", "token_type": "bearer", "scope": "read:user,user:email" }))
    } else {
        Json(
            json!({ "error": "bad_verification_code", "error_description": "The code passed is incorrect or expired." }),
        )
    }
}

fn github_authorized(req: &Request, state: &Arc<Mutex<GithubState>>) -> bool {
    let header = |name: &str| req.header(name).unwrap_or("").to_string();
    state.lock().expect("lock").api_headers.push((
        req.uri().path().to_string(),
        header("user-agent"),
        header("accept"),
    ));
    header("authorization") == "Bearer gho_mock"
}

#[handler]
fn github_user(req: &Request, Data(state): Data<&Arc<Mutex<GithubState>>>) -> poem::Response {
    if !github_authorized(req, state) {
        return poem::Response::builder().status(poem::http::StatusCode::UNAUTHORIZED).finish();
    }
    let body = json!({ "login": "octocat", "id": 583231, "name": "The Octocat", "email": "public@example.com" });
    poem::Response::builder().content_type("application/json").body(body.to_string())
}

#[handler]
fn github_emails(req: &Request, Data(state): Data<&Arc<Mutex<GithubState>>>) -> poem::Response {
    if !github_authorized(req, state) {
        return poem::Response::builder().status(poem::http::StatusCode::UNAUTHORIZED).finish();
    }
    let body = json!([
        { "email": "octo-old@example.com", "primary": false, "verified": true, "visibility": null },
        { "email": "octocat@example.com", "primary": true, "verified": true, "visibility": "private" },
    ]);
    poem::Response::builder().content_type("application/json").body(body.to_string())
}

async fn github_login_with_pkce_and_the_emails_api(backend: Backend) {
    let shared =
        Arc::new(Mutex::new(GithubState { challenge: None, token_requests: Vec::new(), api_headers: Vec::new() }));
    // GitHub Enterprise's layout: the REST API under /api/v3.
    let mock = serve_mock(
        Route::new()
            .at("/login/oauth/access_token", post(github_token))
            .at("/api/v3/user", get(github_user))
            .at("/api/v3/user/emails", get(github_emails))
            .data(shared.clone()),
    )
    .await;
    let base = mock.clone();
    let b = TestServer::start_with(backend, move |config| {
        let mut github = upstream(UpstreamKind::Github, None, "gh-client", Some("gh-secret"));
        github.auth_url = Some(format!("{base}/login/oauth/authorize"));
        github.token_url = Some(format!("{base}/login/oauth/access_token"));
        github.api_url = Some(format!("{base}/api/v3"));
        config.upstream.insert("github".into(), github);
    })
    .await;
    let rp = b.client(&["--name", "RP", "--redirect-uri", REDIRECT, "--first-party"]).await;
    let browser = Browser::new();

    let begun = begin(&b, &rp, &browser, "github", "openid email").await;
    assert_eq!(begun.upstream["client_id"], "gh-client");
    assert_eq!(begun.upstream["scope"], "read:user user:email");
    assert!(!begun.upstream.contains_key("nonce"), "plain OAuth 2");
    shared.lock().expect("lock").challenge = Some(begun.upstream["code_challenge"].clone());
    let response = callback(&b, &browser, "github", &[("code", "gh-code"), ("state", &begun.upstream["state"])]).await;
    let code = code_for_client(&b, &browser, response).await;
    let id = id_token_claims(&b, &rp, &code, &begun.pkce).await;
    assert_eq!(id["amr"], json!(["fed"]));
    assert_eq!(id["email"], "octocat@example.com", "the primary address, not the public one");
    assert_eq!(id["email_verified"], true);
    let user = b.state.db.user_by_email("octocat@example.com").await.expect("db").expect("user");
    assert_eq!(user.name.as_deref(), Some("The Octocat"));
    assert_eq!(b.state.db.identity("github", "583231").await.expect("db").expect("identity").user_id, user.id);
    {
        let state = shared.lock().expect("lock");
        let request = state.token_requests.last().expect("token request");
        assert_eq!(request["redirect_uri"], format!("{}/login/github/callback", b.base));
        assert_eq!(request["grant_type"], "authorization_code");
        for (path, user_agent, accept) in &state.api_headers {
            assert!(user_agent.starts_with("oxidp/"), "{path} has a User-Agent");
            assert_eq!(accept, "application/vnd.github+json", "{path}");
        }
    }

    // A bad code: GitHub's 200-with-error answer becomes an OAuth error for the client.
    let begun = begin(&b, &rp, &browser, "github", "openid email").await;
    shared.lock().expect("lock").challenge = Some(begun.upstream["code_challenge"].clone());
    let response = callback(&b, &browser, "github", &[("code", "expired"), ("state", &begun.upstream["state"])]).await;
    assert_client_error(&b, &response, "access_denied");

    // GitHub is trusted for email: a verified local account with the same email is linked.
    b.state.db.delete_user_row(&user.id).await.expect("delete");
    let local = b.user("octocat@example.com", PASSWORD).await;
    let begun = begin(&b, &rp, &browser, "github", "openid email").await;
    shared.lock().expect("lock").challenge = Some(begun.upstream["code_challenge"].clone());
    let response = callback(&b, &browser, "github", &[("code", "gh-code"), ("state", &begun.upstream["state"])]).await;
    let code = code_for_client(&b, &browser, response).await;
    let id = id_token_claims(&b, &rp, &code, &begun.pkce).await;
    assert_eq!(id["sub"], local.sub.as_str());
    assert_eq!(b.state.db.identity("github", "583231").await.expect("db").expect("identity").user_id, local.id);
}
