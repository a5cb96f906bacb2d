//! The browser side of the code flow over real HTTP: which requests may redirect at all,
//! redirect URI and PKCE rules, error redirects (RFC 9207 `iss`), prompt / max_age, consent,
//! CSRF on the forms, brute-force limits, session rotation and lifetimes, cookies and headers.

use crate::common::*;
use crate::on_both_backends;

on_both_backends!(
    untrusted_client_or_redirect_uri_gets_an_error_page,
    loopback_redirect_uris_accept_any_port_but_localhost_does_not,
    pkce_s256_is_required,
    pkce_wrong_verifier_is_invalid_grant,
    pkce_exempt_client_may_omit_pkce_but_not_downgrade,
    errors_redirect_with_state_and_iss,
    prompt_none_never_shows_a_page,
    max_age_and_prompt_login_force_a_new_login,
    consent_is_remembered_per_client_and_scopes,
    first_party_clients_never_show_consent,
    denying_consent_is_access_denied,
    post_authorize_is_answered_with_303_to_get,
    login_form_requires_this_browsers_csrf_token,
    consent_form_requires_this_browsers_csrf_token,
    wrong_password_and_account_lock_do_not_reveal_accounts,
    failed_logins_are_limited_per_ip,
    session_id_rotates_at_every_login,
    session_idle_timeout,
    session_absolute_lifetime,
    code_lives_60_seconds,
    cookies_and_security_headers,
    cookies_are_secure_on_an_https_issuer,
);

const ALICE: &str = "alice@example.com";
const BOB: &str = "bob@example.com";
const ALL_SCOPES: &str = "openid profile email offline_access";

async fn setup(backend: Backend) -> (TestServer, TestClient) {
    let server = TestServer::start(backend).await;
    server.user(ALICE, PASSWORD).await;
    let client = server.client(&["--name", "Third Party App", "--redirect-uri", REDIRECT]).await;
    (server, client)
}

async fn first_party(server: &TestServer) -> TestClient {
    server.client(&["--name", "First Party App", "--redirect-uri", REDIRECT, "--first-party"]).await
}

/// Changes to the usual authorization request: `Some` replaces or adds, `None` removes.
type Overrides<'a> = &'a [(&'a str, Option<&'a str>)];

/// An /authorize URL with the usual parameters for `client`, changed by `overrides`
/// (`Some` replaces or adds a parameter, `None` removes it).
fn authorize_with(server: &TestServer, client_id: &str, pkce: &Pkce, overrides: Overrides<'_>) -> String {
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
fn plain_http() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("http client")
}

/// Asserts an HTML page with `status` and no redirect; returns its body.
async fn expect_page(response: reqwest::Response, status: u16) -> String {
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
fn expect_error_redirect(
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
    assert_eq!(params.get("iss"), Some(&server.base), "iss in {location}");
    assert_eq!(params.get("state").map(String::as_str), state, "state in {location}");
    assert!(!params.contains_key("code"), "{location}");
}

/// Asserts a successful redirect to `redirect_uri` with `code`, `state` and `iss`; returns the code.
fn expect_code_redirect(server: &TestServer, response: &reqwest::Response, redirect_uri: &str, state: &str) -> String {
    assert!(response.status().is_redirection(), "expected a redirect, got {}", response.status());
    let location = location(response);
    assert!(location.starts_with(&format!("{redirect_uri}?")), "redirected to {location}");
    let params = query_of(&location);
    assert!(!params.contains_key("error"), "{location}");
    assert_eq!(params.get("iss"), Some(&server.base), "iss in {location}");
    assert_eq!(params.get("state").map(String::as_str), Some(state), "state in {location}");
    params.get("code").unwrap_or_else(|| panic!("no code in {location}")).clone()
}

/// Asserts a redirect to the login page; returns its path.
fn expect_login_page(response: &reqwest::Response) -> String {
    assert_eq!(response.status(), 302, "expected a redirect to /login");
    let next = location(response);
    assert!(next.starts_with("/login?request="), "expected /login, got {next}");
    next
}

/// Asserts a redirect to the consent page; returns its path.
fn expect_consent_page(response: &reqwest::Response) -> String {
    assert!(response.status().is_redirection(), "expected a redirect to /consent, got {}", response.status());
    let next = location(response);
    assert!(next.starts_with("/consent?request="), "expected /consent, got {next}");
    next
}

/// The `csrf` and `request` fields of the form at `path`.
async fn open_form(server: &TestServer, browser: &Browser, path: &str) -> (String, String) {
    let html = expect_page(browser.get(&server.url(path)).await, 200).await;
    (form_field(&html, "csrf").expect("csrf field"), form_field(&html, "request").expect("request field"))
}

async fn post_login(
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
async fn log_in(server: &TestServer, browser: &Browser, path: &str, email: &str, password: &str) -> reqwest::Response {
    let (csrf, request) = open_form(server, browser, path).await;
    post_login(server, browser, &csrf, &request, email, password).await
}

/// Opens the consent page at `path` and submits `decision`.
async fn decide_consent(server: &TestServer, browser: &Browser, path: &str, decision: &str) -> reqwest::Response {
    let (csrf, request) = open_form(server, browser, path).await;
    browser.post_form(&server.url("/consent"), &[("csrf", &csrf), ("request", &request), ("decision", decision)]).await
}

/// The whole Set-Cookie line for cookie `name`, if the response sets it.
fn set_cookie(response: &reqwest::Response, name: &str) -> Option<String> {
    let prefix = format!("{name}=");
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find(|value| value.starts_with(&prefix))
        .map(str::to_string)
}

fn cookie_value(set_cookie: &str) -> String {
    let pair = set_cookie.split(';').next().expect("cookie pair");
    pair.split_once('=').expect("name=value").1.to_string()
}

/// A `prompt=none` request: `Ok(code)` or `Err(error)`. With `session`, only that cookie is sent.
async fn silent(
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
    assert_eq!(params.get("iss"), Some(&server.base));
    assert_eq!(params.get("state").map(String::as_str), Some("state-123"));
    match params.get("code") {
        Some(code) => Ok(code.clone()),
        None => Err(params.get("error").expect("error or code").clone()),
    }
}

/// Signs `email` in through a full flow for `client` (approving consent when asked).
async fn sign_in(server: &TestServer, browser: &Browser, client: &TestClient, email: &str) {
    let pkce = pkce();
    let redirect =
        run_browser_flow(server, browser, &authorize_with(server, &client.id, &pkce, &[]), email, PASSWORD).await;
    assert!(query_of(&redirect).contains_key("code"), "{redirect}");
}

async fn id_token_claims(
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
fn alert(html: &str) -> String {
    let start = html.find("role=\"alert\">").expect("alert on page") + "role=\"alert\">".len();
    let end = html[start..].find("</p>").expect("end of alert") + start;
    html[start..end].to_string()
}

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

async fn pkce_s256_is_required(backend: Backend) {
    let (server, client) = setup(backend).await;
    let browser = Browser::new();
    let pkce = pkce();
    let cases: [Overrides<'_>; 5] = [
        &[("code_challenge", None), ("code_challenge_method", None)],
        &[("code_challenge", None)],
        &[("code_challenge_method", Some("plain"))],
        &[("code_challenge_method", None)],
        &[("code_challenge", Some("too-short"))],
    ];
    for overrides in cases {
        let response = browser.get(&authorize_with(&server, &client.id, &pkce, overrides)).await;
        expect_error_redirect(&server, &response, REDIRECT, "invalid_request", Some("state-123"));
    }
    // plain with a verifier as its own challenge is refused as well.
    let plain = authorize_with(
        &server,
        &client.id,
        &pkce,
        &[("code_challenge", Some(&pkce.verifier)), ("code_challenge_method", Some("plain"))],
    );
    expect_error_redirect(&server, &browser.get(&plain).await, REDIRECT, "invalid_request", Some("state-123"));
}

async fn pkce_wrong_verifier_is_invalid_grant(backend: Backend) {
    let (server, client) = setup(backend).await;
    let browser = Browser::new();
    let (code, _) = obtain_code(&server, &browser, &client, &[]).await;
    let other = pkce();
    let response = redeem(&server, &client, &code, &other.verifier).await;
    assert_eq!(response.status(), 400);
    assert_eq!(json(response).await["error"], "invalid_grant");

    // Without any verifier.
    let (code, _) = obtain_code(&server, &browser, &client, &[]).await;
    let response = token_request(
        &server,
        &client,
        &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", REDIRECT)],
    )
    .await;
    assert_eq!(response.status(), 400);
    assert_eq!(json(response).await["error"], "invalid_grant");

    // The right one works.
    let (code, pkce) = obtain_code(&server, &browser, &client, &[]).await;
    assert_eq!(redeem(&server, &client, &code, &pkce.verifier).await.status(), 200);
}

async fn pkce_exempt_client_may_omit_pkce_but_not_downgrade(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.user(ALICE, PASSWORD).await;
    let legacy =
        server.client(&["--name", "Legacy", "--redirect-uri", REDIRECT, "--pkce-exempt", "--first-party"]).await;
    assert!(legacy.secret.is_some(), "a confidential client");
    let browser = Browser::new();
    let unused = pkce();
    let no_pkce: Overrides<'_> = &[("code_challenge", None), ("code_challenge_method", None)];

    let response = browser.get(&authorize_with(&server, &legacy.id, &unused, no_pkce)).await;
    let login = expect_login_page(&response);
    let response = log_in(&server, &browser, &login, ALICE, PASSWORD).await;
    let code = expect_code_redirect(&server, &response, REDIRECT, "state-123");
    let ok = token_request(
        &server,
        &legacy,
        &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", REDIRECT)],
    )
    .await;
    assert_eq!(ok.status(), 200, "an exempt client may omit PKCE");

    // A verifier for a code issued without a challenge: a downgrade, refused.
    let response = browser.get(&authorize_with(&server, &legacy.id, &unused, no_pkce)).await;
    let code = expect_code_redirect(&server, &response, REDIRECT, "state-123");
    let refused = redeem(&server, &legacy, &code, &unused.verifier).await;
    assert_eq!(refused.status(), 400);
    assert_eq!(json(refused).await["error"], "invalid_grant");

    // The exempt client may still use PKCE properly.
    let pkce = pkce();
    let response = browser.get(&authorize_with(&server, &legacy.id, &pkce, &[])).await;
    let code = expect_code_redirect(&server, &response, REDIRECT, "state-123");
    assert_eq!(redeem(&server, &legacy, &code, &pkce.verifier).await.status(), 200);

    // Without the flag the same confidential client type must use PKCE.
    let strict = server.client(&["--name", "Strict", "--redirect-uri", REDIRECT, "--first-party"]).await;
    let response = browser.get(&authorize_with(&server, &strict.id, &unused, no_pkce)).await;
    expect_error_redirect(&server, &response, REDIRECT, "invalid_request", Some("state-123"));
}

async fn errors_redirect_with_state_and_iss(backend: Backend) {
    let (server, client) = setup(backend).await;
    let browser = Browser::new();
    let pkce = pkce();
    let state = "a b&c=d/é?";
    let cases: [(Overrides<'_>, &str); 5] = [
        (&[("response_type", Some("token"))], "unsupported_response_type"),
        (&[("response_type", Some("code id_token"))], "unsupported_response_type"),
        (&[("response_type", None)], "invalid_request"),
        (&[("scope", Some("openid no-such-scope"))], "invalid_scope"),
        (&[("prompt", Some("none"))], "login_required"),
    ];
    for (overrides, error) in cases {
        let mut overrides = overrides.to_vec();
        overrides.push(("state", Some(state)));
        let response = browser.get(&authorize_with(&server, &client.id, &pkce, &overrides)).await;
        expect_error_redirect(&server, &response, REDIRECT, error, Some(state));
    }
    // Without a state there is none to echo; iss is still there.
    let response =
        browser.get(&authorize_with(&server, &client.id, &pkce, &[("state", None), ("scope", Some("nope"))])).await;
    expect_error_redirect(&server, &response, REDIRECT, "invalid_scope", None);

    // Success: code, state and iss.
    let response = browser.get(&authorize_with(&server, &client.id, &pkce, &[("state", Some(state))])).await;
    let login = expect_login_page(&response);
    let response = log_in(&server, &browser, &login, ALICE, PASSWORD).await;
    let consent = expect_consent_page(&response);
    let response = decide_consent(&server, &browser, &consent, "approve").await;
    assert_eq!(response.status(), 303);
    let code = expect_code_redirect(&server, &response, REDIRECT, state);
    assert_eq!(redeem(&server, &client, &code, &pkce.verifier).await.status(), 200);
}

async fn prompt_none_never_shows_a_page(backend: Backend) {
    let (server, client) = setup(backend).await;
    let trusted = first_party(&server).await;
    let browser = Browser::new();
    assert_eq!(silent(&server, &browser.http, &client, None).await, Err("login_required".into()));
    assert_eq!(silent(&server, &browser.http, &trusted, None).await, Err("login_required".into()));

    // Sign in, but stop at the consent page: the third-party client still needs consent.
    let pkce1 = pkce();
    let response = browser.get(&authorize_with(&server, &client.id, &pkce1, &[])).await;
    let login = expect_login_page(&response);
    let consent = expect_consent_page(&log_in(&server, &browser, &login, ALICE, PASSWORD).await);
    assert_eq!(silent(&server, &browser.http, &client, None).await, Err("consent_required".into()));
    // The first-party client needs no consent: a code straight away.
    let code = silent(&server, &browser.http, &trusted, None).await.expect("code for the first-party client");
    let pkce_unknown = redeem(&server, &trusted, &code, &pkce().verifier).await;
    assert_eq!(pkce_unknown.status(), 400, "silent codes are bound to their own challenge");

    // After consent, prompt=none succeeds for the third-party client too.
    let response = decide_consent(&server, &browser, &consent, "approve").await;
    expect_code_redirect(&server, &response, REDIRECT, "state-123");
    let code = silent(&server, &browser.http, &client, None).await.expect("code after consent");
    assert!(!code.is_empty());

    // prompt=none cannot be combined with other prompts.
    let response = browser.get(&authorize_with(&server, &client.id, &pkce1, &[("prompt", Some("none login"))])).await;
    expect_error_redirect(&server, &response, REDIRECT, "invalid_request", Some("state-123"));
}

async fn max_age_and_prompt_login_force_a_new_login(backend: Backend) {
    let (server, client) = setup(backend).await;
    let browser = Browser::new();
    sign_in(&server, &browser, &client, ALICE).await;
    let first_login = server.clock_now();

    // The session is fresh, yet max_age=0 and prompt=login both ask for the password again.
    for forcing in [("max_age", Some("0")), ("prompt", Some("login"))] {
        let pkce = pkce();
        let response = browser.get(&authorize_with(&server, &client.id, &pkce, &[forcing])).await;
        let login = expect_login_page(&response);
        server.clock.advance(5);
        let response = log_in(&server, &browser, &login, ALICE, PASSWORD).await;
        assert_eq!(response.status(), 303);
        let code = expect_code_redirect(&server, &response, REDIRECT, "state-123");
        let id = id_token_claims(&server, &client, &code, &pkce.verifier).await;
        assert_eq!(id["auth_time"].as_i64(), Some(server.clock_now()), "{forcing:?}: auth_time is the new login");
        assert!(server.clock_now() > first_login);
    }

    // max_age compares with the time of the last login.
    let last_login = server.clock_now();
    server.clock.advance(100);
    let pkce = pkce();
    let response = browser.get(&authorize_with(&server, &client.id, &pkce, &[("max_age", Some("300"))])).await;
    let code = expect_code_redirect(&server, &response, REDIRECT, "state-123");
    let id = id_token_claims(&server, &client, &code, &pkce.verifier).await;
    assert_eq!(id["auth_time"].as_i64(), Some(last_login));
    server.clock.advance(201);
    let response = browser.get(&authorize_with(&server, &client.id, &pkce, &[("max_age", Some("300"))])).await;
    expect_login_page(&response);
    // With prompt=none an old login is an error, not a page.
    let response = browser
        .get(&authorize_with(&server, &client.id, &pkce, &[("max_age", Some("300")), ("prompt", Some("none"))]))
        .await;
    expect_error_redirect(&server, &response, REDIRECT, "login_required", Some("state-123"));
    // A malformed max_age is an error redirect.
    let response = browser.get(&authorize_with(&server, &client.id, &pkce, &[("max_age", Some("-1"))])).await;
    expect_error_redirect(&server, &response, REDIRECT, "invalid_request", Some("state-123"));
}

async fn consent_is_remembered_per_client_and_scopes(backend: Backend) {
    let (server, client) = setup(backend).await;
    let other = server.client(&["--name", "Other App", "--redirect-uri", REDIRECT]).await;
    let browser = Browser::new();
    let narrow: Overrides<'_> = &[("scope", Some("openid profile"))];

    let pkce1 = pkce();
    let response = browser.get(&authorize_with(&server, &client.id, &pkce1, narrow)).await;
    let login = expect_login_page(&response);
    let consent = expect_consent_page(&log_in(&server, &browser, &login, ALICE, PASSWORD).await);
    let html = expect_page(browser.get(&server.url(&consent)).await, 200).await;
    assert!(html.contains("Third Party App") && html.contains("profile"), "consent page names the client and scopes");
    expect_code_redirect(&server, &decide_consent(&server, &browser, &consent, "approve").await, REDIRECT, "state-123");

    // Same client, same scopes (or fewer): no consent page.
    for scope in ["openid profile", "profile openid", "openid"] {
        let response = browser.get(&authorize_with(&server, &client.id, &pkce(), &[("scope", Some(scope))])).await;
        expect_code_redirect(&server, &response, REDIRECT, "state-123");
    }
    // An extra scope asks again.
    let response =
        browser.get(&authorize_with(&server, &client.id, &pkce(), &[("scope", Some("openid profile email"))])).await;
    let consent = expect_consent_page(&response);
    let html = expect_page(browser.get(&server.url(&consent)).await, 200).await;
    assert!(html.contains("email"));
    // prompt=consent asks even for scopes already granted.
    let response = browser
        .get(&authorize_with(&server, &client.id, &pkce(), &[("scope", Some("openid")), ("prompt", Some("consent"))]))
        .await;
    expect_consent_page(&response);
    // Consent is per client.
    let response = browser.get(&authorize_with(&server, &other.id, &pkce(), narrow)).await;
    expect_consent_page(&response);
    // And per user: bob in another browser is asked.
    server.user(BOB, PASSWORD).await;
    let bob = Browser::new();
    let response = bob.get(&authorize_with(&server, &client.id, &pkce(), narrow)).await;
    let login = expect_login_page(&response);
    expect_consent_page(&log_in(&server, &bob, &login, BOB, PASSWORD).await);
}

async fn first_party_clients_never_show_consent(backend: Backend) {
    let (server, _) = setup(backend).await;
    let trusted = first_party(&server).await;
    let browser = Browser::new();
    let pkce = pkce();
    let response = browser.get(&authorize_with(&server, &trusted.id, &pkce, &[])).await;
    let login = expect_login_page(&response);
    let response = log_in(&server, &browser, &login, ALICE, PASSWORD).await;
    assert_eq!(response.status(), 303);
    let code = expect_code_redirect(&server, &response, REDIRECT, "state-123");
    let body = json(redeem(&server, &trusted, &code, &pkce.verifier).await).await;
    assert!(body["refresh_token"].is_string(), "offline_access is implicit for first-party clients: {body}");
    for scope in ["openid", "openid email", ALL_SCOPES] {
        let response = browser.get(&authorize_with(&server, &trusted.id, &pkce, &[("scope", Some(scope))])).await;
        expect_code_redirect(&server, &response, REDIRECT, "state-123");
    }
}

async fn denying_consent_is_access_denied(backend: Backend) {
    let (server, client) = setup(backend).await;
    let browser = Browser::new();
    let response = browser.get(&authorize_with(&server, &client.id, &pkce(), &[("state", Some("deny-me"))])).await;
    let login = expect_login_page(&response);
    let consent = expect_consent_page(&log_in(&server, &browser, &login, ALICE, PASSWORD).await);
    let response = decide_consent(&server, &browser, &consent, "deny").await;
    assert_eq!(response.status(), 303);
    expect_error_redirect(&server, &response, REDIRECT, "access_denied", Some("deny-me"));
    // Nothing was remembered.
    assert_eq!(silent(&server, &browser.http, &client, None).await, Err("consent_required".into()));
}

async fn post_authorize_is_answered_with_303_to_get(backend: Backend) {
    let (server, client) = setup(backend).await;
    let browser = Browser::new();
    let pkce = pkce();
    let form = [
        ("response_type", "code"),
        ("client_id", client.id.as_str()),
        ("redirect_uri", REDIRECT),
        ("scope", "openid email"),
        ("state", "posted state"),
        ("code_challenge", pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    let response = browser.post_form(&server.url("/authorize"), &form).await;
    assert_eq!(response.status(), 303);
    let next = location(&response);
    assert!(next.starts_with("/authorize?"), "{next}");
    let query = query_of(&next);
    assert_eq!(query.len(), form.len());
    for (key, value) in form {
        assert_eq!(query.get(key).map(String::as_str), Some(value), "{key}");
    }
    // Following it behaves like the GET.
    let login = expect_login_page(&browser.get(&server.url(&next)).await);
    let consent = expect_consent_page(&log_in(&server, &browser, &login, ALICE, PASSWORD).await);
    let code = expect_code_redirect(
        &server,
        &decide_consent(&server, &browser, &consent, "approve").await,
        REDIRECT,
        "posted state",
    );
    assert_eq!(redeem(&server, &client, &code, &pkce.verifier).await.status(), 200);
}

async fn login_form_requires_this_browsers_csrf_token(backend: Backend) {
    let (server, client) = setup(backend).await;
    let browser = Browser::new();
    let login = expect_login_page(&browser.get(&authorize_with(&server, &client.id, &pkce(), &[])).await);
    let (csrf, request) = open_form(&server, &browser, &login).await;
    let (foreign_csrf, _) = open_form(&server, &Browser::new(), "/login").await;
    assert_ne!(csrf, foreign_csrf);

    let attempts = [
        browser
            .post_form(&server.url("/login"), &[("request", &request), ("email", ALICE), ("password", PASSWORD)])
            .await,
        post_login(&server, &browser, "", &request, ALICE, PASSWORD).await,
        post_login(&server, &browser, &foreign_csrf, &request, ALICE, PASSWORD).await,
        // The right token without the browser's cookie.
        plain_http()
            .post(server.url("/login"))
            .form(&[("csrf", csrf.as_str()), ("request", &request), ("email", ALICE), ("password", PASSWORD)])
            .send()
            .await
            .expect("POST"),
    ];
    for response in attempts {
        assert!(set_cookie(&response, "oxidp_session").is_none(), "no session without a valid CSRF token");
        expect_page(response, 403).await;
    }
    assert_eq!(silent(&server, &browser.http, &client, None).await, Err("login_required".into()));

    // The right token in the right browser signs in.
    let response = post_login(&server, &browser, &csrf, &request, ALICE, PASSWORD).await;
    assert!(set_cookie(&response, "oxidp_session").is_some());
    expect_consent_page(&response);
}

async fn consent_form_requires_this_browsers_csrf_token(backend: Backend) {
    let (server, client) = setup(backend).await;
    let browser = Browser::new();
    let login = expect_login_page(&browser.get(&authorize_with(&server, &client.id, &pkce(), &[])).await);
    let (login_csrf, _) = open_form(&server, &browser, &login).await;
    let consent = expect_consent_page(&log_in(&server, &browser, &login, ALICE, PASSWORD).await);
    let (csrf, request) = open_form(&server, &browser, &consent).await;

    // Another browser of the same user, at its own consent page.
    let other = Browser::new();
    let other_login = expect_login_page(&other.get(&authorize_with(&server, &client.id, &pkce(), &[])).await);
    let other_consent = expect_consent_page(&log_in(&server, &other, &other_login, ALICE, PASSWORD).await);
    let (foreign_csrf, _) = open_form(&server, &other, &other_consent).await;

    for token in [None, Some(""), Some(foreign_csrf.as_str()), Some(login_csrf.as_str())] {
        let mut form = vec![("request", request.as_str()), ("decision", "approve")];
        if let Some(token) = token {
            form.push(("csrf", token));
        }
        let response = browser.post_form(&server.url("/consent"), &form).await;
        expect_page(response, 403).await;
    }
    assert_eq!(
        silent(&server, &browser.http, &client, None).await,
        Err("consent_required".into()),
        "no consent was recorded"
    );

    let response = browser
        .post_form(&server.url("/consent"), &[("csrf", &csrf), ("request", &request), ("decision", "approve")])
        .await;
    assert_eq!(response.status(), 303);
    expect_code_redirect(&server, &response, REDIRECT, "state-123");
}

async fn wrong_password_and_account_lock_do_not_reveal_accounts(backend: Backend) {
    // The lock alone; the waits that lead up to it are login_throttle.rs's.
    let server = TestServer::start_with(backend, |c| c.login_delay = 0).await;
    server.user(ALICE, PASSWORD).await;
    let client = server.client(&["--name", "Third Party App", "--redirect-uri", REDIRECT]).await;
    server.user(BOB, PASSWORD).await;
    assert_eq!(server.state.config.login_account_limit, 5);
    let browser = Browser::new();
    let login = expect_login_page(&browser.get(&authorize_with(&server, &client.id, &pkce(), &[])).await);
    let (mut csrf, request) = open_form(&server, &browser, &login).await;

    // Five wrong passwords: 401 with the form again, no session.
    let mut wrong_message = String::new();
    for _ in 0..5 {
        let response = post_login(&server, &browser, &csrf, &request, ALICE, "wrong password!").await;
        assert!(set_cookie(&response, "oxidp_session").is_none());
        let html = expect_page(response, 401).await;
        csrf = form_field(&html, "csrf").expect("the form again");
        assert_eq!(form_field(&html, "request").as_deref(), Some(request.as_str()));
        wrong_message = alert(&html);
    }
    // Now even the right password is refused.
    let response = post_login(&server, &browser, &csrf, &request, ALICE, PASSWORD).await;
    assert!(response.headers().get("retry-after").is_some(), "429 carries Retry-After");
    assert!(set_cookie(&response, "oxidp_session").is_none());
    let locked_message = alert(&expect_page(response, 429).await);
    assert_ne!(locked_message, wrong_message);

    // An email nobody has: the same answers after as many failures.
    for _ in 0..5 {
        let html = expect_page(
            post_login(&server, &browser, &csrf, &request, "ghost@example.com", "wrong password!").await,
            401,
        )
        .await;
        assert_eq!(alert(&html), wrong_message, "an unknown email looks like a wrong password");
    }
    let html =
        expect_page(post_login(&server, &browser, &csrf, &request, "ghost@example.com", PASSWORD).await, 429).await;
    assert_eq!(alert(&html), locked_message, "an unknown email locks like a real one");

    // The lock is per account: bob signs in from the same address.
    let response = post_login(&server, &browser, &csrf, &request, BOB, PASSWORD).await;
    assert!(set_cookie(&response, "oxidp_session").is_some());
    expect_consent_page(&response);

    // Still locked a little before the window ends; open after it.
    server.clock.advance(880);
    let login = expect_login_page(
        &browser.get(&authorize_with(&server, &client.id, &pkce(), &[("prompt", Some("login"))])).await,
    );
    let response = log_in(&server, &browser, &login, ALICE, PASSWORD).await;
    expect_page(response, 429).await;
    server.clock.advance(21);
    let login = expect_login_page(
        &browser.get(&authorize_with(&server, &client.id, &pkce(), &[("prompt", Some("login"))])).await,
    );
    let response = log_in(&server, &browser, &login, ALICE, PASSWORD).await;
    assert!(set_cookie(&response, "oxidp_session").is_some());
    expect_consent_page(&response);
}

async fn failed_logins_are_limited_per_ip(backend: Backend) {
    let server = TestServer::start_with(backend, |c| c.login_ip_limit = 3).await;
    for email in [ALICE, BOB, "carol@example.com"] {
        server.user(email, PASSWORD).await;
    }
    let client = first_party(&server).await;
    let browser = Browser::new();
    let login = expect_login_page(&browser.get(&authorize_with(&server, &client.id, &pkce(), &[])).await);
    let (csrf, request) = open_form(&server, &browser, &login).await;
    // One failure each for three emails: no account reaches its own limit.
    for email in [ALICE, BOB, "nobody@example.com"] {
        expect_page(post_login(&server, &browser, &csrf, &request, email, "wrong password!").await, 401).await;
    }
    let locked = alert(
        &expect_page(post_login(&server, &browser, &csrf, &request, "carol@example.com", PASSWORD).await, 429).await,
    );
    let unknown = alert(
        &expect_page(post_login(&server, &browser, &csrf, &request, "dave@example.com", PASSWORD).await, 429).await,
    );
    assert_eq!(locked, unknown, "the IP lock does not reveal which accounts exist");
    // Another browser on the same address is locked too.
    let other = Browser::new();
    let other_login = expect_login_page(&other.get(&authorize_with(&server, &client.id, &pkce(), &[])).await);
    expect_page(log_in(&server, &other, &other_login, "carol@example.com", PASSWORD).await, 429).await;

    server.clock.advance(server.state.config.login_lock_window + 1);
    let response = post_login(&server, &browser, &csrf, &request, "carol@example.com", PASSWORD).await;
    assert!(set_cookie(&response, "oxidp_session").is_some());
    expect_code_redirect(&server, &response, REDIRECT, "state-123");
}

async fn session_id_rotates_at_every_login(backend: Backend) {
    let (server, _) = setup(backend).await;
    let client = first_party(&server).await;
    let browser = Browser::new();
    let login = expect_login_page(&browser.get(&authorize_with(&server, &client.id, &pkce(), &[])).await);
    let response = log_in(&server, &browser, &login, ALICE, PASSWORD).await;
    let first = cookie_value(&set_cookie(&response, "oxidp_session").expect("session cookie"));
    expect_code_redirect(&server, &response, REDIRECT, "state-123");
    assert!(silent(&server, &plain_http(), &client, Some(&first)).await.is_ok(), "the first cookie works on its own");

    let login = expect_login_page(
        &browser.get(&authorize_with(&server, &client.id, &pkce(), &[("prompt", Some("login"))])).await,
    );
    let response = log_in(&server, &browser, &login, ALICE, PASSWORD).await;
    let second = cookie_value(&set_cookie(&response, "oxidp_session").expect("session cookie"));
    expect_code_redirect(&server, &response, REDIRECT, "state-123");
    assert_ne!(first, second, "a new session id at login");

    assert_eq!(
        silent(&server, &plain_http(), &client, Some(&first)).await,
        Err("login_required".into()),
        "the old id is dead"
    );
    assert!(silent(&server, &plain_http(), &client, Some(&second)).await.is_ok());
    assert!(silent(&server, &browser.http, &client, None).await.is_ok(), "the browser holds the new id");

    // A session id planted in a browser before its login (here bob's) is ended by that login.
    server.user(BOB, PASSWORD).await;
    let attacker = Browser::new();
    let login = expect_login_page(&attacker.get(&authorize_with(&server, &client.id, &pkce(), &[])).await);
    let planted = cookie_value(
        &set_cookie(&log_in(&server, &attacker, &login, BOB, PASSWORD).await, "oxidp_session").expect("session cookie"),
    );
    let victim = plain_http();
    let with_planted = |request: reqwest::RequestBuilder, csrf: Option<&str>| {
        let csrf = csrf.map(|value| format!("; oxidp_csrf={value}")).unwrap_or_default();
        request.header("cookie", format!("oxidp_session={planted}{csrf}"))
    };
    let authorize = authorize_with(&server, &client.id, &pkce(), &[("prompt", Some("login"))]);
    let login = expect_login_page(&with_planted(victim.get(authorize), None).send().await.expect("authorize"));
    let page = with_planted(victim.get(server.url(&login)), None).send().await.expect("login page");
    let csrf_cookie = cookie_value(&set_cookie(&page, "oxidp_csrf").expect("CSRF cookie"));
    let html = expect_page(page, 200).await;
    let form = [
        ("csrf", form_field(&html, "csrf").expect("csrf")),
        ("request", form_field(&html, "request").expect("request")),
        ("email", ALICE.to_string()),
        ("password", PASSWORD.to_string()),
    ];
    let response =
        with_planted(victim.post(server.url("/login")), Some(&csrf_cookie)).form(&form).send().await.expect("POST");
    let fresh = cookie_value(&set_cookie(&response, "oxidp_session").expect("session cookie"));
    assert_ne!(fresh, planted);
    expect_code_redirect(&server, &response, REDIRECT, "state-123");
    assert_eq!(
        silent(&server, &plain_http(), &client, Some(&planted)).await,
        Err("login_required".into()),
        "the planted id is dead"
    );
    assert!(silent(&server, &plain_http(), &client, Some(&fresh)).await.is_ok());
}

async fn session_idle_timeout(backend: Backend) {
    let (server, _) = setup(backend).await;
    let client = first_party(&server).await;
    assert_eq!(server.state.config.session_idle_ttl, 3600);
    let browser = Browser::new();
    sign_in(&server, &browser, &client, ALICE).await;
    // Used within the idle time, it stays alive.
    for _ in 0..3 {
        server.clock.advance(3599);
        assert!(silent(&server, &browser.http, &client, None).await.is_ok());
    }
    // Unused for the idle time: gone.
    server.clock.advance(3601);
    assert_eq!(silent(&server, &browser.http, &client, None).await, Err("login_required".into()));
    let response = browser.get(&authorize_with(&server, &client.id, &pkce(), &[])).await;
    let login = expect_login_page(&response);
    let response = log_in(&server, &browser, &login, ALICE, PASSWORD).await;
    expect_code_redirect(&server, &response, REDIRECT, "state-123");
}

async fn session_absolute_lifetime(backend: Backend) {
    let (server, _) = setup(backend).await;
    let client = first_party(&server).await;
    assert_eq!(server.state.config.session_ttl, 86400);
    let browser = Browser::new();
    sign_in(&server, &browser, &client, ALICE).await;
    let mut elapsed = 0;
    while elapsed + 3000 < 86400 {
        server.clock.advance(3000);
        elapsed += 3000;
        assert!(silent(&server, &browser.http, &client, None).await.is_ok(), "alive after {elapsed} s of regular use");
    }
    // Less than the idle time since the last use, but past the absolute lifetime.
    server.clock.advance(86400 - elapsed);
    assert_eq!(silent(&server, &browser.http, &client, None).await, Err("login_required".into()));
}

async fn code_lives_60_seconds(backend: Backend) {
    let (server, client) = setup(backend).await;
    let browser = Browser::new();
    let (code, pkce1) = obtain_code(&server, &browser, &client, &[]).await;
    server.clock.advance(61);
    let response = redeem(&server, &client, &code, &pkce1.verifier).await;
    assert_eq!(response.status(), 400);
    assert_eq!(json(response).await["error"], "invalid_grant");

    let pkce2 = pkce();
    let response = browser.get(&authorize_with(&server, &client.id, &pkce2, &[])).await;
    let code = expect_code_redirect(&server, &response, REDIRECT, "state-123");
    server.clock.advance(59);
    assert_eq!(redeem(&server, &client, &code, &pkce2.verifier).await.status(), 200);
}

fn assert_security_headers(response: &reqwest::Response, what: &str) {
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("{what}: no {name}"))
            .to_string()
    };
    assert_eq!(header("x-frame-options"), "DENY", "{what}");
    assert!(header("content-security-policy").contains("frame-ancestors 'none'"), "{what}");
    assert_eq!(header("x-content-type-options"), "nosniff", "{what}");
    assert_eq!(header("referrer-policy"), "no-referrer", "{what}");
}

fn cookie_attributes(set_cookie: &str) -> Vec<String> {
    set_cookie.split(';').skip(1).map(|attribute| attribute.trim().to_ascii_lowercase()).collect()
}

async fn cookies_and_security_headers(backend: Backend) {
    let (server, client) = setup(backend).await;
    let browser = Browser::new();
    let response = browser.get(&authorize_with(&server, &client.id, &pkce(), &[])).await;
    assert_security_headers(&response, "authorize redirect");
    let login = expect_login_page(&response);

    let page = browser.get(&server.url(&login)).await;
    assert_security_headers(&page, "login page");
    let csrf_cookie = set_cookie(&page, "oxidp_csrf").expect("CSRF cookie");
    let html = expect_page(page, 200).await;
    assert!(!html.contains("<script"), "pages have no scripts");

    let response = post_login(
        &server,
        &browser,
        &form_field(&html, "csrf").expect("csrf"),
        &form_field(&html, "request").expect("request"),
        ALICE,
        PASSWORD,
    )
    .await;
    let session_cookie = set_cookie(&response, "oxidp_session").expect("session cookie");
    for (name, line) in [("session", &session_cookie), ("csrf", &csrf_cookie)] {
        let attributes = cookie_attributes(line);
        assert!(attributes.contains(&"httponly".to_string()), "{name}: {line}");
        assert!(attributes.contains(&"samesite=lax".to_string()), "{name}: {line}");
        assert!(!attributes.contains(&"secure".to_string()), "{name}: no Secure on an http issuer: {line}");
        assert!(attributes.contains(&"path=/".to_string()), "{name}: {line}");
    }
    let consent = expect_consent_page(&response);
    let page = browser.get(&server.url(&consent)).await;
    assert_security_headers(&page, "consent page");
    expect_page(page, 200).await;

    let error = browser.get(&authorize_with(&server, "unknown", &pkce(), &[])).await;
    assert_security_headers(&error, "error page");
    expect_page(error, 400).await;
    let failed = post_login(&server, &browser, "bad", "", ALICE, PASSWORD).await;
    assert_security_headers(&failed, "403 page");
}

async fn cookies_are_secure_on_an_https_issuer(backend: Backend) {
    let server = TestServer::start_with(backend, |c| c.issuer = "https://idp.example".into()).await;
    server.user(ALICE, PASSWORD).await;
    // A browser would not send Secure cookies over http: this one sends them by hand.
    let http = plain_http();
    let page = http.get(server.url("/login")).send().await.expect("login page");
    let csrf_cookie = set_cookie(&page, "oxidp_csrf").expect("CSRF cookie");
    assert!(cookie_attributes(&csrf_cookie).contains(&"secure".to_string()), "{csrf_cookie}");
    let html = expect_page(page, 200).await;
    let response = http
        .post(server.url("/login"))
        .header("cookie", format!("oxidp_csrf={}", cookie_value(&csrf_cookie)))
        .form(&[("csrf", form_field(&html, "csrf").expect("csrf").as_str()), ("email", ALICE), ("password", PASSWORD)])
        .send()
        .await
        .expect("POST");
    let session_cookie = set_cookie(&response, "oxidp_session").expect("session cookie");
    let attributes = cookie_attributes(&session_cookie);
    for expected in ["secure", "httponly", "samesite=lax"] {
        assert!(attributes.contains(&expected.to_string()), "{session_cookie}");
    }
    expect_page(response, 200).await;
}
