//! The storage layer on both databases: atomicity and locking that the protocol relies on.

use std::sync::Arc;

use oxidp::store::*;

use crate::common::*;
use crate::on_both_backends;

on_both_backends!(
    a_code_is_consumed_exactly_once_under_concurrency,
    instances_starting_together_create_one_signing_key,
    a_grant_revoked_before_it_is_written_cannot_be_written,
    emails_are_unique_without_regard_to_case,
    sessions_round_trip_and_delete,
    access_token_state_follows_grant_and_user,
);

async fn a_code_is_consumed_exactly_once_under_concurrency(backend: Backend) {
    let server = TestServer::start(backend).await;
    let user = server.user("alice@example.com", PASSWORD).await;
    let client = server.client(&["--name", "App", "--redirect-uri", REDIRECT]).await;
    let now = server.clock_now();
    let code = AuthCode {
        code_hash: "hash-1".into(),
        client_id: client.id.clone(),
        user_id: user.id.clone(),
        session_id: "s".into(),
        redirect_uri: REDIRECT.into(),
        redirect_uri_given: true,
        scope: "openid".into(),
        resource: None,
        nonce: None,
        code_challenge: None,
        auth_time: now,
        amr: "pwd".into(),
        created_at: now,
        expires_at: now + 60,
        consumed_at: None,
        grant_id: None,
        purge_after: now + 1000,
    };
    server.state.db.insert_code(&code).await.expect("insert");
    let mut tasks = tokio::task::JoinSet::new();
    for attempt in 0..8 {
        let db = server.state.db.clone();
        tasks.spawn(async move { db.consume_code("hash-1", &format!("grant-{attempt}"), now).await.expect("consume") });
    }
    let (mut consumed, mut replayed) = (Vec::new(), 0);
    while let Some(outcome) = tasks.join_next().await {
        match outcome.expect("task") {
            CodeConsumption::Consumed(code) => consumed.push(code.grant_id.clone()),
            CodeConsumption::Replayed { grant_id, .. } => {
                assert!(grant_id.is_some(), "a replay names the grant of the first use");
                replayed += 1;
            }
            CodeConsumption::Unknown => panic!("the code exists"),
        }
    }
    assert_eq!(consumed.len(), 1, "exactly one consumer");
    assert_eq!(replayed, 7);
    assert!(matches!(server.state.db.consume_code("nope", "g", now).await.expect("consume"), CodeConsumption::Unknown));
}

async fn instances_starting_together_create_one_signing_key(backend: Backend) {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = match backend {
        Backend::Sqlite => format!("sqlite://{}?mode=rwc", dir.path().join("keys.db").display()),
        Backend::Postgres => fresh_postgres_database().await,
    };
    let db = Db::connect(&url).await.expect("connect");
    db.migrate().await.expect("migrate");
    let secret = oxidp::crypto::ServerSecret::from_bytes(&[9u8; 32]);
    let clock: oxidp::clock::SharedClock = Arc::new(oxidp::clock::SystemClock);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..3 {
        let db = Db::connect(&url).await.expect("connect");
        let manager =
            oxidp::keys::KeyManager::new(db, secret.clone(), clock.clone(), 2048, vec!["RS256".into()], 330, 900);
        tasks.spawn(async move { manager.bootstrap().await.expect("bootstrap") });
    }
    while let Some(result) = tasks.join_next().await {
        result.expect("task");
    }
    assert_eq!(db.signing_keys().await.expect("keys").len(), 1);
}

async fn a_grant_revoked_before_it_is_written_cannot_be_written(backend: Backend) {
    let server = TestServer::start(backend).await;
    let db = &server.state.db;
    let now = server.clock_now();
    db.revoke_grant("grant-x", now).await.expect("revoke");
    let grant = Grant {
        id: "grant-x".into(),
        client_id: "c".into(),
        user_id: "u".into(),
        scope: "openid".into(),
        resource: None,
        auth_time: now,
        amr: "pwd".into(),
        created_at: now,
        expires_at: now + 100,
        revoked_at: None,
    };
    assert!(matches!(db.insert_grant(&grant).await, Err(StoreError::Conflict)));
    let stored = db.grant_by_id("grant-x").await.expect("read").expect("placeholder");
    assert!(stored.revoked_at.is_some());
}

async fn emails_are_unique_without_regard_to_case(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.user("Bob@Example.com", PASSWORD).await;
    let duplicate = NewUser {
        email: "bob@example.COM".into(),
        email_verified: false,
        password_hash: None,
        name: None,
        role: "user".into(),
    };
    assert!(matches!(server.state.db.create_user(duplicate, 0).await, Err(StoreError::Conflict)));
    let found = server.state.db.user_by_email("BOB@example.com").await.expect("lookup").expect("found");
    assert_eq!(found.email, "Bob@Example.com", "stored as given");
}

async fn sessions_round_trip_and_delete(backend: Backend) {
    let server = TestServer::start(backend).await;
    let user = server.user("carol@example.com", PASSWORD).await;
    let db = &server.state.db;
    let session = Session {
        id: "sess-1".into(),
        token_hash: "token-hash".into(),
        user_id: user.id.clone(),
        auth_time: 10,
        amr: "pwd".into(),
        ip: Some("127.0.0.1".into()),
        user_agent: None,
        created_at: 10,
        last_seen_at: 10,
        expires_at: 100,
    };
    db.insert_session(&session).await.expect("insert");
    db.touch_session("sess-1", 50).await.expect("touch");
    let stored = db.session_by_token_hash("token-hash").await.expect("read").expect("found");
    assert_eq!(stored.last_seen_at, 50);
    assert_eq!(stored.user_id, user.id);
    db.delete_session("sess-1").await.expect("delete");
    assert!(db.session_by_token_hash("token-hash").await.expect("read").is_none());
}

async fn access_token_state_follows_grant_and_user(backend: Backend) {
    let server = TestServer::start(backend).await;
    let user = server.user("dave@example.com", PASSWORD).await;
    let db = &server.state.db;
    let now = server.clock_now();
    let grant = Grant {
        id: "grant-y".into(),
        client_id: "c".into(),
        user_id: user.id.clone(),
        scope: "openid".into(),
        resource: None,
        auth_time: now,
        amr: "pwd".into(),
        created_at: now,
        expires_at: now + 100,
        revoked_at: None,
    };
    db.insert_grant(&grant).await.expect("grant");
    db.record_access_token("jti-1", "c", Some("grant-y"), Some(&user.id), now + 60).await.expect("record");
    assert!(!db.access_token_state("jti-1").await.expect("state").expect("row").is_revoked());
    db.revoke_grant("grant-y", now).await.expect("revoke");
    assert!(db.access_token_state("jti-1").await.expect("state").expect("row").is_revoked());
    // A client-credentials token has no row until it is revoked.
    assert!(db.access_token_state("jti-2").await.expect("state").is_none());
    db.revoke_access_token("jti-2", "c", now + 60, now).await.expect("revoke");
    db.revoke_access_token("jti-2", "c", now + 60, now + 5).await.expect("revoke twice");
    assert!(db.access_token_state("jti-2").await.expect("state").expect("row").is_revoked());
}
