//! OIDC Back-Channel Logout 1.0 over real HTTP: a relying party on 127.0.0.1 receives a signed
//! logout token (`typ: logout+jwt`, the back-channel event, the ID token's `sid`, no `nonce`)
//! when a session it took part in ends, through the durable delivery queue: retried with
//! backoff, delivered by another instance after a restart, audited when given up, and never
//! holding up the person's logout.

use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use poem::web::Data;
use poem::{EndpointExt, Route, handler, post};
use serde_json::Value;

use crate::common::*;
use crate::federation::serve_mock;
use crate::on_both_backends;

on_both_backends!(
    rp_logout_sends_a_logout_token_to_participants_only,
    failed_deliveries_are_retried_survive_a_restart_and_are_audited,
    ban_and_session_revocation_notify,
    a_session_that_expires_is_swept_once_and_refreshed_id_tokens_keep_its_sid,
);

const ALICE: &str = "alice@example.com";

/// The receiving relying party: records each `logout_token`, answers with `status`, after `delay_ms`.
#[derive(Clone, Default)]
struct Receiver {
    tokens: Arc<Mutex<Vec<String>>>,
    status: Arc<AtomicU16>,
    delay_ms: Arc<AtomicU64>,
    calls: Arc<AtomicU64>,
}

#[handler]
async fn receive(body: String, Data(receiver): Data<&Receiver>) -> poem::http::StatusCode {
    receiver.calls.fetch_add(1, Ordering::SeqCst);
    let delay = receiver.delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    let status = receiver.status.load(Ordering::SeqCst);
    if status == 200
        && let Some((_, token)) = form_urlencoded::parse(body.as_bytes()).find(|(name, _)| name == "logout_token")
    {
        receiver.tokens.lock().expect("lock").push(token.into_owned());
    }
    poem::http::StatusCode::from_u16(status).expect("status")
}

async fn start_receiver() -> (Receiver, String) {
    let receiver = Receiver::default();
    receiver.status.store(200, Ordering::SeqCst);
    let base = serve_mock(Route::new().at("/bcl", post(receive)).data(receiver.clone())).await;
    (receiver, format!("{base}/bcl"))
}

impl Receiver {
    async fn wait_for(&self, count: usize, within: Duration) -> Vec<String> {
        let start = Instant::now();
        loop {
            let tokens = self.tokens.lock().expect("lock").clone();
            if tokens.len() >= count || start.elapsed() > within {
                return tokens;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn allow_loopback(config: &mut oxidp::config::Config) {
    config.outbound_allow_loopback = true;
}

/// A browser signed in to `client` as Alice; the ID token.
async fn sign_in(server: &TestServer, browser: &Browser, client: &TestClient) -> String {
    let (code, pkce) = obtain_code(server, browser, client, &[("nonce", "n-123")]).await;
    let response = redeem(server, client, &code, &pkce.verifier).await;
    assert_eq!(response.status(), 200);
    json(response).await["id_token"].as_str().expect("id_token").to_string()
}

async fn rp_logout(server: &TestServer, browser: &Browser, id_token: &str) -> reqwest::Response {
    browser.get(&format!("{}?id_token_hint={id_token}", server.url("/logout"))).await
}

async fn rp_logout_sends_a_logout_token_to_participants_only(backend: Backend) {
    let server = TestServer::start_with(backend, allow_loopback).await;
    server.user(ALICE, PASSWORD).await;
    let (receiver, url) = start_receiver().await;
    let (bystander, bystander_url) = start_receiver().await;
    let client = server.client(&["--name", "RP", "--redirect-uri", REDIRECT, "--backchannel-logout-uri", &url]).await;
    // Registered for back-channel logout but never signed in during this session.
    server.client(&["--name", "Other", "--redirect-uri", REDIRECT, "--backchannel-logout-uri", &bystander_url]).await;
    let discovery: Value =
        json(reqwest::get(server.url("/.well-known/openid-configuration")).await.expect("get")).await;
    assert_eq!(discovery["backchannel_logout_supported"], true);
    assert_eq!(discovery["backchannel_logout_session_supported"], true);

    let browser = Browser::new();
    let id_token = sign_in(&server, &browser, &client).await;
    let id_claims = server.verify_jwt(&id_token, &client.id, "JWT").await;
    let sid = id_claims["sid"].as_str().expect("sid in the ID token").to_string();

    // A slow receiver does not hold up the logout.
    receiver.delay_ms.store(3_000, Ordering::SeqCst);
    let started = Instant::now();
    let response = rp_logout(&server, &browser, &id_token).await;
    assert!(response.status().is_success() || response.status().is_redirection(), "{}", response.status());
    assert!(
        started.elapsed() < Duration::from_millis(2_000),
        "logout waited for the receiver: {:?}",
        started.elapsed()
    );

    let tokens = receiver.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(tokens.len(), 1, "one logout token delivered");
    let claims = server.verify_jwt(&tokens[0], &client.id, "logout+jwt").await;
    assert_eq!(claims["iss"], server.base.as_str());
    assert_eq!(claims["sid"], sid.as_str(), "the logout token's sid is the ID token's");
    assert_eq!(claims["sub"], id_claims["sub"]);
    assert!(claims["events"]["http://schemas.openid.net/event/backchannel-logout"].is_object());
    assert!(claims.get("nonce").is_none(), "a logout token never carries a nonce");
    assert!(claims["jti"].as_str().is_some_and(|jti| !jti.is_empty()));
    let (iat, exp) = (claims["iat"].as_i64().expect("iat"), claims["exp"].as_i64().expect("exp"));
    assert!(exp > iat && exp - iat <= 300);

    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(bystander.calls.load(Ordering::SeqCst), 0, "a client that did not take part is not told");
}

async fn failed_deliveries_are_retried_survive_a_restart_and_are_audited(backend: Backend) {
    use oxidp::store::{AuditFilter, AuditStore, DeliveryStore};
    let server = TestServer::start_with(backend, |config| {
        allow_loopback(config);
        config.delivery_max_attempts = 3;
    })
    .await;
    server.user(ALICE, PASSWORD).await;
    let (receiver, url) = start_receiver().await;
    receiver.status.store(500, Ordering::SeqCst);
    let client = server.client(&["--name", "RP", "--redirect-uri", REDIRECT, "--backchannel-logout-uri", &url]).await;
    let browser = Browser::new();
    let id_token = sign_in(&server, &browser, &client).await;
    rp_logout(&server, &browser, &id_token).await;

    assert_eq!(wait_attempts(&server, 1).await, 1, "the first attempt comes at once");
    // Not retried before its backoff is over.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(attempts(&server).await, 1);
    server.clock.advance(2);
    assert_eq!(wait_attempts(&server, 2).await, 2, "retried after the backoff");

    // The instance stops; a new one on the same database delivers once the receiver recovers.
    server.state.delivery.stop();
    receiver.status.store(200, Ordering::SeqCst);
    let dir = tempfile::tempdir().expect("tempdir");
    let shared = server.state.config.clone();
    let restarted = TestServer::start_on_with_clock(server.database_url.clone(), dir, server.clock.clone(), |config| {
        let (keys_dir, mail_dir) = (config.keys_dir.clone(), config.mail_dir.clone());
        *config = shared;
        config.keys_dir = keys_dir;
        config.mail_dir = mail_dir;
    })
    .await;
    restarted.clock.advance(4);
    let tokens = receiver.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(tokens.len(), 1, "delivered after the restart");
    let deliveries = restarted.state.db.deliveries_of_kind("backchannel_logout", 10).await.expect("deliveries");
    assert!(deliveries[0].delivered_at.is_some());

    // A receiver that keeps failing: given up after the last attempt, and audited.
    receiver.status.store(500, Ordering::SeqCst);
    let browser = Browser::new();
    let id_token = sign_in(&restarted, &browser, &client).await;
    rp_logout(&restarted, &browser, &id_token).await;
    // Time moves on until the attempts are spent: each advance makes the next retry due, however
    // late a loaded machine runs the worker.
    let start = Instant::now();
    let failed = loop {
        let filter =
            AuditFilter { action: Some("backchannel_logout.failed".into()), limit: 10, ..AuditFilter::default() };
        let entries = restarted.state.db.query_audit(&filter).await.expect("audit");
        if !entries.is_empty() || start.elapsed() > Duration::from_secs(20) {
            break entries;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        restarted.clock.advance(60);
    };
    assert_eq!(failed.len(), 1, "the failure is audited once");
    assert_eq!(failed[0].target_id.as_deref(), Some(client.id.as_str()));
    let newest = &restarted.state.db.deliveries_of_kind("backchannel_logout", 10).await.expect("deliveries")[0];
    assert!(newest.failed_at.is_some() && newest.attempts == 3, "{newest:?}");
}

async fn ban_and_session_revocation_notify(backend: Backend) {
    let server = TestServer::start_with(backend, allow_loopback).await;
    let alice = server.user(ALICE, PASSWORD).await;
    let (receiver, url) = start_receiver().await;
    let client = server.client(&["--name", "RP", "--redirect-uri", REDIRECT, "--backchannel-logout-uri", &url]).await;

    // Revocation of one session through the account API.
    let browser = Browser::new();
    let id_token = sign_in(&server, &browser, &client).await;
    let sid = server.verify_jwt(&id_token, &client.id, "JWT").await["sid"].clone();
    let token = api_token(&server, ALICE).await;
    let http = reqwest::Client::new();
    let sessions: Value =
        json(http.get(server.url("/api/v1/users/me/sessions")).bearer_auth(&token).send().await.expect("sessions"))
            .await;
    let items = sessions.get("items").or(sessions.get("sessions")).unwrap_or(&sessions);
    let id =
        items.as_array().and_then(|all| all.first()).and_then(|s| s["id"].as_str()).expect("a session").to_string();
    let response = http
        .delete(server.url(&format!("/api/v1/users/me/sessions/{id}")))
        .bearer_auth(&token)
        .send()
        .await
        .expect("delete");
    assert!(response.status().is_success(), "{}", response.status());
    let tokens = receiver.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(tokens.len(), 1, "revocation notifies");
    assert_eq!(server.verify_jwt(&tokens[0], &client.id, "logout+jwt").await["sid"], sid);

    // A ban ends every session (as a password reset does, through the same path).
    let browser = Browser::new();
    let id_token = sign_in(&server, &browser, &client).await;
    let sid = server.verify_jwt(&id_token, &client.id, "JWT").await["sid"].clone();
    oxidp::admin::users::ban(&server.state, &oxidp::audit::Initiator::cli(), &alice.id).await.expect("ban");
    let tokens = receiver.wait_for(2, Duration::from_secs(10)).await;
    assert_eq!(tokens.len(), 2, "a ban notifies");
    assert_eq!(server.verify_jwt(&tokens[1], &client.id, "logout+jwt").await["sid"], sid);
}

/// A session nobody ends explicitly (idle too long) is found by housekeeping (the sessions table,
/// or Redis's expiry index) and its participants are told once, with the `sid` that ID tokens
/// from the code and from its refresh tokens both carry.
async fn a_session_that_expires_is_swept_once_and_refreshed_id_tokens_keep_its_sid(backend: Backend) {
    let server = TestServer::start_with(backend, |config| {
        allow_loopback(config);
        config.session_idle_ttl = 600;
    })
    .await;
    server.user(ALICE, PASSWORD).await;
    let (receiver, url) = start_receiver().await;
    let client = server.client(&["--name", "RP", "--redirect-uri", REDIRECT, "--backchannel-logout-uri", &url]).await;
    let browser = Browser::new();
    let (code, pkce) = obtain_code(&server, &browser, &client, &[]).await;
    let tokens = json(redeem(&server, &client, &code, &pkce.verifier).await).await;
    let id_token = tokens["id_token"].as_str().expect("id_token");
    let sid = server.verify_jwt(id_token, &client.id, "JWT").await["sid"].as_str().expect("sid").to_string();
    let refresh = tokens["refresh_token"].as_str().expect("refresh_token");
    let refreshed =
        json(token_request(&server, &client, &[("grant_type", "refresh_token"), ("refresh_token", refresh)]).await)
            .await;
    let refreshed_id = refreshed["id_token"].as_str().expect("an ID token from the refresh grant");
    assert_eq!(server.verify_jwt(refreshed_id, &client.id, "JWT").await["sid"], sid.as_str(), "same sid after refresh");

    // Not yet idle for the whole timeout: nothing is swept.
    server.clock.advance(599);
    let purged = oxidp::housekeeping::purge(&server.state).await.expect("purge");
    assert_eq!(purged.sessions, 0);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.calls.load(Ordering::SeqCst), 0, "a live session is not logged out");

    server.clock.advance(2);
    let purged = oxidp::housekeeping::purge(&server.state).await.expect("purge");
    assert_eq!(purged.sessions, 1, "the idle session is swept");
    let delivered = receiver.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(delivered.len(), 1, "the expired session's participant is told");
    let claims = server.verify_jwt(&delivered[0], &client.id, "logout+jwt").await;
    assert_eq!(claims["sid"], sid.as_str());

    // A second pass (another instance's, say) finds nothing more to send.
    let purged = oxidp::housekeeping::purge(&server.state).await.expect("purge");
    assert_eq!(purged.sessions, 0);
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    assert_eq!(receiver.calls.load(Ordering::SeqCst), 1, "told once");
}

async fn attempts(server: &TestServer) -> i64 {
    use oxidp::store::DeliveryStore;
    server.state.db.deliveries_of_kind("backchannel_logout", 10).await.expect("deliveries")[0].attempts
}

async fn wait_attempts(server: &TestServer, n: i64) -> i64 {
    let start = Instant::now();
    while attempts(server).await < n && start.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    attempts(server).await
}
