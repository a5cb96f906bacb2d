//! Linking upstream identities to local accounts (`src/federation/linking.rs`): the email rules,
//! the password that links waiting like the login page, and the identities API
//! (`/api/v1/users/me/identities`) that keeps the last way to sign in.

use oxidp::store::{IdentityStore, NewUser, UserStore};
use serde_json::json;

use super::*;
use crate::common::*;
use crate::on_both_backends;

on_both_backends!(
    linking_follows_the_email_rules,
    linking_with_a_password_waits_like_the_login_page,
    identities_are_listed_and_the_last_one_is_kept,
);

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
