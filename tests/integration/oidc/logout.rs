//! RP-initiated logout (OIDC RP-Initiated Logout 1.0, SPEC §1) over real HTTP: the
//! `id_token_hint` (accepted when expired, refused when forged), registered
//! post-logout redirect URIs only, a CSRF-protected confirmation without a hint, and no access
//! token as a hint (RFC 8725 §3.11).

use std::sync::Arc;

use base64::Engine;
use reqwest::cookie::{CookieStore, Jar};
use serde_json::{Map, Value};

use crate::common::*;
use crate::on_both_backends;

on_both_backends!(
    valid_hint_ends_the_session_and_redirects,
    expired_hint_is_still_accepted,
    invalid_requests_show_an_error_page_and_keep_the_session,
    without_a_hint_a_confirmation_comes_first,
    hint_for_another_user_asks_for_confirmation,
    access_token_is_not_an_id_token_hint,
);

const BYE: &str = "https://app.example/bye";
const ALICE: &str = "alice@example.com";
const BOB: &str = "bob@example.com";

/// Logout request parameters.
type Form<'a> = Vec<(&'a str, &'a str)>;

async fn setup(backend: Backend) -> (TestServer, TestClient) {
    let server = TestServer::start(backend).await;
    server.user(ALICE, PASSWORD).await;
    let client =
        server.client(&["--name", "Logout App", "--redirect-uri", REDIRECT, "--post-logout-redirect-uri", BYE]).await;
    (server, client)
}

/// A browser whose cookie jar the test can read.
fn browser_with_jar() -> (Browser, Arc<Jar>) {
    let jar = Arc::new(Jar::default());
    let http = reqwest::Client::builder()
        .cookie_provider(jar.clone())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("http client");
    (Browser { http }, jar)
}

fn session_cookie(server: &TestServer, jar: &Jar) -> Option<String> {
    let url = reqwest::Url::parse(&server.base).expect("base URL");
    let header = jar.cookies(&url)?;
    header.to_str().ok()?.split("; ").find_map(|pair| pair.strip_prefix("oxidp_session=")).map(str::to_string)
}

/// A browser signed in as `email` through the code flow, its session cookie and the ID token.
async fn signed_in(server: &TestServer, client: &TestClient, email: &str) -> (Browser, Arc<Jar>, String, String) {
    let (browser, jar) = browser_with_jar();
    let pkce = pkce();
    let redirect =
        run_browser_flow(server, &browser, &authorize_url(server, client, &pkce, &[]), email, PASSWORD).await;
    let code = query_of(&redirect).get("code").unwrap_or_else(|| panic!("no code in {redirect}")).clone();
    let response = redeem(server, client, &code, &pkce.verifier).await;
    assert_eq!(response.status(), 200);
    let id_token = json(response).await["id_token"].as_str().expect("id_token").to_string();
    let session = session_cookie(server, &jar).expect("session cookie after login");
    (browser, jar, session, id_token)
}

/// Whether the session behind this cookie value still works, asked with that cookie alone.
async fn session_alive(server: &TestServer, client: &TestClient, session: &str) -> bool {
    let pkce = pkce();
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("http client");
    let response = http
        .get(authorize_url(server, client, &pkce, &[("prompt", "none")]))
        .header("cookie", format!("oxidp_session={session}"))
        .send()
        .await
        .expect("authorize");
    let redirect = location(&response);
    assert!(redirect.starts_with(REDIRECT), "{redirect}");
    let params = query_of(&redirect);
    match (params.get("code"), params.get("error").map(String::as_str)) {
        (Some(_), _) => true,
        (None, Some("login_required")) => false,
        _ => panic!("unexpected answer to prompt=none: {redirect}"),
    }
}

async fn logout(server: &TestServer, browser: &Browser, post: bool, params: &[(&str, &str)]) -> reqwest::Response {
    if post {
        browser.post_form(&server.url("/logout"), params).await
    } else {
        let query = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(params).finish();
        browser.get(&server.url(&format!("/logout?{query}"))).await
    }
}

async fn expect_page(response: reqwest::Response, status: u16) -> String {
    assert_eq!(response.status(), status);
    assert!(response.headers().get("location").is_none(), "no redirect: {:?}", response.headers().get("location"));
    assert!(cleared_session(&response).is_none(), "the session cookie is left alone");
    let content_type = response.headers()["content-type"].to_str().expect("ascii").to_string();
    assert!(content_type.starts_with("text/html"), "{content_type}");
    response.text().await.expect("html")
}

/// The Set-Cookie line that clears the session cookie, if any.
fn cleared_session(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find(|value| value.starts_with("oxidp_session=;") || value.starts_with("oxidp_session=\"\";"))
        .map(str::to_string)
}

fn expect_session_cleared(response: &reqwest::Response) {
    let line = cleared_session(response).expect("the session cookie is cleared");
    let attributes: Vec<String> = line.split(';').skip(1).map(|a| a.trim().to_ascii_lowercase()).collect();
    assert!(attributes.contains(&"max-age=0".to_string()), "{line}");
    assert!(attributes.contains(&"path=/".to_string()), "{line}");
    assert!(attributes.contains(&"httponly".to_string()), "{line}");
}

/// A form field with every HTML character reference decoded (askama writes `&` as `&#38;`,
/// which `common::form_field` leaves alone).
fn hidden_field(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let raw = &html[start..start + html[start..].find('"')?];
    let mut out = String::new();
    let mut rest = raw;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let end = rest[amp..].find(';').expect("entity ends with ;") + amp;
        let entity = &rest[amp + 1..end];
        let decoded = match entity {
            "amp" => '&',
            "lt" => '<',
            "gt" => '>',
            "quot" => '"',
            "apos" => '\'',
            _ => {
                let code = match entity.strip_prefix("#x").or_else(|| entity.strip_prefix("#X")) {
                    Some(hex) => u32::from_str_radix(hex, 16).expect("hex entity"),
                    None => entity.strip_prefix('#').expect("numeric entity").parse().expect("decimal entity"),
                };
                char::from_u32(code).expect("character")
            }
        };
        out.push(decoded);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    Some(out)
}

fn claims_of(jwt: &str) -> Map<String, Value> {
    let payload = jwt.split('.').nth(1).expect("payload");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).expect("base64url");
    serde_json::from_slice(&bytes).expect("claims")
}

/// The same claims and `kid`, signed with a key oxidp has never seen.
fn signed_by_stranger(id_token: &str) -> String {
    use josekit::jws::{JwsHeader, RS256};
    let kid = jsonwebtoken::decode_header(id_token).expect("header").kid.expect("kid");
    let key_pair = RS256.generate_key_pair(2048).expect("RSA key");
    let signer = RS256.signer_from_der(key_pair.to_der_private_key()).expect("signer");
    let mut header = JwsHeader::new();
    header.set_token_type("JWT");
    header.set_key_id(kid);
    let payload = josekit::jwt::JwtPayload::from_map(claims_of(id_token)).expect("payload");
    josekit::jwt::encode_with_signer(&payload, &header, &signer).expect("sign")
}

async fn valid_hint_ends_the_session_and_redirects(backend: Backend) {
    let (server, client) = setup(backend).await;
    for post in [false, true] {
        let (browser, jar, session, id_token) = signed_in(&server, &client, ALICE).await;
        assert!(session_alive(&server, &client, &session).await);
        let mut params =
            vec![("id_token_hint", id_token.as_str()), ("post_logout_redirect_uri", BYE), ("state", "bye state&x")];
        if post {
            params.push(("client_id", &client.id));
        }
        let response = logout(&server, &browser, post, &params).await;
        assert_eq!(response.status(), 303, "post={post}");
        let target = location(&response);
        assert!(target.starts_with(&format!("{BYE}?")), "{target}");
        assert_eq!(query_of(&target).get("state").map(String::as_str), Some("bye state&x"));
        expect_session_cleared(&response);
        assert!(session_cookie(&server, &jar).is_none(), "the browser dropped the cookie");
        assert!(
            !session_alive(&server, &client, &session).await,
            "the session ended on the server, not only in the browser"
        );
        let pkce = pkce();
        let response = browser.get(&authorize_url(&server, &client, &pkce, &[("prompt", "none")])).await;
        assert_eq!(query_of(&location(&response)).get("error").map(String::as_str), Some("login_required"));
    }

    // Without a post_logout_redirect_uri: a signed-out page. Without any session: still fine.
    let (browser, _, session, id_token) = signed_in(&server, &client, ALICE).await;
    let response = logout(&server, &browser, false, &[("id_token_hint", &id_token)]).await;
    assert_eq!(response.status(), 200);
    expect_session_cleared(&response);
    assert!(!session_alive(&server, &client, &session).await);
    let response =
        logout(&server, &Browser::new(), false, &[("id_token_hint", &id_token), ("post_logout_redirect_uri", BYE)])
            .await;
    assert_eq!(response.status(), 303);
    assert_eq!(location(&response), BYE);
}

async fn expired_hint_is_still_accepted(backend: Backend) {
    let (server, client) = setup(backend).await;
    let (browser, _, session, id_token) = signed_in(&server, &client, ALICE).await;
    server.clock.advance(server.state.config.id_token_ttl + 1);
    let exp = claims_of(&id_token)["exp"].as_i64().expect("exp");
    assert!(exp < server.clock_now(), "the hint has expired");
    assert!(session_alive(&server, &client, &session).await, "the session outlives the ID token");

    let response = logout(
        &server,
        &browser,
        false,
        &[("id_token_hint", &id_token), ("post_logout_redirect_uri", BYE), ("state", "s")],
    )
    .await;
    assert_eq!(response.status(), 303);
    assert_eq!(location(&response), format!("{BYE}?state=s"));
    expect_session_cleared(&response);
    assert!(!session_alive(&server, &client, &session).await);
}

async fn invalid_requests_show_an_error_page_and_keep_the_session(backend: Backend) {
    let (server, client) = setup(backend).await;
    let other = server
        .client(&[
            "--name",
            "Other App",
            "--redirect-uri",
            REDIRECT,
            "--post-logout-redirect-uri",
            "https://other.example/bye",
        ])
        .await;
    let (browser, jar, session, id_token) = signed_in(&server, &client, ALICE).await;

    let mut tampered = id_token.clone();
    let last = tampered.pop().expect("non-empty");
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    let stranger = signed_by_stranger(&id_token);
    let mut claims = claims_of(&id_token);
    claims.insert("iss".into(), Value::String("https://someone-else.example".into()));
    let foreign_issuer = server.state.keys.sign("JWT", &claims).expect("sign");
    let header = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
    let unsigned = format!("{header}.{}.", id_token.split('.').nth(1).expect("payload"));

    let cases: Vec<(&str, Form<'_>)> = vec![
        (
            "unregistered uri",
            vec![("id_token_hint", &id_token), ("post_logout_redirect_uri", "https://evil.example/bye")],
        ),
        (
            "other path",
            vec![("id_token_hint", &id_token), ("post_logout_redirect_uri", "https://app.example/bye/more")],
        ),
        (
            "extra query",
            vec![("id_token_hint", &id_token), ("post_logout_redirect_uri", "https://app.example/bye?x=1")],
        ),
        (
            "another client's uri",
            vec![("id_token_hint", &id_token), ("post_logout_redirect_uri", "https://other.example/bye")],
        ),
        ("uri without client", vec![("post_logout_redirect_uri", BYE)]),
        ("garbage hint", vec![("id_token_hint", "garbage"), ("post_logout_redirect_uri", BYE)]),
        ("tampered hint", vec![("id_token_hint", &tampered), ("post_logout_redirect_uri", BYE)]),
        ("hint signed by a stranger", vec![("id_token_hint", &stranger), ("post_logout_redirect_uri", BYE)]),
        ("hint from another issuer", vec![("id_token_hint", &foreign_issuer), ("post_logout_redirect_uri", BYE)]),
        ("unsigned hint", vec![("id_token_hint", &unsigned)]),
        ("client not in aud", vec![("id_token_hint", &id_token), ("client_id", &other.id)]),
        (
            "client not in aud, its own uri",
            vec![
                ("id_token_hint", &id_token),
                ("client_id", &other.id),
                ("post_logout_redirect_uri", "https://other.example/bye"),
            ],
        ),
        ("unknown client", vec![("client_id", "no-such-client"), ("post_logout_redirect_uri", BYE)]),
    ];
    for (case, params) in cases {
        for post in [false, true] {
            let response = logout(&server, &browser, post, &params).await;
            assert_eq!(response.status(), 400, "{case} (post={post})");
            let html = expect_page(response, 400).await;
            assert!(!html.contains("evil.example"), "{case}");
        }
    }
    assert_eq!(session_cookie(&server, &jar).as_deref(), Some(session.as_str()));
    assert!(session_alive(&server, &client, &session).await, "failed logouts end nothing");

    // The stranger's token really had the right claims: the real one with them works.
    let response = logout(
        &server,
        &browser,
        false,
        &[("id_token_hint", &id_token), ("client_id", &client.id), ("post_logout_redirect_uri", BYE)],
    )
    .await;
    assert_eq!(response.status(), 303);
    assert!(!session_alive(&server, &client, &session).await);
}

async fn without_a_hint_a_confirmation_comes_first(backend: Backend) {
    let (server, client) = setup(backend).await;
    let (browser, jar, session, _) = signed_in(&server, &client, ALICE).await;

    let html = expect_page(logout(&server, &browser, false, &[]).await, 200).await;
    let csrf = form_field(&html, "csrf").expect("csrf field on the confirmation page");
    assert!(html.contains("name=\"confirm\""), "a confirm button");
    let (stranger, _, _, _) = signed_in(&server, &client, ALICE).await;
    let stranger_csrf =
        form_field(&expect_page(logout(&server, &stranger, false, &[]).await, 200).await, "csrf").expect("csrf");

    let not_confirming: Vec<(&str, bool, Form<'_>)> = vec![
        ("no csrf", true, vec![("confirm", "yes")]),
        ("empty csrf", true, vec![("confirm", "yes"), ("csrf", "")]),
        ("another browser's csrf", true, vec![("confirm", "yes"), ("csrf", &stranger_csrf)]),
        ("no confirm", true, vec![("csrf", &csrf)]),
        ("a GET", false, vec![("confirm", "yes"), ("csrf", &csrf)]),
    ];
    for (case, post, params) in not_confirming {
        let html = expect_page(logout(&server, &browser, post, &params).await, 200).await;
        assert!(form_field(&html, "csrf").is_some(), "{case}: the confirmation page again");
        assert!(session_alive(&server, &client, &session).await, "{case}: the session is not ended");
    }
    // The right token without the browser's CSRF cookie.
    let bare = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("http client");
    let response = bare
        .post(server.url("/logout"))
        .header("cookie", format!("oxidp_session={session}"))
        .form(&[("confirm", "yes"), ("csrf", csrf.as_str())])
        .send()
        .await
        .expect("POST");
    expect_page(response, 200).await;
    assert!(session_alive(&server, &client, &session).await);

    let response = logout(&server, &browser, true, &[("confirm", "yes"), ("csrf", &csrf)]).await;
    assert_eq!(response.status(), 200);
    expect_session_cleared(&response);
    assert!(session_cookie(&server, &jar).is_none());
    assert!(!session_alive(&server, &client, &session).await, "confirmed: the session ended");

    // With client_id and a registered URI: the page carries them, and the POST redirects.
    let (browser, _, session, _) = signed_in(&server, &client, ALICE).await;
    let html = expect_page(
        logout(
            &server,
            &browser,
            false,
            &[("client_id", &client.id), ("post_logout_redirect_uri", BYE), ("state", "s&t <\"x\">")],
        )
        .await,
        200,
    )
    .await;
    assert!(html.contains("Logout App"), "the page names the client");
    let mut form: Vec<(String, String)> = Vec::new();
    for name in ["csrf", "client_id", "post_logout_redirect_uri", "state"] {
        form.push((name.to_string(), hidden_field(&html, name).unwrap_or_else(|| panic!("hidden {name}"))));
    }
    assert!(session_alive(&server, &client, &session).await, "showing the page ends nothing");
    form.push(("confirm".into(), "yes".into()));
    let fields: Form<'_> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let response = logout(&server, &browser, true, &fields).await;
    assert_eq!(response.status(), 303);
    assert_eq!(query_of(&location(&response)).get("state").map(String::as_str), Some("s&t <\"x\">"));
    expect_session_cleared(&response);
    assert!(!session_alive(&server, &client, &session).await);
}

async fn hint_for_another_user_asks_for_confirmation(backend: Backend) {
    let (server, client) = setup(backend).await;
    server.user(BOB, PASSWORD).await;
    let (_, _, alice_session, alice_hint) = signed_in(&server, &client, ALICE).await;
    let (bob, _, bob_session, _) = signed_in(&server, &client, BOB).await;

    let html = expect_page(
        logout(&server, &bob, false, &[("id_token_hint", &alice_hint), ("post_logout_redirect_uri", BYE)]).await,
        200,
    )
    .await;
    assert!(session_alive(&server, &client, &bob_session).await, "a hint for someone else does not end bob's session");
    let csrf = form_field(&html, "csrf").expect("confirmation page");
    let hint = hidden_field(&html, "id_token_hint").expect("hint forwarded");
    let response = logout(
        &server,
        &bob,
        true,
        &[("id_token_hint", &hint), ("post_logout_redirect_uri", BYE), ("confirm", "yes"), ("csrf", &csrf)],
    )
    .await;
    assert_eq!(response.status(), 303);
    assert_eq!(location(&response), BYE);
    assert!(!session_alive(&server, &client, &bob_session).await);
    assert!(session_alive(&server, &client, &alice_session).await, "alice's session in her own browser is untouched");
}

// ---------------------------------------------------------------------------------------------
// Token confusion (RFC 8725 §3.11, RFC 9068 §4): an access token is no ID token hint

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
