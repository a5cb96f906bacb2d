//! Tests of the threat table (tests/THREATS.md) that no other file already covers: mix-up
//! (RFC 9207 `iss`), Referer leakage, clickjacking, open redirects, 307 redirects, code
//! injection, token confusion (access token as ID token hint, ID token as access token,
//! client token as a user), spoofed `X-Forwarded-For`, account pre-hijacking through email
//! linking, and the audit of lockouts. Each fails when its defence is taken away.
//!
//! Several tests share one "walk": a browser and an RP going through every page and redirect
//! of the flows (authorize, login, consent, silent authorize, errors, logout, docs, the APIs),
//! recording each response and every credential handed out on the way.

use std::sync::Arc;

use reqwest::cookie::{CookieStore, Jar};
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

use crate::common::*;
use crate::on_both_backends;

on_both_backends!(
    mix_up_every_authorization_response_names_the_issuer,
    referer_leakage_no_referrer_and_no_credentials_in_pages,
    clickjacking_no_response_may_be_framed,
    open_redirect_only_to_this_server_or_registered_uris,
    form_posts_are_answered_with_303_never_307,
    code_injection_a_code_needs_its_client_redirect_uri_and_verifier,
    access_token_is_not_an_id_token_hint,
    id_token_is_not_an_access_token,
    client_credentials_token_never_acts_as_a_user,
    forwarded_for_is_believed_only_from_trusted_proxies,
    forwarded_for_skips_trusted_hops_and_is_ignored_from_other_peers,
    unverified_local_account_is_never_linked_to_an_upstream_identity,
    lockouts_are_audited_alike_for_known_and_unknown_accounts,
);

const ALICE: &str = "alice@example.com";
const BYE: &str = "https://app.example/bye";
const INTERNAL_SECRET: &str = "internal-secret-for-threat-tests";

// ---------------------------------------------------------------------------------------------
// Helpers shared with secrets_at_rest.rs

/// A client that keeps cookies in a jar the test can read, and never follows redirects.
pub(crate) fn http_with_jar() -> (reqwest::Client, Arc<Jar>) {
    let jar = Arc::new(Jar::default());
    let http = reqwest::Client::builder()
        .cookie_provider(jar.clone())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("http client");
    (http, jar)
}

/// The value of cookie `name` in the jar, for the origin `base`.
pub(crate) fn cookie_at(base: &str, jar: &Jar, name: &str) -> Option<String> {
    let url = reqwest::Url::parse(base).expect("base URL");
    let header = jar.cookies(&url)?;
    let prefix = format!("{name}=");
    header.to_str().ok()?.split("; ").find_map(|pair| pair.strip_prefix(prefix.as_str())).map(str::to_string)
}

/// The value of cookie `name` in the jar, for the test server's origin.
pub(crate) fn jar_cookie(server: &TestServer, jar: &Jar, name: &str) -> Option<String> {
    cookie_at(&server.base, jar, name)
}

/// The one-time code on its own line in the newest mail to `to` whose subject contains
/// `subject` (the default mailer writes one `.eml` file per message into the mail directory).
pub(crate) fn mailed_code_in(mail_dir: &std::path::Path, to: &str, subject: &str) -> String {
    let mut files: Vec<_> = std::fs::read_dir(mail_dir)
        .expect("mail directory")
        .map(|entry| entry.expect("dir entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "eml"))
        .collect();
    files.sort();
    let first_line = format!("To: {to}");
    let mail = files
        .into_iter()
        .rev()
        .map(|path| std::fs::read_to_string(path).expect("mail file"))
        .find(|text| {
            text.lines().next() == Some(first_line.as_str())
                && text.lines().any(|line| line.starts_with("Subject:") && line.contains(subject))
        })
        .unwrap_or_else(|| panic!("no mail '{subject}' to {to}"));
    let (_, body) = mail.split_once("\n\n").expect("headers, blank line, body");
    body.lines()
        .map(str::trim)
        .find(|line| line.len() >= 20 && line.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        .unwrap_or_else(|| panic!("no code in mail: {mail}"))
        .to_string()
}

pub(crate) fn mailed_code(server: &TestServer, to: &str, subject: &str) -> String {
    mailed_code_in(std::path::Path::new(&server.state.config.mail_dir), to, subject)
}

pub(crate) async fn api_post(server: &TestServer, path: &str, bearer: Option<&str>, body: &Value) -> reqwest::Response {
    let mut request = reqwest::Client::new().post(server.url(path)).json(body);
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    request.send().await.expect("POST")
}

/// The first-party password login of the JSON API: its token answer.
pub(crate) async fn api_login(server: &TestServer, email: &str, password: &str) -> Value {
    let response = api_post(server, "/api/v1/auth/login", None, &json!({ "email": email, "password": password })).await;
    assert_eq!(response.status(), 200, "API login of {email}");
    json(response).await
}

/// Whether a browser session with this cookie value still signs `client` in silently.
pub(crate) async fn session_alive(server: &TestServer, client: &TestClient, session: &str) -> bool {
    let pkce = pkce();
    let response = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("http client")
        .get(authorize_url(server, client, &pkce, &[("prompt", "none")]))
        .header("cookie", format!("oxidp_session={session}"))
        .send()
        .await
        .expect("authorize");
    let params = query_of(&location(&response));
    match (params.get("code"), params.get("error").map(String::as_str)) {
        (Some(_), _) => true,
        (None, Some("login_required")) => false,
        other => panic!("unexpected answer to prompt=none: {other:?}"),
    }
}

/// An /authorize URL like `authorize_url`'s, with another `redirect_uri`.
fn authorize_redirecting_to(
    server: &TestServer,
    client: &TestClient,
    pkce: &Pkce,
    redirect_uri: &str,
    extra: &[(&str, &str)],
) -> String {
    let url = authorize_url(server, client, pkce, extra);
    let registered: String = url::form_urlencoded::byte_serialize(REDIRECT.as_bytes()).collect();
    let replaced: String = url::form_urlencoded::byte_serialize(redirect_uri.as_bytes()).collect();
    let replaced = url.replacen(&format!("redirect_uri={registered}"), &format!("redirect_uri={replaced}"), 1);
    assert_ne!(url, replaced);
    replaced
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

/// The query parameters of a URL as a list (so repeats show).
fn query_pairs(url: &str) -> Vec<(String, String)> {
    let query = url.split_once('?').map(|(_, q)| q).unwrap_or("");
    url::form_urlencoded::parse(query.as_bytes()).into_owned().collect()
}

// ---------------------------------------------------------------------------------------------
// The walk

#[derive(Clone, Debug)]
struct Seen {
    what: String,
    post: bool,
    status: u16,
    headers: HeaderMap,
    body: String,
}

impl Seen {
    fn location(&self) -> Option<&str> {
        header(&self.headers, "location")
    }

    fn is_html(&self) -> bool {
        header(&self.headers, "content-type").is_some_and(|ct| ct.starts_with("text/html"))
    }
}

struct Walk {
    server: TestServer,
    client: TestClient,
    seen: Vec<Seen>,
    /// Every credential handed out during the walk, by what it is.
    secrets: Vec<(String, String)>,
}

impl Walk {
    async fn record(&mut self, what: &str, post: bool, response: reqwest::Response) -> Seen {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.text().await.expect("body");
        let seen = Seen { what: what.to_string(), post, status, headers, body };
        self.seen.push(seen.clone());
        seen
    }

    async fn get(&mut self, http: &reqwest::Client, what: &str, url: &str) -> Seen {
        let response = http.get(url).send().await.expect("GET");
        self.record(what, false, response).await
    }

    async fn post(&mut self, http: &reqwest::Client, what: &str, path: &str, form: &[(&str, &str)]) -> Seen {
        let response = http.post(self.server.url(path)).form(form).send().await.expect("POST");
        self.record(what, true, response).await
    }

    fn secret(&mut self, what: &str, value: &str) {
        assert!(!value.is_empty(), "{what} is empty");
        self.secrets.push((what.to_string(), value.to_string()));
    }
}

fn expect_location(seen: &Seen, prefix: &str) -> String {
    let location = seen.location().unwrap_or_else(|| panic!("{}: no redirect ({})", seen.what, seen.status));
    assert!(location.starts_with(prefix), "{}: redirected to {location}, expected {prefix}…", seen.what);
    location.to_string()
}

fn form_of(seen: &Seen) -> (String, String) {
    let csrf = form_field(&seen.body, "csrf").unwrap_or_else(|| panic!("{}: no csrf field", seen.what));
    let request = form_field(&seen.body, "request").unwrap_or_default();
    (csrf, request)
}

/// Every page, redirect and API answer of the flows, with the credentials they handed out.
async fn walk(backend: Backend) -> Walk {
    let server = TestServer::start(backend).await;
    server.user(ALICE, PASSWORD).await;
    let client =
        server.client(&["--name", "Walk App", "--redirect-uri", REDIRECT, "--post-logout-redirect-uri", BYE]).await;
    let mut walk = Walk { server, client: client.clone(), seen: Vec::new(), secrets: Vec::new() };
    walk.secret("password", PASSWORD);
    walk.secret("client secret", client.secret.as_deref().expect("confidential client"));
    let base = walk.server.base.clone();
    let (http, jar) = http_with_jar();

    // Authorize → login (a wrong password first) → consent → code.
    let pkce = pkce();
    let seen = walk.get(&http, "authorize", &authorize_url(&walk.server, &client, &pkce, &[])).await;
    let login = expect_location(&seen, "/login?");
    let page = walk.get(&http, "login page", &walk.server.url(&login)).await;
    let (csrf, request) = form_of(&page);
    let form = [("csrf", csrf.as_str()), ("request", &request), ("email", ALICE), ("password", "wrong password!")];
    let page = walk.post(&http, "login, wrong password", "/login", &form).await;
    assert_eq!(page.status, 401);
    let (csrf, _) = form_of(&page);
    let form = [("csrf", csrf.as_str()), ("request", &request), ("email", ALICE), ("password", PASSWORD)];
    let seen = walk.post(&http, "login", "/login", &form).await;
    let consent = expect_location(&seen, "/consent?");
    let session = jar_cookie(&walk.server, &jar, "oxidp_session").expect("session cookie");
    walk.secret("session cookie", &session);
    walk.secret("CSRF cookie", &jar_cookie(&walk.server, &jar, "oxidp_csrf").expect("CSRF cookie"));
    let page = walk.get(&http, "consent page", &walk.server.url(&consent)).await;
    let (csrf, request) = form_of(&page);
    let form = [("csrf", csrf.as_str()), ("request", &request), ("decision", "approve")];
    let seen = walk.post(&http, "consent", "/consent", &form).await;
    let code = query_of(&expect_location(&seen, REDIRECT))["code"].clone();
    walk.secret("code", &code);

    // The RP redeems it.
    let response = redeem(&walk.server, &client, &code, &pkce.verifier).await;
    let tokens: Value = serde_json::from_str(&walk.record("token response", true, response).await.body).expect("JSON");
    for name in ["access_token", "refresh_token", "id_token"] {
        walk.secret(name, tokens[name].as_str().unwrap_or_else(|| panic!("{name}")));
    }
    let access = tokens["access_token"].as_str().expect("access token").to_string();
    let id_token = tokens["id_token"].as_str().expect("id token").to_string();
    let userinfo = reqwest::Client::new().get(walk.server.url("/userinfo")).bearer_auth(&access).send().await;
    walk.record("userinfo", false, userinfo.expect("userinfo")).await;

    // Silent authorization with the session, consent denied, and error redirects.
    let silent = crate::common::pkce();
    let seen = walk
        .get(&http, "silent authorize", &authorize_url(&walk.server, &client, &silent, &[("prompt", "none")]))
        .await;
    let silent_code = query_of(&expect_location(&seen, REDIRECT))["code"].clone();
    walk.secret("silent code", &silent_code);
    let seen = walk
        .get(&http, "authorize, consent asked", &authorize_url(&walk.server, &client, &pkce, &[("prompt", "consent")]))
        .await;
    let consent = expect_location(&seen, "/consent?");
    let page = walk.get(&http, "consent page again", &walk.server.url(&consent)).await;
    let (csrf, request) = form_of(&page);
    let form = [("csrf", csrf.as_str()), ("request", &request), ("decision", "deny")];
    let seen = walk.post(&http, "consent denied", "/consent", &form).await;
    assert_eq!(query_of(&expect_location(&seen, REDIRECT))["error"], "access_denied");
    let seen = walk
        .get(&http, "authorize, bad scope", &authorize_url(&walk.server, &client, &pkce, &[("scope", "openid nope")]))
        .await;
    assert_eq!(query_of(&expect_location(&seen, REDIRECT))["error"], "invalid_scope");
    let anonymous = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    let seen = walk
        .get(
            &anonymous,
            "silent authorize, no session",
            &authorize_url(&walk.server, &client, &pkce, &[("prompt", "none")]),
        )
        .await;
    assert_eq!(query_of(&expect_location(&seen, REDIRECT))["error"], "login_required");

    // Error pages, pages without a request, and a POSTed authorization request.
    let unknown = TestClient { id: "no-such-client".into(), secret: None };
    let seen = walk.get(&http, "authorize, unknown client", &authorize_url(&walk.server, &unknown, &pkce, &[])).await;
    assert_eq!(seen.status, 400);
    let bad_redirect = authorize_redirecting_to(&walk.server, &client, &pkce, "https://evil.example/callback", &[]);
    let seen = walk.get(&http, "authorize, unregistered redirect_uri", &bad_redirect).await;
    assert_eq!(seen.status, 400);
    walk.get(&http, "consent without a request", &format!("{base}/consent")).await;
    walk.get(&http, "login page without a request", &format!("{base}/login")).await;
    let form = [
        ("response_type", "code"),
        ("client_id", client.id.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_challenge", pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
        ("state", "posted"),
    ];
    let seen = walk.post(&http, "POST authorize", "/authorize", &form).await;
    expect_location(&seen, "/authorize?");

    // Logout: confirmation page, an invalid hint, a confirmed logout to a registered URI.
    walk.get(&http, "logout confirmation", &format!("{base}/logout")).await;
    walk.get(&http, "logout, invalid hint", &format!("{base}/logout?id_token_hint=garbage")).await;
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([("client_id", client.id.as_str()), ("post_logout_redirect_uri", BYE), ("state", "s")])
        .finish();
    let page = walk.get(&http, "logout confirmation for a client", &format!("{base}/logout?{query}")).await;
    let (csrf, _) = form_of(&page);
    let form = [
        ("csrf", csrf.as_str()),
        ("client_id", client.id.as_str()),
        ("post_logout_redirect_uri", BYE),
        ("state", "s"),
        ("confirm", "yes"),
    ];
    let seen = walk.post(&http, "logout confirmed", "/logout", &form).await;
    expect_location(&seen, BYE);
    assert!(!session_alive(&walk.server, &client, &session).await, "the walk's logout ended the session");
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([("id_token_hint", id_token.as_str())])
        .finish();
    walk.get(&http, "logout with a hint", &format!("{base}/logout?{query}")).await;

    // The JSON API, documents, and what is not there.
    let api = api_login(&walk.server, ALICE, PASSWORD).await;
    let api_access = api["access_token"].as_str().expect("API access token").to_string();
    walk.secret("API access token", &api_access);
    walk.secret("API refresh token", api["refresh_token"].as_str().expect("API refresh token"));
    let me = reqwest::Client::new().get(walk.server.url("/api/v1/users/me")).bearer_auth(&api_access).send().await;
    walk.record("account API", false, me.expect("me")).await;
    for path in [
        "/docs",
        "/docs/oauth-receiver.html",
        "/openapi.json",
        "/.well-known/openid-configuration",
        "/jwks.json",
        "/no-such-page",
        "/api/v1/no-such-route",
    ] {
        walk.get(&anonymous, path, &format!("{base}{path}")).await;
    }
    let response = reqwest::Client::new()
        .post(walk.server.url("/token"))
        .form(&[("grant_type", "authorization_code"), ("code", "nope")])
        .send()
        .await
        .expect("token");
    walk.record("token error", true, response).await;
    walk
}

// ---------------------------------------------------------------------------------------------
// RFC 9700 §4.4 mix-up: RFC 9207 `iss` in every authorization response

async fn mix_up_every_authorization_response_names_the_issuer(backend: Backend) {
    let walk = walk(backend).await;
    let base = &walk.server.base;
    for path in ["/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"] {
        let document = json(reqwest::get(walk.server.url(path)).await.expect("discovery")).await;
        assert_eq!(document["issuer"], base.as_str(), "{path}");
        assert_eq!(document["authorization_response_iss_parameter_supported"], true, "{path}");
        // Only query responses: no fragment or web-message modes (RFC 9700 §4.17) to mix up either.
        assert_eq!(document["response_modes_supported"], json!(["query"]), "{path}");
        assert_eq!(document["response_types_supported"], json!(["code"]), "{path}");
    }
    let to_client: Vec<&Seen> =
        walk.seen.iter().filter(|seen| seen.location().is_some_and(|l| l.starts_with(REDIRECT))).collect();
    let (mut codes, mut errors) = (0, 0);
    for seen in &to_client {
        let location = seen.location().expect("location");
        let issuers: Vec<String> =
            query_pairs(location).into_iter().filter(|(key, _)| key == "iss").map(|(_, value)| value).collect();
        assert_eq!(issuers, vec![base.clone()], "{}: exactly one iss, the issuer: {location}", seen.what);
        let params = query_of(location);
        codes += usize::from(params.contains_key("code"));
        errors += usize::from(params.contains_key("error"));
    }
    // After the consent form, after silent authorization; denied, bad scope, login required.
    assert!(codes >= 2 && errors >= 3, "{codes} code and {errors} error responses seen");
}

// ---------------------------------------------------------------------------------------------
// RFC 9700 §4.2 credential leakage via Referer

async fn referer_leakage_no_referrer_and_no_credentials_in_pages(backend: Backend) {
    let walk = walk(backend).await;
    let pages: Vec<&Seen> = walk.seen.iter().filter(|seen| seen.is_html()).collect();
    assert!(pages.len() >= 12, "the walk saw {} pages", pages.len());
    for seen in &walk.seen {
        assert_eq!(header(&seen.headers, "referrer-policy"), Some("no-referrer"), "{}", seen.what);
    }
    for page in pages {
        for (what, secret) in &walk.secrets {
            assert!(!page.body.contains(secret.as_str()), "{}: the page shows the {what}", page.what);
        }
        // No resource or link elsewhere that a Referer (with this page's URL) could go to. Swagger
        // UI builds its markup in scripts: there the CSP keeps every load on this origin.
        if page.what.starts_with("/docs") {
            let csp = header(&page.headers, "content-security-policy").expect("CSP");
            assert!(!csp.contains("http:") && !csp.contains("https:") && !csp.contains('*'), "{}: {csp}", page.what);
            continue;
        }
        assert!(page.body.contains(r#"<meta name="referrer" content="no-referrer">"#), "{}", page.what);
        for attribute in ["src=\"", "href=\"", "action=\""] {
            for (at, _) in page.body.match_indices(attribute) {
                let value = &page.body[at + attribute.len()..];
                let value = &value[..value.find('"').unwrap_or(value.len())];
                let local = (value.starts_with('/') && !value.starts_with("//")) || value.starts_with('#');
                assert!(local, "{}: {attribute}{value}\" leaves this server", page.what);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// RFC 9700 §4.16 clickjacking

async fn clickjacking_no_response_may_be_framed(backend: Backend) {
    let walk = walk(backend).await;
    for seen in &walk.seen {
        assert_eq!(header(&seen.headers, "x-frame-options"), Some("DENY"), "{}", seen.what);
        let csp = header(&seen.headers, "content-security-policy").unwrap_or_else(|| panic!("{}: no CSP", seen.what));
        assert!(csp.split(';').any(|d| d.trim() == "frame-ancestors 'none'"), "{}: {csp}", seen.what);
    }
}

// ---------------------------------------------------------------------------------------------
// RFC 9700 §4.11 open redirection (and §4.1 redirect URI manipulation)

async fn open_redirect_only_to_this_server_or_registered_uris(backend: Backend) {
    let walk = walk(backend).await;
    for seen in &walk.seen {
        if let Some(location) = seen.location() {
            let here = location.starts_with('/') && !location.starts_with("//");
            let registered = location.starts_with(&format!("{REDIRECT}?"))
                || location == BYE
                || location.starts_with(&format!("{BYE}?"));
            assert!(here || registered, "{}: redirects to {location}", seen.what);
        }
    }

    // Tricks on the redirect URI never redirect, whatever else is wrong with the request.
    let (server, client) = (&walk.server, &walk.client);
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    let pkce = pkce();
    let tricks = [
        "http://127.0.0.1:9999@evil.example/callback",
        "http://evil.example#@127.0.0.1:9999/callback",
        "http://127.0.0.1.evil.example:9999/callback",
        "http://127.0.0.1:9999/callback/../../evil",
        "http://127.0.0.1:9999/callback#fragment",
        "http://127.0.0.1:9999/callback?next=https://evil.example",
        "http://[::ffff:127.0.0.1]:9999/callback",
        "//evil.example/callback",
        "https://evil.example/callback",
        "javascript:alert(1)//http://127.0.0.1:9999/callback",
    ];
    for trick in tricks {
        for extra in
            [&[][..], &[("prompt", "none")][..], &[("response_type", "token")][..], &[("scope", "bad\"scope")][..]]
        {
            let mut url = authorize_redirecting_to(server, client, &pkce, trick, extra);
            if extra.iter().any(|(k, _)| *k == "response_type") {
                url = url.replacen("response_type=code&", "", 1);
            }
            let response = http.get(&url).send().await.expect("authorize");
            assert_eq!(response.status(), 400, "{trick} {extra:?}");
            assert!(response.headers().get("location").is_none(), "{trick} {extra:?}: redirected");
            assert!(!response.text().await.expect("page").contains("evil.example"), "{trick}: page links to it");
        }
    }

    // A forged pending-request id on the login form leads nowhere but an error page.
    let (browser, _) = http_with_jar();
    let page = browser.get(server.url("/login")).send().await.expect("login page").text().await.expect("html");
    let csrf = form_field(&page, "csrf").expect("csrf");
    for request in ["https://evil.example/", "//evil.example", "../../evil", "no-such-request"] {
        let response = browser
            .post(server.url("/login"))
            .form(&[("csrf", csrf.as_str()), ("request", request), ("email", ALICE), ("password", PASSWORD)])
            .send()
            .await
            .expect("POST");
        let location = response.headers().get("location").map(|l| l.to_str().expect("ascii").to_string());
        assert!(
            location.as_deref().is_none_or(|l| l.starts_with('/') && !l.starts_with("//")),
            "{request}: {location:?}"
        );
    }

    // Logout: with a valid hint, only a registered post_logout_redirect_uri is followed.
    let browser = Browser::new();
    let (code, verifier) = obtain_code(server, &browser, client, &[]).await;
    let id_token = json(redeem(server, client, &code, &verifier.verifier).await).await["id_token"]
        .as_str()
        .expect("id token")
        .to_string();
    for target in [
        "https://app.example/bye/../evil",
        "https://app.example.evil.example/bye",
        "https://app.example/bye?next=https://evil.example",
        "//evil.example/bye",
        "https://APP.example/bye",
    ] {
        let query = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs([("id_token_hint", id_token.as_str()), ("post_logout_redirect_uri", target)])
            .finish();
        let response = browser.get(&server.url(&format!("/logout?{query}"))).await;
        assert_eq!(response.status(), 400, "{target}");
        assert!(response.headers().get("location").is_none(), "{target}");
    }
}

// ---------------------------------------------------------------------------------------------
// RFC 9700 §4.12 307 redirect: a form with a password is never re-POSTed elsewhere

async fn form_posts_are_answered_with_303_never_307(backend: Backend) {
    let walk = walk(backend).await;
    let posted_redirects: Vec<&Seen> =
        walk.seen.iter().filter(|seen| seen.post && (300..400).contains(&seen.status)).collect();
    assert!(posted_redirects.len() >= 4, "login, consent (twice), POST authorize, logout");
    for seen in posted_redirects {
        assert_eq!(seen.status, 303, "{}", seen.what);
    }
    for seen in &walk.seen {
        assert!(![307, 308].contains(&seen.status), "{}: {}", seen.what, seen.status);
    }
}

// ---------------------------------------------------------------------------------------------
// RFC 9700 §4.5 authorization code injection

async fn code_injection_a_code_needs_its_client_redirect_uri_and_verifier(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.user(ALICE, PASSWORD).await;
    let client = server.client(&["--name", "Victim RP", "--redirect-uri", REDIRECT]).await;
    let other = server.client(&["--name", "Attacker RP", "--redirect-uri", REDIRECT]).await;
    let public = server.client(&["--name", "Public RP", "--redirect-uri", REDIRECT, "--public"]).await;
    let browser = Browser::new();
    let attacker_pkce = pkce();

    let cases = [
        "another client",
        "a public client",
        "another redirect_uri",
        "no redirect_uri",
        "the attacker's verifier",
        "no verifier",
    ];
    for case in cases {
        let (code, pkce) = obtain_code(&server, &browser, &client, &[]).await;
        let (by, verifier, redirect_uri) = match case {
            "another client" => (&other, Some(&pkce.verifier), Some(REDIRECT)),
            "a public client" => (&public, Some(&pkce.verifier), Some(REDIRECT)),
            "another redirect_uri" => (&client, Some(&pkce.verifier), Some("http://127.0.0.1:9999/other")),
            "no redirect_uri" => (&client, Some(&pkce.verifier), None),
            "the attacker's verifier" => (&client, Some(&attacker_pkce.verifier), Some(REDIRECT)),
            _ => (&client, None, Some(REDIRECT)),
        };
        let mut form = vec![("grant_type", "authorization_code"), ("code", code.as_str())];
        form.extend(redirect_uri.map(|uri| ("redirect_uri", uri)));
        form.extend(verifier.map(|verifier| ("code_verifier", verifier.as_str())));
        let response = token_request(&server, by, &form).await;
        assert_eq!(response.status(), 400, "{case}");
        assert_eq!(json(response).await["error"], "invalid_grant", "{case}");
        // A code tried in the wrong place is spent: not even its own client gets tokens with it now.
        let response = redeem(&server, &client, &code, &pkce.verifier).await;
        assert_eq!(response.status(), 400, "{case}: the code is burnt");
    }
    // The genuine exchange works.
    let (code, pkce) = obtain_code(&server, &browser, &client, &[]).await;
    assert_eq!(redeem(&server, &client, &code, &pkce.verifier).await.status(), 200);
}

// ---------------------------------------------------------------------------------------------
// Token confusion (RFC 8725 §3.11, RFC 9068 §4): one token type accepted where another belongs

async fn access_token_is_not_an_id_token_hint(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.user(ALICE, PASSWORD).await;
    let client = server.client(&["--name", "RP", "--redirect-uri", REDIRECT, "--post-logout-redirect-uri", BYE]).await;
    let service = server.client(&["--name", "Service", "--grant-types", "client_credentials", "--scopes", "api"]).await;
    let (http, jar) = http_with_jar();
    let browser = Browser { http };
    let (code, pkce) = obtain_code(&server, &browser, &client, &[]).await;
    let tokens = json(redeem(&server, &client, &code, &pkce.verifier).await).await;
    let session = jar_cookie(&server, &jar, "oxidp_session").expect("session");
    let access = tokens["access_token"].as_str().expect("access token");
    // The access token's audience is the client, like an ID token's.
    assert_eq!(
        server.verify_jwt(access, &client.id, "at+jwt").await["sub"],
        server.verify_jwt(tokens["id_token"].as_str().expect("id"), &client.id, "JWT").await["sub"]
    );
    let service_token =
        json(token_request(&server, &service, &[("grant_type", "client_credentials")]).await).await["access_token"]
            .as_str()
            .expect("client token")
            .to_string();

    for (what, hint) in [("access token", access), ("client_credentials token", service_token.as_str())] {
        for redirect in [Some(BYE), None] {
            let mut params = vec![("id_token_hint", hint)];
            if let Some(redirect) = redirect {
                params.push(("post_logout_redirect_uri", redirect));
            }
            let query = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(params).finish();
            let response = browser.get(&server.url(&format!("/logout?{query}"))).await;
            assert_eq!(response.status(), 400, "{what} as id_token_hint (redirect {redirect:?})");
            assert!(response.headers().get("location").is_none(), "{what}");
            assert!(session_alive(&server, &client, &session).await, "{what}: the session is kept");
        }
    }
    // The ID token itself ends the session.
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([("id_token_hint", tokens["id_token"].as_str().expect("id")), ("post_logout_redirect_uri", BYE)])
        .finish();
    let response = browser.get(&server.url(&format!("/logout?{query}"))).await;
    assert_eq!(response.status(), 303);
    assert!(!session_alive(&server, &client, &session).await);
}

async fn id_token_is_not_an_access_token(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.user(ALICE, PASSWORD).await;
    // A first-party client may ask for the account API: its ID token names the same user.
    let client = server
        .client(&["--name", "First", "--redirect-uri", REDIRECT, "--first-party", "--scopes", "openid email account"])
        .await;
    let browser = Browser::new();
    let (code, pkce) = obtain_code(&server, &browser, &client, &[("scope", "openid email account")]).await;
    let tokens = json(redeem(&server, &client, &code, &pkce.verifier).await).await;
    let (access, id_token) =
        (tokens["access_token"].as_str().expect("access"), tokens["id_token"].as_str().expect("id token"));
    let http = reqwest::Client::new();
    let me = |token: &str| http.get(server.url("/api/v1/users/me")).bearer_auth(token.to_string()).send();
    let userinfo = |token: &str| http.get(server.url("/userinfo")).bearer_auth(token.to_string()).send();
    assert_eq!(me(access).await.expect("me").status(), 200, "the access token works");
    assert_eq!(userinfo(access).await.expect("userinfo").status(), 200);
    assert_eq!(me(id_token).await.expect("me").status(), 401, "the ID token is no access token");
    assert_eq!(userinfo(id_token).await.expect("userinfo").status(), 401);
    let answer = json(client_post(&server, "/introspect", &client, &[("token", id_token)]).await).await;
    assert_eq!(answer, json!({ "active": false }));
}

/// RFC 9700 §4.15: a client's own token must never pass for a resource owner's.
async fn client_credentials_token_never_acts_as_a_user(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = server.user(ALICE, PASSWORD).await;
    let api = format!("{}/api", server.base);
    let service = server
        .client(&["--name", "Service", "--grant-types", "client_credentials", "--scopes", "api", "--audience", &api])
        .await;
    let response = token_request(&server, &service, &[("grant_type", "client_credentials")]).await;
    assert_eq!(response.status(), 200);
    let token = json(response).await["access_token"].as_str().expect("token").to_string();
    let claims = server.verify_jwt(&token, &api, "at+jwt").await;
    assert_eq!(claims["sub"], service.id.as_str(), "the client is its own subject");
    let http = reqwest::Client::new();
    let me = http.get(server.url("/api/v1/users/me")).bearer_auth(&token).send().await.expect("me");
    assert!([401, 403].contains(&me.status().as_u16()), "account API: {}", me.status());
    let info = http.get(server.url("/userinfo")).bearer_auth(&token).send().await.expect("userinfo");
    assert!([401, 403].contains(&info.status().as_u16()), "userinfo: {}", info.status());
    // Client ids are generated, and never in the form of a user's subject.
    assert!(uuid::Uuid::parse_str(&service.id).is_err(), "client id {}", service.id);
    assert!(uuid::Uuid::parse_str(&alice.sub).is_ok(), "user subjects are UUIDs");
    let more: [&[&str]; 2] = [
        &["--name", "x", "--redirect-uri", REDIRECT],
        &["--name", "y", "--grant-types", "client_credentials", "--scopes", "api"],
    ];
    for flags in more {
        assert!(uuid::Uuid::parse_str(&server.client(flags).await.id).is_err());
    }
}

// ---------------------------------------------------------------------------------------------
// RFC 9700 §4.13 (TLS-terminating proxies): X-Forwarded-For only from a trusted proxy

async fn forwarded_for_is_believed_only_from_trusted_proxies(backend: Backend) {
    async fn attempt(server: &TestServer, forwarded: &str, email: &str, password: &str) -> u16 {
        reqwest::Client::new()
            .post(server.url("/api/v1/auth/login"))
            .header("x-forwarded-for", forwarded)
            .json(&json!({ "email": email, "password": password }))
            .send()
            .await
            .expect("login")
            .status()
            .as_u16()
    }
    async fn audited_ips(server: &TestServer) -> Vec<String> {
        use oxidp::store::{AuditFilter, AuditStore};
        let filter = AuditFilter { action: Some("login.failed".into()), limit: 100, ..AuditFilter::default() };
        server.state.db.query_audit(&filter).await.expect("audit").into_iter().filter_map(|e| e.ip).collect()
    }

    // No trusted proxy: a header that changes with every request changes nothing.
    let server = TestServer::start_with(backend, |c| {
        c.login_ip_limit = 3;
        c.login_account_limit = 100;
    })
    .await;
    server.user(ALICE, PASSWORD).await;
    for i in 0..3 {
        let status =
            attempt(&server, &format!("203.0.113.{i}"), &format!("user{i}@example.com"), "wrong password!").await;
        assert_eq!(status, 401);
    }
    assert_eq!(attempt(&server, "198.51.100.77", ALICE, PASSWORD).await, 429, "the peer address is locked");
    assert!(audited_ips(&server).await.iter().all(|ip| ip == "127.0.0.1"), "the audit names the peer");

    // Behind a trusted proxy, the right-most untrusted hop is the client.
    let server = TestServer::start_with(backend, |c| {
        c.login_ip_limit = 3;
        c.login_account_limit = 100;
        c.trusted_proxies = vec!["127.0.0.1/32".parse().expect("cidr")];
    })
    .await;
    server.user(ALICE, PASSWORD).await;
    for i in 0..3 {
        let status = attempt(&server, "203.0.113.9", &format!("user{i}@example.com"), "wrong password!").await;
        assert_eq!(status, 401);
    }
    assert_eq!(attempt(&server, "203.0.113.9", ALICE, PASSWORD).await, 429, "that client is locked");
    // A spoofed left-most hop does not move the client off its real address.
    assert_eq!(attempt(&server, "198.51.100.1, 203.0.113.9", ALICE, PASSWORD).await, 429);
    assert_eq!(attempt(&server, "203.0.113.10", ALICE, PASSWORD).await, 200, "another client is not");
    assert!(audited_ips(&server).await.iter().all(|ip| ip == "203.0.113.9"));
}

/// The two other sides of `OXIDP_TRUSTED_PROXIES`: a list that does not hold the peer leaves the
/// header unbelieved; a chain of trusted proxies is walked to the right-most hop none of them is.
async fn forwarded_for_skips_trusted_hops_and_is_ignored_from_other_peers(backend: Backend) {
    /// The IP the audit log records for a failed login sent with these `X-Forwarded-For` headers.
    async fn client_ip_for(server: &TestServer, forwarded: &[&str]) -> String {
        use oxidp::store::{AuditFilter, AuditStore};
        let request_id = uuid::Uuid::new_v4().to_string();
        let mut request = reqwest::Client::new()
            .post(server.url("/api/v1/auth/login"))
            .header("x-request-id", &request_id)
            // A fresh account each time: the progressive delay per account must not answer first.
            .json(&json!({ "email": format!("nobody-{request_id}@example.com"), "password": "wrong password!" }));
        for header in forwarded {
            request = request.header("x-forwarded-for", *header);
        }
        assert_eq!(request.send().await.expect("login").status(), 401);
        let filter = AuditFilter { action: Some("login.failed".into()), limit: 100, ..AuditFilter::default() };
        let entries = server.state.db.query_audit(&filter).await.expect("audit");
        let entry = entries.into_iter().find(|e| e.request_id.as_deref() == Some(request_id.as_str()));
        entry.and_then(|entry| entry.ip).expect("the failed login is audited with an IP")
    }

    // Proxies are configured, but the peer (127.0.0.1) is not one of them: the header is the
    // client's own claim and changes nothing.
    let server =
        TestServer::start_with(backend, |c| c.trusted_proxies = vec!["10.0.0.0/8".parse().expect("cidr")]).await;
    assert_eq!(client_ip_for(&server, &["203.0.113.9"]).await, "127.0.0.1");
    assert_eq!(client_ip_for(&server, &["10.1.2.3"]).await, "127.0.0.1");

    // The peer and an inner proxy are trusted: the client is the hop left of the inner proxy,
    // neither the inner proxy nor whatever the client put further left.
    let server = TestServer::start_with(backend, |c| {
        c.trusted_proxies = vec!["127.0.0.1/32".parse().expect("cidr"), "10.0.0.0/8".parse().expect("cidr")]
    })
    .await;
    assert_eq!(client_ip_for(&server, &["198.51.100.1, 203.0.113.9, 10.1.2.3"]).await, "203.0.113.9");
    // Several headers are one list, in order.
    assert_eq!(client_ip_for(&server, &["198.51.100.1", "203.0.113.10, 10.9.9.9"]).await, "203.0.113.10");
    // Only trusted hops, or nothing usable: the peer itself is the client.
    assert_eq!(client_ip_for(&server, &["10.1.2.3, 10.4.5.6"]).await, "127.0.0.1");
    assert_eq!(client_ip_for(&server, &["unknown, not-an-ip"]).await, "127.0.0.1");
    assert_eq!(client_ip_for(&server, &[]).await, "127.0.0.1");
}

// ---------------------------------------------------------------------------------------------
// Account pre-hijacking (SPEC §2): an email someone registered without proving it is never linked

async fn unverified_local_account_is_never_linked_to_an_upstream_identity(backend: Backend) {
    let server = TestServer::start_with(backend, |c| c.internal_secret = Some(INTERNAL_SECRET.into())).await;
    let victim = "victim@example.com";
    // The attacker registers the victim's email with a password of their own.
    let response =
        api_post(&server, "/api/v1/auth/register", None, &json!({ "email": victim, "password": PASSWORD })).await;
    assert_eq!(response.status(), 201);
    let squatted = json(response).await;
    assert_eq!(squatted["email_verified"], false);

    // The victim arrives through the upstream (internal upsert by upstream subject).
    let upsert = |body: Value| {
        reqwest::Client::new()
            .post(server.url("/api/v1/internal/users/upsert-by-sub"))
            .header("X-Internal-Secret", INTERNAL_SECRET)
            .json(&body)
            .send()
    };
    let response = upsert(json!({ "sub": "ak-victim", "email": victim })).await.expect("upsert");
    assert_eq!(response.status(), 409, "never linked to an unverified account");
    assert_eq!(json(response).await["code"], "email_unverified");
    use oxidp::store::IdentityStore;
    assert!(server.state.db.identity("authentik", "ak-victim").await.expect("identity").is_none());

    // Once the email's owner proves it (the code went to the real mailbox), linking is allowed.
    let code = mailed_code(&server, victim, "Confirm");
    let response = api_post(&server, "/api/v1/auth/verify-email", None, &json!({ "token": code })).await;
    assert_eq!(response.status(), 204);
    let response = upsert(json!({ "sub": "ak-victim", "email": victim })).await.expect("upsert");
    assert_eq!(response.status(), 200);
    let linked = json(response).await;
    assert_eq!((linked["id"].clone(), linked["linked"].clone()), (squatted["id"].clone(), json!(true)));
}

// ---------------------------------------------------------------------------------------------
// Credential stuffing: locks are audited and look the same for accounts that do not exist

async fn lockouts_are_audited_alike_for_known_and_unknown_accounts(backend: Backend) {
    let server = TestServer::start_with(backend, |c| c.login_delay = 0).await;
    server.user(ALICE, PASSWORD).await;
    let limit = server.state.config.login_account_limit;
    for email in [ALICE, "ghost@example.com"] {
        for _ in 0..limit {
            let response =
                api_post(&server, "/api/v1/auth/login", None, &json!({ "email": email, "password": "wrong guess!" }))
                    .await;
            assert_eq!(response.status(), 401);
        }
        let response =
            api_post(&server, "/api/v1/auth/login", None, &json!({ "email": email, "password": PASSWORD })).await;
        assert_eq!(response.status(), 429, "{email} is locked");
        assert!(response.headers().get("retry-after").is_some());
    }
    use oxidp::store::{AuditFilter, AuditStore};
    let entries = |action: &str| {
        let filter = AuditFilter { action: Some(action.into()), limit: 100, ..AuditFilter::default() };
        let db = &server.state.db;
        async move { db.query_audit(&filter).await.expect("audit") }
    };
    let locked = entries("login.locked").await;
    assert_eq!(locked.len(), 2, "one audited lock each");
    assert_eq!(entries("login.failed").await.len() as i64, 2 * limit);
    let shape = |entry: &oxidp::store::AuditEntry| {
        let details: Value = serde_json::from_str(&entry.details).expect("details JSON");
        let keys: Vec<String> = details.as_object().expect("object").keys().cloned().collect();
        (entry.actor_type.clone(), entry.actor_id.clone(), entry.target_type.clone(), entry.target_id.clone(), keys)
    };
    assert_eq!(shape(&locked[0]), shape(&locked[1]), "the audit does not tell a real account from a ghost");
    for entry in &locked {
        assert!(!entry.details.contains(PASSWORD) && !entry.details.contains("ghost@example.com"));
        assert!(!entry.details.contains(ALICE), "the email is recorded hashed");
    }
}
