//! `/api/v1/auth/*` (`src/api/account.rs`): registration, first-party login, refresh and logout
//! for the built-in `oxidp-api` client, email verification and password recovery.

use serde_json::json;

use super::*;
use crate::common::*;
use crate::on_both_backends;

on_both_backends!(
    register_creates_an_unverified_user_and_mails_a_code,
    register_enforces_the_password_policy,
    register_refuses_duplicate_and_invalid_emails,
    register_refuses_malformed_requests,
    register_is_forbidden_when_closed,
    login_issues_first_party_api_tokens,
    login_failures_look_the_same_for_unknown_emails,
    login_is_forbidden_when_switched_off,
    refresh_rotates_and_refuses_old_or_foreign_tokens,
    logout_revokes_the_token_family,
    verify_email_with_the_mailed_code,
    forgot_password_answers_the_same_for_unknown_emails,
    reset_password_with_the_mailed_code_ends_sessions_and_tokens,
    reset_password_refuses_expired_codes_and_weak_passwords,
    a_refused_weak_password_keeps_the_reset_code,
);

// ---------------------------------------------------------------------------------------------
// Registration

async fn register_creates_an_unverified_user_and_mails_a_code(backend: Backend) {
    let server = TestServer::start(backend).await;
    assert!(mails_to(&server, "dora@example.com").is_empty());
    let response = post_json(
        &server,
        "/auth/register",
        &json!({"email": "dora@example.com", "password": PASSWORD, "name": "Dora Explorer"}),
    )
    .await;
    assert_eq!(response.status(), 201);
    assert!(response.headers()["content-type"].to_str().expect("ct").starts_with("application/json"));
    let user = json(response).await;
    assert_eq!(user["email"], "dora@example.com");
    assert_eq!(user["email_verified"], false);
    assert_eq!(user["name"], "Dora Explorer");
    assert_eq!(user["role"], "user");
    assert_eq!(user["status"], "active");
    assert!(user["id"].as_str().is_some_and(|id| !id.is_empty()));
    assert!(user["sub"].as_str().is_some_and(|sub| !sub.is_empty()));
    let text = user.to_string();
    assert!(!text.contains("password") && !text.contains(PASSWORD), "no password material: {text}");

    let mails = mails_with_subject(&server, "dora@example.com", VERIFY_SUBJECT);
    assert_eq!(mails.len(), 1, "one verification mail");
    assert_eq!(mails_to(&server, "dora@example.com").len(), 1, "and nothing else");
    let code = code_in(&mails[0]);
    assert!(!text.contains(&code), "the code is only in the mail");

    // The new account logs in at once and is the one the answer described.
    let tokens = login_tokens(&server, "dora@example.com", PASSWORD).await;
    let claims = server.verify_jwt(&tokens.access, &format!("{}/api", server.base), "at+jwt").await;
    assert_eq!(claims["sub"], user["sub"]);
    let me = json(get_me(&server, &tokens.access).await).await;
    assert_eq!(me["id"], user["id"]);
    assert_eq!(me["email_verified"], false);
}

async fn register_enforces_the_password_policy(backend: Backend) {
    let server = TestServer::start(backend).await;
    let too_long = "a".repeat(257);
    let much_too_long = "b".repeat(1000);
    let weak = [
        "Sh0rt-pw!",       // 9 characters
        too_long.as_str(), // 257 characters
        much_too_long.as_str(),
        "password123",           // a common password
        "PASSWORD123",           // common, whatever the case
        "my-Erin-password-2024", // contains the email's local part
        "",
    ];
    for password in weak {
        let body = problem(register(&server, "erin@example.com", password).await, 400).await;
        assert_field(&body, "invalid_field", "password");
    }
    assert!(mails_to(&server, "erin@example.com").is_empty(), "no mail for refused registrations");
    assert_eq!(login(&server, "erin@example.com", "password123").await.status(), 401, "no account was created");

    // The limits themselves are allowed: 10 and 256 characters.
    assert_eq!(register(&server, "ten@example.com", "zq7!vx2#mw").await.status(), 201);
    assert_eq!(register(&server, "long@example.com", &"c".repeat(256)).await.status(), 201);
    assert_eq!(register(&server, "erin@example.com", PASSWORD).await.status(), 201);
}

async fn register_refuses_duplicate_and_invalid_emails(backend: Backend) {
    // More attempts per email than the default limit (unauthenticated_work.rs tests the limit).
    let server = TestServer::start_with(backend, |config| config.mail_email_limit = 10).await;
    server.user("alice@example.com", PASSWORD).await;
    let body = problem(register(&server, "Alice@Example.COM", PASSWORD).await, 409).await;
    assert_eq!(body["code"], "email_taken");

    assert_eq!(register(&server, "frank@example.com", PASSWORD).await.status(), 201);
    for duplicate in ["FRANK@example.com", "frank@EXAMPLE.com", " frank@example.com "] {
        let body = problem(register(&server, duplicate, NEW_PASSWORD).await, 409).await;
        assert_eq!(body["code"], "email_taken");
    }
    assert_eq!(mails_to(&server, "frank@example.com").len(), 1, "only the first registration mailed");
    // The first registration's password still holds.
    assert_eq!(login(&server, "frank@example.com", PASSWORD).await.status(), 200);

    for invalid in
        ["not-an-email", "frank@", "@example.com", "frank@localhost", "fr ank@example.com", "gus@@example.com", ""]
    {
        let body = problem(register(&server, invalid, PASSWORD).await, 400).await;
        assert_field(&body, "invalid_field", "email");
    }
}

async fn register_refuses_malformed_requests(backend: Backend) {
    let server = TestServer::start(backend).await;
    let valid = json!({"email": "gina@example.com", "password": PASSWORD}).to_string();

    // Malformed JSON, with the caller's request ID carried into the problem.
    let response = reqwest::Client::new()
        .post(api_url(&server, "/auth/register"))
        .header("content-type", "application/json")
        .header("x-request-id", "test-request-42")
        .body(r#"{"email": "gina@example.com", "password":"#)
        .send()
        .await
        .expect("POST");
    let body = problem(response, 400).await;
    assert_eq!(body["request_id"], "test-request-42");

    // An unknown field is refused, not ignored.
    let unknown = json!({"email": "gina@example.com", "password": PASSWORD, "role": "admin"});
    problem(post_json(&server, "/auth/register", &unknown).await, 400).await;
    // A missing field and a wrongly typed one.
    problem(post_json(&server, "/auth/register", &json!({"email": "gina@example.com"})).await, 400).await;
    problem(post_json(&server, "/auth/register", &json!({"email": 5, "password": PASSWORD})).await, 400).await;
    problem(post_json(&server, "/auth/register", &json!(["gina@example.com", PASSWORD])).await, 400).await;

    // Bodies over 64 KiB.
    let huge = json!({"email": "gina@example.com", "password": PASSWORD, "name": "n".repeat(70 * 1024)});
    let body = problem(post_json(&server, "/auth/register", &huge).await, 413).await;
    assert_eq!(body["code"], "payload_too_large");

    // Not JSON by its content type, or no content type at all.
    for content_type in [Some("text/plain"), Some("application/x-www-form-urlencoded"), None] {
        problem(post_raw(&server, "/auth/register", content_type, valid.clone()).await, 415).await;
    }

    // None of that created the account or sent mail; a proper request does.
    assert!(mails_to(&server, "gina@example.com").is_empty());
    assert_eq!(post_raw(&server, "/auth/register", Some("application/json"), valid).await.status(), 201);
}

async fn register_is_forbidden_when_closed(backend: Backend) {
    let server = TestServer::start_with(backend, |c| c.registration = oxidp::config::Registration::Closed).await;
    server.user("alice@example.com", PASSWORD).await;
    let body = problem(register(&server, "hank@example.com", PASSWORD).await, 403).await;
    assert!(body["detail"].as_str().is_some_and(|d| !d.is_empty()));
    assert!(mails_to(&server, "hank@example.com").is_empty());
    assert_eq!(login(&server, "hank@example.com", PASSWORD).await.status(), 401, "no account was created");
    // Only registration is closed: existing users still log in.
    login_tokens(&server, "alice@example.com", PASSWORD).await;
}

// ---------------------------------------------------------------------------------------------
// First-party login

async fn login_issues_first_party_api_tokens(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = server.user("alice@example.com", PASSWORD).await;
    let root = server.user_with_role("root@example.com", PASSWORD, true).await;
    let audience = format!("{}/api", server.base);

    let tokens = login_tokens(&server, "alice@example.com", PASSWORD).await;
    assert_eq!(tokens.body["token_type"], "Bearer");
    assert_eq!(tokens.body["expires_in"], 900);
    assert_eq!(scope_set(&tokens.body["scope"]), set_of(&["account", "offline_access"]));
    let claims = server.verify_jwt(&tokens.access, &audience, "at+jwt").await;
    assert_eq!(claims["sub"], alice.sub.as_str());
    assert_eq!(claims["client_id"], "oxidp-api");
    assert_eq!(scope_set(&claims["scope"]), set_of(&["account", "offline_access"]));
    let lifetime = claims["exp"].as_i64().expect("exp") - claims["iat"].as_i64().expect("iat");
    assert_eq!(lifetime, 900);
    let me = json(get_me(&server, &tokens.access).await).await;
    assert_eq!(me["email"], "alice@example.com");
    assert_eq!(me["role"], "user");

    // Emails are matched without regard to case.
    login_tokens(&server, "ALICE@Example.com", PASSWORD).await;

    let admin = login_tokens(&server, "root@example.com", PASSWORD).await;
    assert_eq!(scope_set(&admin.body["scope"]), set_of(&["account", "offline_access", "admin"]));
    let claims = server.verify_jwt(&admin.access, &audience, "at+jwt").await;
    assert_eq!(claims["sub"], root.sub.as_str());
    assert_eq!(scope_set(&claims["scope"]), set_of(&["account", "offline_access", "admin"]));
    assert_eq!(json(get_me(&server, &admin.access).await).await["role"], "admin");
}

async fn login_failures_look_the_same_for_unknown_emails(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.user("alice@example.com", PASSWORD).await;
    let wrong = problem(login(&server, "alice@example.com", "not the right password").await, 401).await;
    assert_eq!(wrong["code"], "invalid_credentials");
    let unknown = problem(login(&server, "nobody@example.com", PASSWORD).await, 401).await;
    assert_ne!(wrong["request_id"], unknown["request_id"], "each answer has its own request ID");
    assert_eq!(without_request_id(wrong.clone()), without_request_id(unknown), "same body for both");
    let empty = problem(login(&server, "alice@example.com", "").await, 401).await;
    assert_eq!(without_request_id(empty), without_request_id(wrong));
    // Malformed login bodies are problems too.
    problem(post_json(&server, "/auth/login", &json!({"email": "alice@example.com"})).await, 400).await;
    let extra = json!({"email": "alice@example.com", "password": PASSWORD, "remember": true});
    problem(post_json(&server, "/auth/login", &extra).await, 400).await;
}

async fn login_is_forbidden_when_switched_off(backend: Backend) {
    let server = TestServer::start_with(backend, |c| c.password_login_api = oxidp::config::Switch::Off).await;
    server.user("alice@example.com", PASSWORD).await;
    let client = server.client(&third_party_client_flags()).await;
    let limit = server.state.config.login_account_limit;
    let body = problem(login(&server, "alice@example.com", PASSWORD).await, 403).await;
    assert!(body["detail"].as_str().is_some_and(|d| !d.is_empty()));
    // Refused before any password check: failures are not counted against the account.
    for _ in 0..=limit {
        problem(login(&server, "alice@example.com", "wrong password!").await, 403).await;
    }
    // The login page still works.
    browser_login(&server, &client, "alice@example.com").await;
}

// ---------------------------------------------------------------------------------------------
// Refresh and logout

async fn refresh_rotates_and_refuses_old_or_foreign_tokens(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = server.user("alice@example.com", PASSWORD).await;
    let first = login_tokens(&server, "alice@example.com", PASSWORD).await;

    let second = refreshed_tokens(&server, &first.refresh).await;
    assert_ne!(second.refresh, first.refresh, "rotated");
    assert_ne!(second.access, first.access);
    assert_eq!(scope_set(&second.body["scope"]), set_of(&["account", "offline_access"]));
    let claims = server.verify_jwt(&second.access, &format!("{}/api", server.base), "at+jwt").await;
    assert_eq!(claims["sub"], alice.sub.as_str());
    assert_eq!(get_me(&server, &second.access).await.status(), 200);

    // Within the grace window the old token yields the same successor (concurrent refreshes).
    let concurrent = refreshed_tokens(&server, &first.refresh).await;
    assert_eq!(concurrent.refresh, second.refresh);

    // Beyond it, the old token is refused and the family is revoked.
    server.clock.advance(6);
    let body = problem(refresh(&server, &first.refresh).await, 401).await;
    assert_eq!(body["code"], "invalid_grant");
    problem(refresh(&server, &second.refresh).await, 401).await;

    // Garbage, and another client's refresh token.
    let body = problem(refresh(&server, "garbage-refresh-token").await, 401).await;
    assert_eq!(body["code"], "invalid_grant");
    let client = server.client(&third_party_client_flags()).await;
    let browser = Browser::new();
    let foreign = code_flow_tokens(&server, &browser, &client, "alice@example.com", &[]).await;
    let foreign_refresh = foreign["refresh_token"].as_str().expect("refresh token");
    assert_eq!(problem(refresh(&server, foreign_refresh).await, 401).await["code"], "invalid_grant");
    problem(post_json(&server, "/auth/refresh", &json!({})).await, 400).await;
}

async fn logout_revokes_the_token_family(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.user("alice@example.com", PASSWORD).await;
    let first = login_tokens(&server, "alice@example.com", PASSWORD).await;
    let second = login_tokens(&server, "alice@example.com", PASSWORD).await;
    assert_eq!(get_me(&server, &first.access).await.status(), 200);

    let response = logout(&server, &first.refresh).await;
    assert_eq!(response.status(), 204);
    assert!(response.text().await.expect("body").is_empty());
    assert_eq!(problem(refresh(&server, &first.refresh).await, 401).await["code"], "invalid_grant");
    let body = problem(get_me(&server, &first.access).await, 401).await;
    assert_eq!(body["code"], "invalid_token");

    // The other login is untouched.
    assert_eq!(get_me(&server, &second.access).await.status(), 200);
    refreshed_tokens(&server, &second.refresh).await;

    // Logging out with a rotated successor ends the access token issued before the rotation too.
    let third = login_tokens(&server, "alice@example.com", PASSWORD).await;
    let rotated = refreshed_tokens(&server, &third.refresh).await;
    assert_eq!(logout(&server, &rotated.refresh).await.status(), 204);
    problem(get_me(&server, &third.access).await, 401).await;
    problem(get_me(&server, &rotated.access).await, 401).await;
    problem(refresh(&server, &rotated.refresh).await, 401).await;

    // Unknown tokens and repeated logouts are quietly accepted.
    assert_eq!(logout(&server, "garbage-refresh-token").await.status(), 204);
    assert_eq!(logout(&server, &first.refresh).await.status(), 204);

    // A third-party client's refresh token is not the API's to revoke.
    let client = server.client(&third_party_client_flags()).await;
    let foreign = code_flow_tokens(&server, &Browser::new(), &client, "alice@example.com", &[]).await;
    let foreign_refresh = foreign["refresh_token"].as_str().expect("refresh token");
    assert_eq!(logout(&server, foreign_refresh).await.status(), 204);
    let response =
        token_request(&server, &client, &[("grant_type", "refresh_token"), ("refresh_token", foreign_refresh)]).await;
    assert_eq!(response.status(), 200, "the client's token still works");
    problem(post_json(&server, "/auth/logout", &json!({"token": "x"})).await, 400).await;
}

// ---------------------------------------------------------------------------------------------
// Email verification and password recovery

async fn verify_email_with_the_mailed_code(backend: Backend) {
    let server = TestServer::start(backend).await;
    for email in ["gina@example.com", "hank@example.com", "ivan@example.com", "jill@example.com"] {
        assert_eq!(register(&server, email, PASSWORD).await.status(), 201);
    }
    let code = latest_code(&server, "gina@example.com", VERIFY_SUBJECT);

    assert_field(&problem(verify_email(&server, "garbage-code").await, 400).await, "invalid_token", "token");
    let response = verify_email(&server, &code).await;
    assert_eq!(response.status(), 204);
    assert!(response.text().await.expect("body").is_empty());
    let tokens = login_tokens(&server, "gina@example.com", PASSWORD).await;
    assert_eq!(json(get_me(&server, &tokens.access).await).await["email_verified"], true);
    // Single use.
    assert_field(&problem(verify_email(&server, &code).await, 400).await, "invalid_token", "token");

    // A verification code is not a reset code, and trying it there does not use it up.
    let hank_code = latest_code(&server, "hank@example.com", VERIFY_SUBJECT);
    assert_field(
        &problem(reset_password(&server, &hank_code, NEW_PASSWORD).await, 400).await,
        "invalid_token",
        "token",
    );
    assert_eq!(login(&server, "hank@example.com", NEW_PASSWORD).await.status(), 401);
    assert_eq!(verify_email(&server, &hank_code).await.status(), 204);

    // Valid for 24 hours.
    let ivan_code = latest_code(&server, "ivan@example.com", VERIFY_SUBJECT);
    let jill_code = latest_code(&server, "jill@example.com", VERIFY_SUBJECT);
    server.clock.advance(24 * 3600 - 1);
    assert_eq!(verify_email(&server, &ivan_code).await.status(), 204);
    server.clock.advance(2);
    assert_field(&problem(verify_email(&server, &jill_code).await, 400).await, "invalid_token", "token");
    let jill = login_tokens(&server, "jill@example.com", PASSWORD).await;
    assert_eq!(json(get_me(&server, &jill.access).await).await["email_verified"], false);
    problem(post_json(&server, "/auth/verify-email", &json!({"code": jill_code})).await, 400).await;
}

async fn forgot_password_answers_the_same_for_unknown_emails(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.user("alice@example.com", PASSWORD).await;
    let before = mails_to(&server, "alice@example.com").len();

    let known = forgot_password(&server, "alice@example.com").await;
    let unknown = forgot_password(&server, "nobody@example.com").await;
    assert_eq!(known.status(), 202);
    assert_eq!(unknown.status(), 202);
    let content_type = |r: &reqwest::Response| r.headers().get("content-type").map(|v| v.as_bytes().to_vec());
    assert_eq!(content_type(&known), content_type(&unknown));
    let known_body = known.bytes().await.expect("body");
    let unknown_body = unknown.bytes().await.expect("body");
    assert_eq!(known_body, unknown_body, "identical bodies");

    let alice_mails = mails_to(&server, "alice@example.com");
    assert_eq!(alice_mails.len(), before + 1, "one mail for the known account");
    assert!(alice_mails.last().expect("mail").contains(&format!("Subject: {RESET_SUBJECT}")));
    code_in(alice_mails.last().expect("mail"));
    assert!(mails_to(&server, "nobody@example.com").is_empty(), "none for the unknown one");

    // The email is matched without regard to case; an invalid one is answered the same way.
    assert_eq!(forgot_password(&server, "ALICE@example.COM").await.status(), 202);
    assert_eq!(mails_with_subject(&server, "alice@example.com", RESET_SUBJECT).len(), 2);
    assert_eq!(forgot_password(&server, "not-an-email").await.status(), 202);
    let all = std::fs::read_dir(&server.state.config.mail_dir).expect("mail dir").count();
    assert_eq!(all, before + 2, "no other mail was written");
    problem(post_json(&server, "/auth/forgot-password", &json!({"mail": "alice@example.com"})).await, 400).await;
}

async fn reset_password_with_the_mailed_code_ends_sessions_and_tokens(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.user("alice@example.com", PASSWORD).await;
    let client = server.client(&third_party_client_flags()).await;
    let browser = browser_login(&server, &client, "alice@example.com").await;
    assert_session_alive(&silent_authorize(&server, &browser, &client).await);
    let before = login_tokens(&server, "alice@example.com", PASSWORD).await;

    let code = reset_code(&server, "alice@example.com").await;
    let response = reset_password(&server, &code, NEW_PASSWORD).await;
    assert_eq!(response.status(), 204);
    assert!(response.text().await.expect("body").is_empty());

    assert_eq!(problem(login(&server, "alice@example.com", PASSWORD).await, 401).await["code"], "invalid_credentials");
    let after = login_tokens(&server, "alice@example.com", NEW_PASSWORD).await;
    assert_eq!(get_me(&server, &after.access).await.status(), 200);

    // Everything from before the reset has ended.
    assert_eq!(problem(refresh(&server, &before.refresh).await, 401).await["code"], "invalid_grant");
    problem(get_me(&server, &before.access).await, 401).await;
    assert_session_gone(&silent_authorize(&server, &browser, &client).await);

    // Single use.
    assert_field(
        &problem(reset_password(&server, &code, "yet another passphrase 7").await, 400).await,
        "invalid_token",
        "token",
    );
    login_tokens(&server, "alice@example.com", NEW_PASSWORD).await;
}

async fn reset_password_refuses_expired_codes_and_weak_passwords(backend: Backend) {
    // More reset mails per email than the default limit (unauthenticated_work.rs tests the limit).
    let server = TestServer::start_with(backend, |config| config.mail_email_limit = 10).await;
    server.user("alice@example.com", PASSWORD).await;

    for weak in ["password123", "short", "my alice password!", &"z".repeat(257)] {
        let code = reset_code(&server, "alice@example.com").await;
        let body = problem(reset_password(&server, &code, weak).await, 400).await;
        assert_field(&body, "invalid_field", "password");
    }
    login_tokens(&server, "alice@example.com", PASSWORD).await;
    assert_field(
        &problem(reset_password(&server, "garbage-code", NEW_PASSWORD).await, 400).await,
        "invalid_token",
        "token",
    );

    // Valid for one hour.
    let expiring = reset_code(&server, "alice@example.com").await;
    server.clock.advance(3601);
    let body = problem(reset_password(&server, &expiring, NEW_PASSWORD).await, 400).await;
    assert_field(&body, "invalid_token", "token");
    assert_eq!(login(&server, "alice@example.com", NEW_PASSWORD).await.status(), 401);
    login_tokens(&server, "alice@example.com", PASSWORD).await;

    let in_time = reset_code(&server, "alice@example.com").await;
    server.clock.advance(3599);
    assert_eq!(reset_password(&server, &in_time, NEW_PASSWORD).await.status(), 204);
    login_tokens(&server, "alice@example.com", NEW_PASSWORD).await;
    problem(post_json(&server, "/auth/reset-password", &json!({"token": in_time})).await, 400).await;
}

async fn a_refused_weak_password_keeps_the_reset_code(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.user("alice@example.com", PASSWORD).await;
    let code = reset_code(&server, "alice@example.com").await;
    let body = problem(reset_password(&server, &code, "password123").await, 400).await;
    assert_field(&body, "invalid_field", "password");
    assert_eq!(
        reset_password(&server, &code, NEW_PASSWORD).await.status(),
        204,
        "the code survives a refused password"
    );
    login_tokens(&server, "alice@example.com", NEW_PASSWORD).await;
    assert_eq!(reset_password(&server, &code, "another long passphrase").await.status(), 400, "then it is used up");
}
