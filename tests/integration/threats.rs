//! Tests of the threat table (tests/THREATS.md) that hold for every response rather than one
//! module: mix-up (RFC 9207 `iss`), Referer leakage, clickjacking, open redirects and 307
//! redirects. Each fails when its defence is taken away. The table's other tests live with the
//! module they exercise.
//!
//! The tests share one "walk": a browser and an RP going through every page and redirect
//! of the flows (authorize, login, consent, silent authorize, errors, logout, docs, the APIs),
//! recording each response and every credential handed out on the way.

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
);

const ALICE: &str = "alice@example.com";
const BYE: &str = "https://app.example/bye";

// ---------------------------------------------------------------------------------------------
// Helpers

/// Whether a browser session with this cookie value still signs `client` in silently.
async fn session_alive(server: &TestServer, client: &TestClient, session: &str) -> bool {
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
