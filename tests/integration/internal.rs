//! The internal service routes (SPEC §7) over HTTP: off without a secret, 401 with a wrong one,
//! upsert by upstream subject (idempotent, one user under concurrency, never linked to an
//! administrator, never to an account whose email is unverified) and snapshots by oxidp subject
//! or by upstream subject.

use oxidp::store::UserStore;
use serde_json::{Value, json};

use crate::common::*;
use crate::on_both_backends;
use crate::permissions::{SECRET, snapshot};

on_both_backends!(
    internal_routes_are_off_without_a_secret,
    wrong_or_missing_secret_is_401,
    upsert_is_idempotent_and_snapshots_resolve_both_subjects,
    concurrent_upserts_make_one_user,
    upsert_links_by_email_but_never_to_an_administrator,
    upsert_refuses_bad_input,
    unverified_local_account_is_never_linked_to_an_upstream_identity,
);

const UPSERT: &str = "/api/v1/internal/users/upsert-by-sub";
const INTERNAL_SECRET: &str = "internal-secret-for-threat-tests";

async fn start(backend: Backend) -> TestServer {
    TestServer::start_with(backend, |c| c.internal_secret = Some(SECRET.into())).await
}

async fn upsert_with(server: &TestServer, secret: Option<&str>, body: &Value) -> reqwest::Response {
    let mut request = reqwest::Client::new().post(server.url(UPSERT)).json(body);
    if let Some(secret) = secret {
        request = request.header("X-Internal-Secret", secret);
    }
    request.send().await.expect("upsert")
}

async fn upsert(server: &TestServer, body: &Value) -> Value {
    let response = upsert_with(server, Some(SECRET), body).await;
    assert_eq!(response.status(), 200);
    json(response).await
}

async fn internal_routes_are_off_without_a_secret(backend: Backend) {
    for secret in [None, Some(String::new())] {
        let server = TestServer::start_with(backend, |c| c.internal_secret = secret.clone()).await;
        let body = json!({ "sub": "u1", "email": "a@example.com" });
        for presented in [None, Some(""), Some(SECRET)] {
            let response = upsert_with(&server, presented, &body).await;
            assert_eq!(response.status(), 404, "{secret:?} / {presented:?}");
            assert_eq!(response.headers()["content-type"], "application/problem+json");
            let response = reqwest::Client::new()
                .get(server.url("/api/v1/internal/permissions/u1/snapshot"))
                .header("X-Internal-Secret", presented.unwrap_or(""))
                .send()
                .await
                .expect("snapshot");
            assert_eq!(response.status(), 404);
        }
    }
}

async fn wrong_or_missing_secret_is_401(backend: Backend) {
    let server = start(backend).await;
    let body = json!({ "sub": "u1", "email": "a@example.com" });
    let mut answers = Vec::new();
    for presented in [None, Some(""), Some("wrong"), Some(&SECRET[..SECRET.len() - 1]), Some("internal-test-secreT")] {
        let response = upsert_with(&server, presented, &body).await;
        assert_eq!(response.status(), 401, "{presented:?}");
        assert_eq!(response.headers()["content-type"], "application/problem+json");
        let mut problem = json(response).await;
        problem.as_object_mut().expect("object").remove("request_id");
        answers.push(problem);
    }
    assert!(answers.windows(2).all(|pair| pair[0] == pair[1]), "one answer: {answers:?}");
    assert_eq!(answers[0]["code"], "invalid_internal_secret");
    let response = reqwest::Client::new()
        .get(server.url("/api/v1/internal/permissions/u1/snapshot"))
        .header("X-Internal-Secret", "wrong")
        .send()
        .await
        .expect("snapshot");
    assert_eq!(response.status(), 401);
    // Nothing was created by the refused calls.
    assert_eq!(server.state.db.count_users().await.expect("count"), 0);
    // Admin credentials are no substitute for the internal secret.
    server.user_with_role("root@example.com", PASSWORD, true).await;
    let login = reqwest::Client::new()
        .post(server.url("/api/v1/auth/login"))
        .json(&json!({ "email": "root@example.com", "password": PASSWORD }))
        .send()
        .await
        .expect("login");
    let token = json(login).await["access_token"].as_str().expect("token").to_string();
    let response =
        reqwest::Client::new().post(server.url(UPSERT)).bearer_auth(token).json(&body).send().await.expect("call");
    assert_eq!(response.status(), 401);
}

async fn upsert_is_idempotent_and_snapshots_resolve_both_subjects(backend: Backend) {
    let server = start(backend).await;
    let body = json!({ "provider": "authentik", "sub": "ak-123", "email": "Hana@Example.com", "display_name": "Hana" });
    let first = upsert(&server, &body).await;
    assert_eq!(first["created"], true);
    assert_eq!(first["linked"], false);
    assert_eq!(first["email"], "Hana@Example.com");
    assert_eq!(first["email_verified"], false);
    assert_eq!(first["name"], "Hana");
    assert_eq!(first["role"], "user");
    let sub = first["sub"].as_str().expect("sub").to_string();
    assert_ne!(sub, "ak-123", "oxidp's own subject");
    let second = upsert(&server, &body).await;
    assert_eq!(second["created"], false);
    assert_eq!((second["id"].clone(), second["sub"].clone()), (first["id"].clone(), first["sub"].clone()));
    // The provider defaults to authentik.
    let third = upsert(&server, &json!({ "sub": "ak-123", "email": "hana@example.com" })).await;
    assert_eq!(
        (third["id"].clone(), third["created"].clone(), third["provider"].clone()),
        (first["id"].clone(), json!(false), json!("authentik"))
    );
    assert_eq!(server.state.db.count_users().await.expect("count"), 1);
    // The user has no password: the user exists for the upstream login only.
    let user = server.state.db.user_by_sub(&sub).await.expect("read").expect("user");
    assert!(user.password_hash.is_none());

    // Snapshot by oxidp subject and by upstream subject: the same document and ETag.
    let (status, etag, by_sub) = snapshot(&server, &sub, None).await;
    assert_eq!(status, 200);
    assert_eq!(etag, "\"v1\"");
    assert_eq!(by_sub["sub"], sub.as_str());
    let by_upstream = reqwest::Client::new()
        .get(server.url("/api/v1/internal/permissions/ak-123/snapshot?provider=authentik"))
        .header("X-Internal-Secret", SECRET)
        .send()
        .await
        .expect("snapshot");
    assert_eq!(by_upstream.status(), 200);
    assert_eq!(by_upstream.headers()["etag"], etag.as_str());
    assert_eq!(json(by_upstream).await, by_sub);
    let not_modified = reqwest::Client::new()
        .get(server.url("/api/v1/internal/permissions/ak-123/snapshot?provider=authentik"))
        .header("X-Internal-Secret", SECRET)
        .header("If-None-Match", &etag)
        .send()
        .await
        .expect("snapshot");
    assert_eq!(not_modified.status(), 304);
    for path in [
        "/api/v1/internal/permissions/ak-123/snapshot",
        "/api/v1/internal/permissions/ak-123/snapshot?provider=github",
        "/api/v1/internal/permissions/nobody/snapshot?provider=authentik",
    ] {
        let response = reqwest::Client::new()
            .get(server.url(path))
            .header("X-Internal-Secret", SECRET)
            .send()
            .await
            .expect("snapshot");
        assert_eq!(response.status(), 404, "{path}");
    }
    // The same subject at another provider is another user.
    let other = upsert(&server, &json!({ "provider": "keycloak", "sub": "ak-123", "email": "h2@example.com" })).await;
    assert_eq!(other["created"], true);
    assert_ne!(other["id"], first["id"]);
}

async fn concurrent_upserts_make_one_user(backend: Backend) {
    let server = start(backend).await;
    // Ten calls for one subject with one email, then ten for another subject with ten emails.
    for (subject, same_email) in [("race-1", true), ("race-2", false)] {
        let before = server.state.db.count_users().await.expect("count");
        let mut tasks = Vec::new();
        for n in 0..10 {
            let email =
                if same_email { format!("{subject}@example.com") } else { format!("{subject}-{n}@example.com") };
            let body = json!({ "provider": "authentik", "sub": subject, "email": email });
            let url = server.url(UPSERT);
            tasks.push(tokio::spawn(async move {
                let response = reqwest::Client::new()
                    .post(url)
                    .header("X-Internal-Secret", SECRET)
                    .json(&body)
                    .send()
                    .await
                    .expect("upsert");
                assert_eq!(response.status(), 200);
                response.json::<Value>().await.expect("JSON")
            }));
        }
        let mut answers = Vec::new();
        for task in tasks {
            answers.push(task.await.expect("task"));
        }
        let ids: std::collections::HashSet<&str> = answers.iter().map(|a| a["id"].as_str().expect("id")).collect();
        assert_eq!(ids.len(), 1, "{subject}: one user for all calls");
        let created = answers.iter().filter(|a| a["created"] == true).count();
        assert_eq!(created, 1, "{subject}: exactly one call created it");
        assert_eq!(server.state.db.count_users().await.expect("count"), before + 1, "{subject}");
    }
}

async fn upsert_links_by_email_but_never_to_an_administrator(backend: Backend) {
    let server = start(backend).await;
    let ivy = server.user("ivy@example.com", PASSWORD).await;
    let linked = upsert(&server, &json!({ "sub": "ak-ivy", "email": "IVY@example.com" })).await;
    assert_eq!(
        (linked["id"].clone(), linked["created"].clone(), linked["linked"].clone()),
        (json!(ivy.id), json!(false), json!(true))
    );
    assert_eq!(linked["sub"], ivy.sub.as_str());
    let again = upsert(&server, &json!({ "sub": "ak-ivy", "email": "ivy@example.com" })).await;
    assert_eq!((again["id"].clone(), again["linked"].clone()), (json!(ivy.id), json!(false)));

    // Another subject of the same provider claiming Ivy's email.
    let response =
        upsert_with(&server, Some(SECRET), &json!({ "sub": "ak-impostor", "email": "ivy@example.com" })).await;
    assert_eq!(response.status(), 409);
    assert_eq!(json(response).await["code"], "identity_conflict");

    server.user_with_role("root@example.com", PASSWORD, true).await;
    let response = upsert_with(&server, Some(SECRET), &json!({ "sub": "ak-root", "email": "root@example.com" })).await;
    assert_eq!(response.status(), 409);
    let problem = json(response).await;
    assert_eq!(problem["code"], "admin_email");
    assert_eq!(problem["status"], 409);
    assert_eq!(server.state.db.count_users().await.expect("count"), 2, "no user made for the refused calls");
    // The audit log names what the upserts did.
    let entries: Vec<String> = {
        use oxidp::store::{AuditFilter, AuditStore};
        let filter = AuditFilter { limit: 50, ..AuditFilter::default() };
        server.state.db.query_audit(&filter).await.expect("audit").into_iter().map(|e| e.action).collect()
    };
    assert!(entries.contains(&"user.upsert_by_sub.link".to_string()), "{entries:?}");
}

async fn upsert_refuses_bad_input(backend: Backend) {
    let server = start(backend).await;
    let long = "x".repeat(300);
    let cases = [
        (json!({ "sub": "", "email": "a@example.com" }), "sub"),
        (json!({ "sub": long, "email": "a@example.com" }), "sub"),
        (json!({ "sub": "a\u{7}b", "email": "a@example.com" }), "sub"),
        (json!({ "sub": "s", "email": "not-an-email" }), "email"),
        (json!({ "sub": "s", "email": "" }), "email"),
        (json!({ "provider": "", "sub": "s", "email": "a@example.com" }), "provider"),
        (json!({ "provider": "auth entik", "sub": "s", "email": "a@example.com" }), "provider"),
        (json!({ "sub": "s", "email": "a@example.com", "display_name": "x".repeat(300) }), "display_name"),
    ];
    for (body, field) in cases {
        let response = upsert_with(&server, Some(SECRET), &body).await;
        assert_eq!(response.status(), 400, "{body}");
        assert_eq!(response.headers()["content-type"], "application/problem+json");
        assert_eq!(json(response).await["field"], field, "{body}");
    }
    for body in [json!({ "sub": "s" }), json!({ "sub": "s", "email": "a@example.com", "role": "admin" }), json!("text")]
    {
        let response = upsert_with(&server, Some(SECRET), &body).await;
        assert_eq!(response.status(), 400, "{body}");
    }
    assert_eq!(server.state.db.count_users().await.expect("count"), 0);
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
