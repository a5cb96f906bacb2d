//! Every secret the flows hand out is looked for in a dump of every column of every table and of
//! every Redis key and value (only keyed hashes may be there); the server secret's file is private
//! and signing keys are stored encrypted.

use serde_json::{Value, json};

use super::{ALICE, BOB, BOB_PASSWORD, NEW_PASSWORD, ROOT, assert_absent};
use crate::common::*;
use crate::on_both_backends;

on_both_backends!(no_issued_secret_is_stored_in_clear, secret_key_file_is_private_and_signing_keys_are_encrypted,);

// ---------------------------------------------------------------------------------------------
// The database

/// Every value of every column of every table (text, bytes as text and hex, JSON), one string.
pub(crate) async fn full_database_dump(server: &TestServer) -> String {
    use oxidp::store::Db;
    use sqlx::{Column, Row};
    fn cell<'r, R>(row: &'r R, index: usize) -> Option<String>
    where
        R: Row,
        usize: sqlx::ColumnIndex<R>,
        String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
        Vec<u8>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
        Value: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    {
        if let Ok(Some(text)) = row.try_get::<Option<String>, _>(index) {
            return Some(text);
        }
        if let Ok(Some(bytes)) = row.try_get::<Option<Vec<u8>>, _>(index) {
            let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            return Some(format!("{} {hex}", String::from_utf8_lossy(&bytes)));
        }
        if let Ok(Some(value)) = row.try_get::<Option<Value>, _>(index) {
            return Some(value.to_string());
        }
        None
    }
    let mut dump = String::new();
    match &server.state.db {
        Db::Sqlite(pool) => {
            let tables: Vec<String> =
                sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
                    .fetch_all(pool)
                    .await
                    .expect("tables");
            for table in tables {
                let rows = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT * FROM \"{table}\"")))
                    .fetch_all(pool)
                    .await
                    .expect("rows");
                for row in &rows {
                    for index in 0..row.columns().len() {
                        let name = row.columns()[index].name();
                        if let Some(value) = cell(row, index) {
                            dump.push_str(&format!("{table}.{name}={value}\n"));
                        }
                    }
                }
            }
        }
        Db::Postgres(pool) => {
            let tables: Vec<String> = sqlx::query_scalar(
                "SELECT tablename::text FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename",
            )
            .fetch_all(pool)
            .await
            .expect("tables");
            for table in tables {
                // Every column as text, whatever its type (arrays, JSON and bytea included).
                let columns: Vec<String> = sqlx::query_scalar(
                    "SELECT column_name::text FROM information_schema.columns \
                     WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
                )
                .bind(&table)
                .fetch_all(pool)
                .await
                .expect("columns");
                let select: Vec<String> = columns.iter().map(|c| format!("\"{c}\"::text")).collect();
                let sql = format!("SELECT {} FROM \"{table}\"", select.join(", "));
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(pool).await.expect("rows");
                for row in &rows {
                    for (index, name) in columns.iter().enumerate() {
                        if let Some(value) = cell(row, index) {
                            dump.push_str(&format!("{table}.{name}={value}\n"));
                        }
                    }
                }
            }
        }
    }
    dump
}

async fn no_issued_secret_is_stored_in_clear(backend: Backend) {
    let server = TestServer::start_with(backend, |config| {
        config.dynamic_registration = oxidp::config::DynamicRegistration::Token;
    })
    .await;
    server.user_with_role(ROOT, PASSWORD, true).await;
    server.user(ALICE, PASSWORD).await;
    let mut secrets: Vec<(String, String)> = Vec::new();
    let mut keep = |what: &str, value: &str| {
        assert!(value.len() >= 16, "{what} looks too short to be a secret: {value:?}");
        secrets.push((what.to_string(), value.to_string()));
    };
    keep("password", PASSWORD);
    keep("server secret", server.state.config.secret_key.as_deref().expect("test secret"));

    // OAuth client secrets: the CLI path, the admin API, and a rotation.
    let client = server.client(&["--name", "RP", "--redirect-uri", REDIRECT]).await;
    keep("client secret (CLI)", client.secret.as_deref().expect("secret"));
    let admin = api_login(&server, ROOT, PASSWORD).await;
    let admin_token = admin["access_token"].as_str().expect("admin token").to_string();
    keep("admin access token", &admin_token);
    keep("admin refresh token", admin["refresh_token"].as_str().expect("refresh"));
    let created = api_post(
        &server,
        "/api/v1/admin/clients",
        Some(&admin_token),
        &json!({ "name": "Portal", "redirect_uris": [REDIRECT] }),
    )
    .await;
    assert_eq!(created.status(), 201);
    let created = json(created).await;
    keep("client secret (API)", created["client_secret"].as_str().expect("secret"));
    let portal = created["client_id"].as_str().expect("id");
    let rotated =
        api_post(&server, &format!("/api/v1/admin/clients/{portal}/rotate-secret"), Some(&admin_token), &json!({}))
            .await;
    assert_eq!(rotated.status(), 200);
    keep("rotated client secret", json(rotated).await["client_secret"].as_str().expect("secret"));

    // API clients and API keys.
    let api_client =
        api_post(&server, "/api/v1/admin/api-clients", Some(&admin_token), &json!({ "name": "Billing" })).await;
    assert_eq!(api_client.status(), 201);
    let api_client = json(api_client).await;
    keep("API-client secret", api_client["api_key"].as_str().expect("api_key"));
    let used = reqwest::Client::new()
        .get(server.url("/api/v1/admin/users"))
        .header("X-Client-Key", api_client["client_key"].as_str().expect("client_key"))
        .header("X-API-Key", api_client["api_key"].as_str().expect("api_key"))
        .send()
        .await
        .expect("as API client");
    assert_eq!(used.status(), 200, "the API client works (and its hash is rewritten if needed)");
    let alice = api_login(&server, ALICE, PASSWORD).await;
    let alice_token = alice["access_token"].as_str().expect("token").to_string();
    let key = api_post(
        &server,
        "/api/v1/users/me/api-keys",
        Some(&alice_token),
        &json!({ "name": "laptop", "scopes": ["read:users"] }),
    )
    .await;
    assert_eq!(key.status(), 201);
    let key = json(key).await["key"].as_str().expect("key").to_string();
    keep("API key", &key);
    let used = reqwest::Client::new().get(server.url("/api/v1/users/me")).header("X-API-Key", &key).send().await;
    assert_eq!(used.expect("me").status(), 200);
    // API refresh: the rotated token and its successor.
    let refreshed = api_post(
        &server,
        "/api/v1/auth/refresh",
        None,
        &json!({ "refresh_token": alice["refresh_token"].as_str().expect("refresh") }),
    )
    .await;
    assert_eq!(refreshed.status(), 200);
    let refreshed = json(refreshed).await;
    keep("API refresh token", alice["refresh_token"].as_str().expect("refresh"));
    keep("API refresh successor", refreshed["refresh_token"].as_str().expect("successor"));

    // The browser flow: session and CSRF cookies, a redeemed code, tokens, a rotated refresh
    // token, and a code nobody redeemed (it stays in the database until it is purged).
    let (http, jar) = http_with_jar();
    let browser = Browser { http };
    let (code, pkce) = obtain_code(&server, &browser, &client, &[]).await;
    keep("session cookie", &jar_cookie(&server, &jar, "oxidp_session").expect("session"));
    keep("CSRF cookie", &jar_cookie(&server, &jar, "oxidp_csrf").expect("csrf"));
    keep("code", &code);
    let tokens = json(redeem(&server, &client, &code, &pkce.verifier).await).await;
    for name in ["access_token", "refresh_token", "id_token"] {
        keep(name, tokens[name].as_str().unwrap_or_else(|| panic!("{name}")));
    }
    let rotated = token_request(
        &server,
        &client,
        &[("grant_type", "refresh_token"), ("refresh_token", tokens["refresh_token"].as_str().expect("refresh"))],
    )
    .await;
    keep("rotated refresh token", json(rotated).await["refresh_token"].as_str().expect("successor"));
    let (unredeemed, _) = obtain_code(&server, &browser, &client, &[]).await;
    keep("unredeemed code", &unredeemed);

    // The device grant: a device code redeemed, and one whose code was entered in the browser
    // and waits on the confirmation page (its ticket in the key-value store).
    let mut user_codes = Vec::new();
    {
        use crate::oauth::device_code::{approve_in, device_client, enter, poll, start};
        let tv = device_client(&server).await;
        let redeemed = start(&server, &tv, "openid offline_access").await;
        let user_code = redeemed["user_code"].as_str().expect("user code").to_string();
        approve_in(&server, &browser, &user_code, "approve").await;
        let device_code = redeemed["device_code"].as_str().expect("device code");
        keep("device code", device_code);
        let device_tokens = json(poll(&server, &tv, device_code).await).await;
        keep("device access token", device_tokens["access_token"].as_str().expect("access token"));
        keep("device refresh token", device_tokens["refresh_token"].as_str().expect("refresh token"));
        let waiting = start(&server, &tv, "openid").await;
        let waiting_code = waiting["user_code"].as_str().expect("user code").to_string();
        let entered = enter(&server, &browser, &waiting_code).await;
        assert_eq!(entered.status(), 303);
        assert_eq!(browser.get(&server.url(&location(&entered))).await.status(), 200, "confirmation open");
        keep("waiting device code", waiting["device_code"].as_str().expect("device code"));
        user_codes.extend([user_code, waiting_code]);
    }

    // One-time codes: a pending verification and an unused reset.
    assert_eq!(
        api_post(&server, "/api/v1/auth/register", None, &json!({ "email": BOB, "password": BOB_PASSWORD }))
            .await
            .status(),
        201
    );
    keep("bob's password", BOB_PASSWORD);
    keep("verification code", &mailed_code(&server, BOB, "Confirm"));
    assert_eq!(api_post(&server, "/api/v1/auth/forgot-password", None, &json!({ "email": ALICE })).await.status(), 202);
    keep("reset code", &mailed_code(&server, ALICE, "Reset"));
    // And a reset that was used, with the new password.
    assert_eq!(api_post(&server, "/api/v1/auth/forgot-password", None, &json!({ "email": ROOT })).await.status(), 202);
    let used_reset = mailed_code(&server, ROOT, "Reset");
    let reset = api_post(
        &server,
        "/api/v1/auth/reset-password",
        None,
        &json!({ "token": used_reset, "password": NEW_PASSWORD }),
    )
    .await;
    assert_eq!(reset.status(), 204);
    keep("used reset code", &used_reset);
    keep("new password", NEW_PASSWORD);

    // Dynamic registration: the initial access token, the client secret and both registration
    // access tokens (the first is replaced by an update).
    // The reset above ended the administrator's tokens: a fresh sign-in.
    let admin_again = api_login(&server, ROOT, NEW_PASSWORD).await;
    let admin_again = admin_again["access_token"].as_str().expect("admin token").to_string();
    keep("second admin access token", &admin_again);
    let initial = api_post(&server, "/api/v1/admin/registration-tokens", Some(&admin_again), &json!({})).await;
    assert_eq!(initial.status(), 201);
    let initial = json(initial).await["token"].as_str().expect("token").to_string();
    keep("initial access token", &initial);
    let registered = reqwest::Client::new()
        .post(server.url("/register"))
        .bearer_auth(&initial)
        .json(&json!({ "redirect_uris": [REDIRECT] }))
        .send()
        .await
        .expect("register");
    assert_eq!(registered.status(), 201);
    let registered = json(registered).await;
    keep("registered client secret", registered["client_secret"].as_str().expect("secret"));
    let access = registered["registration_access_token"].as_str().expect("registration access token");
    keep("registration access token", access);
    let updated = reqwest::Client::new()
        .put(registered["registration_client_uri"].as_str().expect("uri"))
        .bearer_auth(access)
        .json(&json!({ "client_id": registered["client_id"], "redirect_uris": [REDIRECT] }))
        .send()
        .await
        .expect("update");
    assert_eq!(updated.status(), 200);
    keep("renewed registration access token", json(updated).await["registration_access_token"].as_str().expect("t"));

    // User codes are short (8 letters), so they are checked as typed and as stored, normalised.
    for code in user_codes {
        secrets.push(("user code".into(), code.replace('-', "")));
        secrets.push(("user code as shown".into(), code));
    }
    let dump = full_database_dump(&server).await;
    // The dump is real: it has the rows the flows wrote, with their keyed hashes.
    assert!(dump.contains(&client.id) && dump.contains(ALICE) && dump.contains(BOB), "dump:\n{dump}");
    let code_hash = server.state.secret.keyed_hash(oxidp::oauth::CODE_HASH_PURPOSE, &unredeemed);
    assert!(dump.contains(&code_hash), "the unredeemed code is stored as its keyed hash");
    assert!(dump.contains("$argon2id$"), "passwords are argon2id hashes");
    assert!(!dump.contains("PRIVATE KEY"), "signing keys are encrypted");
    assert_absent(&dump, &secrets, "the database");

    // With Redis (the PostgreSQL test servers), the same holds for every key and value there:
    // sessions, pending requests, counters, stamps.
    if let Some(redis_dump) = full_redis_dump(&server).await {
        assert!(redis_dump.contains("session:"), "the browser session is in Redis:\n{redis_dump}");
        assert_absent(&redis_dump, &secrets, "Redis");
    }
}

/// Every key under the server's Redis prefix with its value, whatever its type; `None` without Redis.
async fn full_redis_dump(server: &TestServer) -> Option<String> {
    use redis::AsyncCommands;
    let url = server.state.config.redis_url.clone()?;
    let prefix = server.state.config.redis_key_prefix.clone();
    let client = redis::Client::open(url).expect("redis URL");
    let mut redis = client.get_multiplexed_async_connection().await.expect("redis connection");
    let keys: Vec<String> = redis.keys(format!("{prefix}*")).await.expect("KEYS");
    let mut dump = String::new();
    for key in keys {
        let kind: String = redis::cmd("TYPE").arg(&key).query_async(&mut redis).await.expect("TYPE");
        let value = match kind.as_str() {
            "string" => {
                let bytes: Vec<u8> = redis.get(&key).await.expect("GET");
                String::from_utf8_lossy(&bytes).into_owned()
            }
            "hash" => format!("{:?}", redis.hgetall::<_, Vec<(String, String)>>(&key).await.expect("HGETALL")),
            "set" => format!("{:?}", redis.smembers::<_, Vec<String>>(&key).await.expect("SMEMBERS")),
            "zset" => format!("{:?}", redis.zrange::<_, Vec<String>>(&key, 0, -1).await.expect("ZRANGE")),
            "list" => format!("{:?}", redis.lrange::<_, Vec<String>>(&key, 0, -1).await.expect("LRANGE")),
            other => format!("<{other}>"),
        };
        dump.push_str(&format!("{key} = {value}\n"));
    }
    Some(dump)
}

// ---------------------------------------------------------------------------------------------
// Key files and signing keys

async fn secret_key_file_is_private_and_signing_keys_are_encrypted(backend: Backend) {
    // No configured secret: the server generates keys/secret.key on first start.
    let server = TestServer::start_with(backend, |config| config.secret_key = None).await;
    let path = std::path::Path::new(&server.state.config.keys_dir).join("secret.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).expect("secret.key exists").permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "keys/secret.key is private to its owner: {mode:o}");
    }
    let master = std::fs::read_to_string(&path).expect("secret.key");
    use oxidp::store::SigningKeyStore;
    let records = server.state.db.signing_keys().await.expect("signing keys");
    assert!(!records.is_empty());
    let other = oxidp::crypto::ServerSecret::from_bytes(&[42u8; 32]);
    for record in &records {
        let sealed = &record.private_key_enc;
        assert!(!sealed.contains("PRIVATE") && !sealed.contains("BEGIN"), "the private key is not stored as PEM");
        let pem = server.state.secret.decrypt(sealed).expect("the server's own secret opens it");
        assert!(String::from_utf8_lossy(&pem).contains("PRIVATE KEY"));
        assert!(other.decrypt(sealed).is_err(), "another secret does not");
    }
    let dump = full_database_dump(&server).await;
    assert_absent(&dump, &[("server secret".into(), master.trim().to_string())], "the database");
}
