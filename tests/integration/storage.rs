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
        dpop_jkt: None,
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
        session_id: None,
        dpop_jkt: None,
    };
    assert!(matches!(db.insert_grant(&grant).await, Err(StoreError::Conflict)));
    let stored = db.grant_by_id("grant-x").await.expect("read").expect("placeholder");
    assert!(stored.revoked_at.is_some());
}

async fn emails_are_unique_without_regard_to_case(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.user("Bob@Example.com", PASSWORD).await;
    let duplicate = NewUser {
        email: Some("bob@example.COM".into()),
        email_verified: false,
        password_hash: None,
        name: None,
        role: "user".into(),
    };
    assert!(matches!(server.state.db.create_user(duplicate, 0).await, Err(StoreError::Conflict)));
    let found = server.state.db.user_by_email("BOB@example.com").await.expect("lookup").expect("found");
    assert_eq!(found.email.as_deref(), Some("Bob@Example.com"), "stored as given");
}

/// The session-store contract, on the database store and on the configured one (Redis for the
/// PostgreSQL servers of the tests), with a 30 s idle timeout.
async fn sessions_round_trip_and_delete(backend: Backend) {
    let server = TestServer::start_with(backend, |config| config.session_idle_ttl = 30).await;
    let carol = server.user("carol@example.com", PASSWORD).await;
    let dan = server.user("dan@example.com", PASSWORD).await;
    let table = DatabaseSessions::new(server.state.db.clone(), 30);
    session_store_contract(&table, "db", &carol.id, &dan.id).await;
    session_store_contract(&server.state.sessions, "configured", &carol.id, &dan.id).await;

    // The purge removes ended sessions from the table; Redis expires its own (TTL).
    let ended = session("purge", &carol.id, 10, 100);
    table.insert_session(&ended).await.expect("insert");
    assert!(table.purge_expired_sessions(39).await.expect("purge").is_empty(), "idle until 40");
    assert_eq!(table.purge_expired_sessions(40).await.expect("purge"), vec![ended.id.clone()]);
    assert!(table.session_by_token_hash(&ended.token_hash).await.expect("read").is_none());
}

fn session(name: &str, user_id: &str, created_at: i64, expires_at: i64) -> Session {
    Session {
        id: format!("{name}-id"),
        token_hash: format!("{name}-token-hash"),
        user_id: user_id.to_string(),
        auth_time: created_at,
        amr: "pwd".into(),
        ip: Some("127.0.0.1".into()),
        user_agent: None,
        created_at,
        last_seen_at: created_at,
        expires_at,
    }
}

async fn session_store_contract(store: &impl SessionStore, run: &str, carol: &str, dan: &str) {
    let s1 = session(&format!("{run}-1"), carol, 10, 100);
    let s2 = session(&format!("{run}-2"), carol, 20, 200);
    let s3 = session(&format!("{run}-3"), dan, 20, 200);
    for s in [&s1, &s2, &s3] {
        store.insert_session(s).await.expect("insert");
    }
    assert_eq!(store.session_by_token_hash(&s1.token_hash).await.expect("read"), Some(s1.clone()));
    assert!(store.session_by_token_hash("no-such-hash").await.expect("read").is_none());
    store.touch_session(&s1, 35).await.expect("touch");
    let stored = store.session_by_token_hash(&s1.token_hash).await.expect("read").expect("found");
    assert_eq!(stored.last_seen_at, 35);

    // Listing: live sessions only, newest first, by cursor.
    let ids = |sessions: Vec<Session>| sessions.into_iter().map(|s| s.id).collect::<Vec<_>>();
    let page = store.sessions_for_user(carol, 40, None, 10).await.expect("list");
    assert_eq!(ids(page), vec![s2.id.clone(), s1.id.clone()], "{run}");
    assert_eq!(ids(store.sessions_for_user(carol, 40, None, 1).await.expect("list")), vec![s2.id.clone()]);
    let after = Some((s2.created_at, s2.id.clone()));
    assert_eq!(ids(store.sessions_for_user(carol, 40, after, 10).await.expect("list")), vec![s1.id.clone()]);
    // s2 was last seen at 20: idle past 50; s1 (touched at 35) at 65.
    assert_eq!(ids(store.sessions_for_user(carol, 50, None, 10).await.expect("list")), vec![s1.id.clone()]);
    assert!(store.sessions_for_user(carol, 65, None, 10).await.expect("list").is_empty(), "{run}");

    // Ending one: only the owner can, once.
    assert!(!store.delete_user_session(dan, &s1.id).await.expect("delete"), "not Dan's");
    assert!(store.delete_user_session(carol, &s1.id).await.expect("delete"));
    assert!(!store.delete_user_session(carol, &s1.id).await.expect("delete"), "already ended");
    assert!(store.session_by_token_hash(&s1.token_hash).await.expect("read").is_none());

    // Ending all but one; other users keep theirs.
    let s4 = session(&format!("{run}-4"), carol, 30, 300);
    store.insert_session(&s4).await.expect("insert");
    assert_eq!(store.delete_user_sessions(carol, Some(&s2.id)).await.expect("delete all"), 1);
    assert!(store.session_by_token_hash(&s4.token_hash).await.expect("read").is_none());
    assert!(store.session_by_token_hash(&s2.token_hash).await.expect("read").is_some(), "kept");
    assert!(store.session_by_token_hash(&s3.token_hash).await.expect("read").is_some(), "Dan's");
    assert_eq!(store.delete_user_sessions(carol, None).await.expect("delete all"), 1);
    assert!(store.sessions_for_user(carol, 21, None, 10).await.expect("list").is_empty());

    store.delete_session(&s3).await.expect("delete");
    assert!(store.session_by_token_hash(&s3.token_hash).await.expect("read").is_none());
    assert!(store.sessions_for_user(dan, 21, None, 10).await.expect("list").is_empty());
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
        session_id: None,
        dpop_jkt: None,
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
