//! The browser side of the authorization flow, page by page: /authorize URLs with the usual
//! parameters changed, the pages and redirects to expect, the login and consent forms, cookies
//! and `prompt=none`. Shared by the tests of the authorization endpoint, redirect URIs, PKCE,
//! consent, sessions, the pages and login limits.

use crate::common::*;

pub(crate) const ALICE: &str = "alice@example.com";

pub(crate) const BOB: &str = "bob@example.com";

pub(crate) const ALL_SCOPES: &str = "openid profile email offline_access";

pub(crate) async fn setup(backend: Backend) -> (TestServer, TestClient) {
    let server = TestServer::start(backend).await;
    server.user(ALICE, PASSWORD).await;
    let client = server.client(&["--name", "Third Party App", "--redirect-uri", REDIRECT]).await;
    (server, client)
}

pub(crate) async fn first_party(server: &TestServer) -> TestClient {
    server.client(&["--name", "First Party App", "--redirect-uri", REDIRECT, "--first-party"]).await
}

/// Changes to the usual authorization request: `Some` replaces or adds, `None` removes.
pub(crate) type Overrides<'a> = &'a [(&'a str, Option<&'a str>)];

/// An /authorize URL with the usual parameters for `client`, changed by `overrides`
/// (`Some` replaces or adds a parameter, `None` removes it).
pub(crate) fn authorize_with(server: &TestServer, client_id: &str, pkce: &Pkce, overrides: Overrides<'_>) -> String {
    let defaults = [
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", REDIRECT),
        ("code_challenge", pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
        ("scope", ALL_SCOPES),
        ("state", "state-123"),
    ];
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for (key, value) in defaults {
        match overrides.iter().find(|(name, _)| *name == key) {
            Some((_, Some(replaced))) => {
                query.append_pair(key, replaced);
            }
            Some((_, None)) => {}
            None => {
                query.append_pair(key, value);
            }
        }
    }
    for (key, value) in overrides {
        if let (false, Some(value)) = (defaults.iter().any(|(name, _)| name == key), value) {
            query.append_pair(key, value);
        }
    }
    server.url(&format!("/authorize?{}", query.finish()))
}

/// A client that neither keeps cookies nor follows redirects.
pub(crate) fn plain_http() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("http client")
}

/// Asserts an HTML page with `status` and no redirect; returns its body.
pub(crate) async fn expect_page(response: reqwest::Response, status: u16) -> String {
    assert_eq!(response.status(), status, "status of {}", response.url());
    assert!(
        response.headers().get("location").is_none(),
        "a page must not redirect: {:?}",
        response.headers().get("location")
    );
    let content_type =
        response.headers().get("content-type").expect("content-type").to_str().expect("ascii").to_string();
    assert!(content_type.starts_with("text/html"), "content-type {content_type}");
    response.text().await.expect("html")
}

/// Asserts an error redirect to `redirect_uri` carrying `error`, the echoed `state` and `iss`.
pub(crate) fn expect_error_redirect(
    server: &TestServer,
    response: &reqwest::Response,
    redirect_uri: &str,
    error: &str,
    state: Option<&str>,
) {
    assert!(response.status().is_redirection(), "expected an error redirect, got {}", response.status());
    let location = location(response);
    assert!(location.starts_with(&format!("{redirect_uri}?")), "redirected to {location}");
    let params = query_of(&location);
    assert_eq!(params.get("error").map(String::as_str), Some(error), "{location}");
    assert!(params.get("error_description").is_some_and(|d| !d.is_empty()), "{location}");
    assert_eq!(params.get("iss").map(String::as_str), Some(server.issuer()), "iss in {location}");
    assert_eq!(params.get("state").map(String::as_str), state, "state in {location}");
    assert!(!params.contains_key("code"), "{location}");
}

/// Asserts a successful redirect to `redirect_uri` with `code`, `state` and `iss`; returns the code.
pub(crate) fn expect_code_redirect(
    server: &TestServer,
    response: &reqwest::Response,
    redirect_uri: &str,
    state: &str,
) -> String {
    assert!(response.status().is_redirection(), "expected a redirect, got {}", response.status());
    let location = location(response);
    assert!(location.starts_with(&format!("{redirect_uri}?")), "redirected to {location}");
    let params = query_of(&location);
    assert!(!params.contains_key("error"), "{location}");
    assert_eq!(params.get("iss").map(String::as_str), Some(server.issuer()), "iss in {location}");
    assert_eq!(params.get("state").map(String::as_str), Some(state), "state in {location}");
    params.get("code").unwrap_or_else(|| panic!("no code in {location}")).clone()
}

/// Asserts a redirect to the login page; returns its path.
pub(crate) fn expect_login_page(response: &reqwest::Response) -> String {
    assert_eq!(response.status(), 302, "expected a redirect to /login");
    let next = location(response);
    assert!(next.starts_with("/login?request="), "expected /login, got {next}");
    next
}

/// Asserts a redirect to the consent page; returns its path.
pub(crate) fn expect_consent_page(response: &reqwest::Response) -> String {
    assert!(response.status().is_redirection(), "expected a redirect to /consent, got {}", response.status());
    let next = location(response);
    assert!(next.starts_with("/consent?request="), "expected /consent, got {next}");
    next
}

/// The `csrf` and `request` fields of the form at `path`.
pub(crate) async fn open_form(server: &TestServer, browser: &Browser, path: &str) -> (String, String) {
    let html = expect_page(browser.get(&server.url(path)).await, 200).await;
    (form_field(&html, "csrf").expect("csrf field"), form_field(&html, "request").expect("request field"))
}

pub(crate) async fn post_login(
    server: &TestServer,
    browser: &Browser,
    csrf: &str,
    request: &str,
    email: &str,
    password: &str,
) -> reqwest::Response {
    browser
        .post_form(
            &server.url("/login"),
            &[("csrf", csrf), ("request", request), ("email", email), ("password", password)],
        )
        .await
}

/// Opens the login page at `path` and submits it.
pub(crate) async fn log_in(
    server: &TestServer,
    browser: &Browser,
    path: &str,
    email: &str,
    password: &str,
) -> reqwest::Response {
    let (csrf, request) = open_form(server, browser, path).await;
    post_login(server, browser, &csrf, &request, email, password).await
}

/// Opens the consent page at `path` and submits `decision`.
pub(crate) async fn decide_consent(
    server: &TestServer,
    browser: &Browser,
    path: &str,
    decision: &str,
) -> reqwest::Response {
    let (csrf, request) = open_form(server, browser, path).await;
    browser.post_form(&server.url("/consent"), &[("csrf", &csrf), ("request", &request), ("decision", decision)]).await
}

/// The whole Set-Cookie line for cookie `name`, if the response sets it.
pub(crate) fn set_cookie(response: &reqwest::Response, name: &str) -> Option<String> {
    let prefix = format!("{name}=");
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find(|value| value.starts_with(&prefix))
        .map(str::to_string)
}

pub(crate) fn cookie_value(set_cookie: &str) -> String {
    let pair = set_cookie.split(';').next().expect("cookie pair");
    pair.split_once('=').expect("name=value").1.to_string()
}

/// A `prompt=none` request: `Ok(code)` or `Err(error)`. With `session`, only that cookie is sent.
pub(crate) async fn silent(
    server: &TestServer,
    http: &reqwest::Client,
    client: &TestClient,
    session: Option<&str>,
) -> Result<String, String> {
    let pkce = pkce();
    let mut request = http.get(authorize_with(server, &client.id, &pkce, &[("prompt", Some("none"))]));
    if let Some(value) = session {
        request = request.header("cookie", format!("oxidp_session={value}"));
    }
    let response = request.send().await.expect("authorize");
    assert!(response.status().is_redirection(), "prompt=none always redirects, got {}", response.status());
    let location = location(&response);
    assert!(location.starts_with(&format!("{REDIRECT}?")), "prompt=none shows no page: {location}");
    let params = query_of(&location);
    assert_eq!(params.get("iss").map(String::as_str), Some(server.issuer()));
    assert_eq!(params.get("state").map(String::as_str), Some("state-123"));
    match params.get("code") {
        Some(code) => Ok(code.clone()),
        None => Err(params.get("error").expect("error or code").clone()),
    }
}

/// Signs `email` in through a full flow for `client` (approving consent when asked).
pub(crate) async fn sign_in(server: &TestServer, browser: &Browser, client: &TestClient, email: &str) {
    let pkce = pkce();
    let redirect =
        run_browser_flow(server, browser, &authorize_with(server, &client.id, &pkce, &[]), email, PASSWORD).await;
    assert!(query_of(&redirect).contains_key("code"), "{redirect}");
}

pub(crate) async fn id_token_claims(
    server: &TestServer,
    client: &TestClient,
    code: &str,
    verifier: &str,
) -> serde_json::Map<String, serde_json::Value> {
    let response = redeem(server, client, code, verifier).await;
    assert_eq!(response.status(), 200);
    let body = json(response).await;
    server.verify_jwt(body["id_token"].as_str().expect("id_token"), &client.id, "JWT").await
}

/// The message of the alert paragraph on a page.
pub(crate) fn alert(html: &str) -> String {
    let start = html.find("role=\"alert\">").expect("alert on page") + "role=\"alert\">".len();
    let end = html[start..].find("</p>").expect("end of alert") + start;
    html[start..end].to_string()
}
