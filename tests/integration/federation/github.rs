//! GitHub as the upstream (`src/federation/github.rs`) against a GitHub look-alike: PKCE, the
//! emails API for the primary address, GitHub's 200-with-error answers, and linking by email.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use oxidp::store::{IdentityStore, UserStore};
use poem::web::{Data, Form, Json};
use poem::{EndpointExt, Request, Route, get, handler, post};
use serde_json::{Value, json};

use super::*;
use crate::common::*;
use crate::on_both_backends;

on_both_backends!(github_login_with_pkce_and_the_emails_api);

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
