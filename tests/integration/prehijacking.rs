//! Account pre-hijacking (issue 12, item 4), replayed over HTTP: someone claims a victim's email
//! before the victim (by registering it, or through an upstream that does not prove it) and
//! keeps a way in after the victim takes the account over with a password reset.

use oxidp::config::Config;
use oxidp::store::{IdentityStore, UserStore};
use serde_json::{Value, json};

use crate::common::*;
use crate::federation::{assert_page, code_for_client, id_token_claims, mock_setup, mock_setup_with};
use crate::on_both_backends;

on_both_backends!(
    a_password_reset_ends_every_credential_the_squatter_made,
    a_password_reset_removes_upstream_identities_linked_before_the_email_was_proven,
    an_unproven_upstream_email_gives_an_account_without_email,
    a_trusted_issuers_first_token_without_email_trust_gives_an_account_without_email,
);

const VICTIM: &str = "victim@example.com";
const ATTACKER_PASSWORD: &str = "attacker chose this one";
const RESET_SUBJECT: &str = "Reset your password";
const DONE_SUBJECT: &str = "Your password was reset";

async fn post_json(server: &TestServer, path: &str, body: &Value) -> reqwest::Response {
    reqwest::Client::new().post(server.url(&format!("/api/v1{path}"))).json(body).send().await.expect("POST")
}

/// Every mail to `to` with `subject`, oldest first.
fn mails(server: &TestServer, to: &str, subject: &str) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(&server.state.config.mail_dir) else { return Vec::new() };
    let mut files: Vec<_> = entries.map(|entry| entry.expect("dir entry").path()).collect();
    files.sort();
    let (to, subject) = (format!("To: {to}"), format!("Subject: {subject}"));
    files
        .into_iter()
        .filter_map(|path| std::fs::read_to_string(path).ok())
        .filter(|text| text.lines().next() == Some(to.as_str()) && text.lines().any(|line| line == subject))
        .collect()
}

fn code_in(mail: &str) -> String {
    let (_, body) = mail.split_once("\n\n").expect("headers, blank line, body");
    body.lines()
        .map(str::trim)
        .find(|line| line.len() >= 20 && line.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        .expect("a code in the mail")
        .to_string()
}

/// The victim asks for a reset code and sets `password` with it.
async fn victim_resets(server: &TestServer, password: &str) {
    assert_eq!(post_json(server, "/auth/forgot-password", &json!({"email": VICTIM})).await.status(), 202);
    let code = code_in(mails(server, VICTIM, RESET_SUBJECT).last().expect("a reset mail to the victim"));
    let response = post_json(server, "/auth/reset-password", &json!({"token": code, "password": password})).await;
    assert_eq!(response.status(), 204, "reset");
}

/// (a) The squatter registers the victim's email, signs in (a refresh token, a browser session,
/// an API key), and the victim resets the password: everything the squatter held stops working,
/// the email counts as verified, and a mail tells the victim what was ended.
async fn a_password_reset_ends_every_credential_the_squatter_made(backend: Backend) {
    let server = TestServer::start(backend).await;
    let registered =
        post_json(&server, "/auth/register", &json!({"email": VICTIM, "password": ATTACKER_PASSWORD})).await;
    assert_eq!(registered.status(), 201);
    let login = post_json(&server, "/auth/login", &json!({"email": VICTIM, "password": ATTACKER_PASSWORD})).await;
    assert_eq!(login.status(), 200);
    let tokens = json(login).await;
    let access = tokens["access_token"].as_str().expect("access token").to_string();
    let refresh = tokens["refresh_token"].as_str().expect("refresh token").to_string();
    // Keys need a verified email (item 1), so the squatter's key stands for one an earlier
    // version let an unverified account make: the address is marked verified for the one
    // request, then unverified again, in the database.
    let owner = server.state.db.user_by_email(VICTIM).await.expect("db").expect("squatted account");
    server.state.db.set_email_verified(&owner.id, server.clock_now()).await.expect("verify");
    let created = reqwest::Client::new()
        .post(server.url("/api/v1/users/me/api-keys"))
        .bearer_auth(&access)
        .json(&json!({"name": "backdoor", "scopes": ["read:users", "write:users"]}))
        .send()
        .await
        .expect("create key");
    assert_eq!(created.status(), 201);
    let key = json(created).await["key"].as_str().expect("key").to_string();
    let unverify = "UPDATE users SET email_verified = $1, email_verified_at = NULL WHERE id = $2";
    let changed = match &server.state.db {
        oxidp::store::Db::Sqlite(pool) => {
            sqlx::query(unverify).bind(false).bind(&owner.id).execute(pool).await.map(|r| r.rows_affected())
        }
        oxidp::store::Db::Postgres(pool) => {
            sqlx::query(unverify).bind(false).bind(&owner.id).execute(pool).await.map(|r| r.rows_affected())
        }
    };
    assert_eq!(changed.expect("unverify"), 1);
    let me = |key: String| {
        let url = server.url("/api/v1/users/me");
        async move { reqwest::Client::new().get(url).header("X-API-Key", key).send().await.expect("GET me") }
    };
    assert_eq!(me(key.clone()).await.status(), 200, "the squatter's key works before the reset");

    victim_resets(&server, PASSWORD).await;

    assert_eq!(me(key).await.status(), 401, "the key is revoked by the reset");
    let refreshed = post_json(&server, "/auth/refresh", &json!({"refresh_token": refresh})).await;
    assert!(refreshed.status().is_client_error(), "the refresh token is revoked: {}", refreshed.status());
    let with_token = reqwest::Client::new().get(server.url("/api/v1/users/me")).bearer_auth(&access).send().await;
    assert_eq!(with_token.expect("GET me").status(), 401, "the access token's grant is revoked");
    let old = post_json(&server, "/auth/login", &json!({"email": VICTIM, "password": ATTACKER_PASSWORD})).await;
    assert_eq!(old.status(), 401, "the squatter's password is gone");

    let victim = server.state.db.user_by_email(VICTIM).await.expect("db").expect("account");
    assert!(victim.email_verified, "completing the reset proved the mailbox");
    let done = mails(&server, VICTIM, DONE_SUBJECT);
    assert_eq!(done.len(), 1, "one confirmation mail");
    assert!(done[0].contains("API key") && done[0].contains("session"), "{}", done[0]);
}

/// (a) With the dangerous opt-in, an upstream's unverified email made the account and linked
/// the squatter's upstream identity to it; the victim's reset removes that identity, so the
/// squatter's upstream sign-in no longer reaches the account.
async fn a_password_reset_removes_upstream_identities_linked_before_the_email_was_proven(backend: Backend) {
    let setup = mock_setup_with(backend, true, |config: &mut Config| {
        if let Some(corp) = config.upstream.get_mut("corp") {
            corp.trust_unverified_email = true;
        }
    })
    .await;
    let b = &setup.b;
    let begun = setup.begin("corp").await;
    let response = setup.answer("corp", &begun, setup.claims(&begun, "squatter", VICTIM, false)).await;
    let code = code_for_client(b, &setup.browser, response).await;
    let squatted = id_token_claims(b, &setup.rp, &code, &begun.pkce).await;
    let account = b.state.db.user_by_email(VICTIM).await.expect("db").expect("made with the unverified email");
    assert_eq!(squatted["sub"], account.sub.as_str());
    assert!(!account.email_verified);

    victim_resets(b, PASSWORD).await;

    assert!(b.state.db.identity("corp", "squatter").await.expect("db").is_none(), "the identity is removed");
    let done = mails(b, VICTIM, DONE_SUBJECT);
    assert!(done.last().expect("confirmation").contains("corp"), "the mail names the unlinked provider");
    // The squatter signs in upstream again: at most an offer to link with the (victim's) password.
    let begun = setup.begin("corp").await;
    let response = setup.answer("corp", &begun, setup.claims(&begun, "squatter", VICTIM, false)).await;
    assert_page(&response, 200, "a link offer, not a sign-in");
    assert!(b.state.db.identity("corp", "squatter").await.expect("db").is_none());
}

/// (b) An upstream that does not prove the email (not asserted verified, or a provider not
/// trusted for email) cannot claim it: the account it makes has no email, the victim can
/// still register the address, and a reset of the address never reaches the upstream account.
async fn an_unproven_upstream_email_gives_an_account_without_email(backend: Backend) {
    let setup = mock_setup(backend, true).await;
    let b = &setup.b;
    // Not asserted verified by a provider trusted for email, then asserted by one that is not.
    for (provider, subject, verified) in [("trusted", "squatter-1", false), ("corp", "squatter-2", true)] {
        let begun = setup.begin(provider).await;
        let response = setup.answer(provider, &begun, setup.claims(&begun, subject, VICTIM, verified)).await;
        let code = code_for_client(b, &setup.browser, response).await;
        let claims = id_token_claims(b, &setup.rp, &code, &begun.pkce).await;
        assert!(claims.get("email").is_none(), "{provider}: no email claim for an account without one");
        let identity = b.state.db.identity(provider, subject).await.expect("db").expect("identity");
        let user = b.state.db.user_by_id(&identity.user_id).await.expect("db").expect("user");
        assert_eq!(user.email, None, "{provider}: the unproven email is not stored");
        assert!(!user.email_verified);
    }
    assert!(b.state.db.user_by_email(VICTIM).await.expect("db").is_none());
    // A reset of the address reaches nobody.
    assert_eq!(post_json(b, "/auth/forgot-password", &json!({"email": VICTIM})).await.status(), 202);
    assert!(mails(b, VICTIM, RESET_SUBJECT).is_empty());
    // The victim registers the address; the squatters' upstream accounts stay apart from it.
    let registered = post_json(b, "/auth/register", &json!({"email": VICTIM, "password": PASSWORD})).await;
    assert_eq!(registered.status(), 201);
    let victim = json(registered).await;
    let begun = setup.begin("corp").await;
    let response = setup.answer("corp", &begun, setup.claims(&begun, "squatter-2", VICTIM, true)).await;
    let code = code_for_client(b, &setup.browser, response).await;
    let claims = id_token_claims(b, &setup.rp, &code, &begun.pkce).await;
    assert_ne!(claims["sub"], victim["sub"], "the squatter signs in to their own account only");
}

/// (b) A trusted issuer not trusted for email: its first token makes an account without email,
/// although the issuer says the address is verified.
async fn a_trusted_issuers_first_token_without_email_trust_gives_an_account_without_email(backend: Backend) {
    let a = TestServer::start(backend).await;
    let issuer = a.base.clone();
    let b = TestServer::start_with(backend, move |config: &mut Config| {
        let trusted = oxidp::config::TrustedIssuerConfig {
            issuer,
            audience: "oxidp-b-api".into(),
            jwks_url: None,
            trust_email: None,
            trust_unverified_email: false,
            timeout: Some(2),
            token_types: None,
        };
        config.trusted_issuer.insert("a".into(), trusted);
    })
    .await;
    let token = crate::trusted_issuers::token_from(&a, VICTIM, "oxidp-b-api").await;
    let response = reqwest::Client::new().get(b.url("/api/v1/users/me")).bearer_auth(&token).send().await;
    let response = response.expect("me");
    assert_eq!(response.status(), 200);
    let profile = json(response).await;
    assert!(profile["email"].is_null(), "{profile}");
    assert!(b.state.db.user_by_email(VICTIM).await.expect("db").is_none());
    assert_eq!(post_json(&b, "/auth/forgot-password", &json!({"email": VICTIM})).await.status(), 202);
    assert!(mails(&b, VICTIM, RESET_SUBJECT).is_empty(), "a reset of the address reaches nobody");
}
