//! Imported password hashes (bcrypt, Django's and passlib's PBKDF2-SHA256, argon2i): a person
//! signs in with the password they had, through the login page and the JSON API, and the stored
//! hash is then today's argon2id; a wrong password changes nothing.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use serde_json::json;

use crate::common::*;
use crate::on_both_backends;
use oxidp::store::UserStore;

on_both_backends!(legacy_hashes_sign_in_and_are_replaced_by_argon2id);

const PASSWORD_OF_RFC_7914: &str = "passwd";
/// PBKDF2-HMAC-SHA256("passwd", "salt", 1), 32 bytes (RFC 7914 §11).
const DERIVED: [u8; 32] = [
    0x55, 0xac, 0x04, 0x6e, 0x56, 0xe3, 0x08, 0x9f, 0xec, 0x16, 0x91, 0xc2, 0x25, 0x44, 0xb6, 0x05, 0xf9, 0x41, 0x85,
    0x21, 0x6d, 0xde, 0x04, 0x65, 0xe6, 0x8b, 0x9d, 0x57, 0xc2, 0x0d, 0xac, 0xbc,
];

async fn api_login(server: &TestServer, email: &str, password: &str) -> u16 {
    let response = reqwest::Client::new()
        .post(server.url("/api/v1/auth/login"))
        .json(&json!({ "email": email, "password": password }))
        .send()
        .await
        .expect("login");
    response.status().as_u16()
}

async fn legacy_hashes_sign_in_and_are_replaced_by_argon2id(backend: Backend) {
    let server = TestServer::start(backend).await;
    let ab64 = |bytes: &[u8]| STANDARD_NO_PAD.encode(bytes).replace('+', ".");
    let cases = [
        ("bcrypt@example.com", bcrypt::hash(PASSWORD, 4).expect("bcrypt"), PASSWORD),
        ("django@example.com", format!("pbkdf2_sha256$1$salt${}", STANDARD.encode(DERIVED)), PASSWORD_OF_RFC_7914),
        ("passlib@example.com", format!("$pbkdf2-sha256$1${}${}", ab64(b"salt"), ab64(&DERIVED)), PASSWORD_OF_RFC_7914),
    ];
    for (email, hash, password) in &cases {
        let user = server.user(email, PASSWORD).await;
        server.state.db.set_password_hash(&user.id, hash, 0).await.expect("store the imported hash");
        // A wrong password: refused, and the imported hash stays.
        assert_eq!(api_login(&server, email, "not-the-password").await, 401, "{email}");
        let stored = server.state.db.user_by_id(&user.id).await.expect("read").expect("user");
        assert_eq!(stored.password_hash.as_deref(), Some(hash.as_str()), "{email}");
        // The right one: signed in, and the hash is now argon2id that still verifies.
        assert_eq!(api_login(&server, email, password).await, 200, "{email}");
        let stored = server.state.db.user_by_id(&user.id).await.expect("read").expect("user");
        let now = stored.password_hash.expect("a hash");
        assert!(now.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{email}: {now}");
        assert!(oxidp::passwords::verify_password(password, Some(&now)), "{email}");
        assert_eq!(api_login(&server, email, password).await, 200, "{email}: again, with argon2id");
    }
    // The browser's login page takes the same path.
    let user = server.user("page@example.com", PASSWORD).await;
    let hash = bcrypt::hash(PASSWORD, 4).expect("bcrypt");
    server.state.db.set_password_hash(&user.id, &hash, 0).await.expect("store");
    let client = server.client(&["--name", "App", "--redirect-uri", REDIRECT]).await;
    obtain_code_as(&server, &client, "page@example.com").await;
    let stored = server.state.db.user_by_id(&user.id).await.expect("read").expect("user");
    assert!(stored.password_hash.expect("hash").starts_with("$argon2id$"), "re-hashed at the login page");
}

async fn obtain_code_as(server: &TestServer, client: &TestClient, email: &str) {
    let browser = Browser::new();
    let pkce = pkce();
    let url = authorize_url(server, client, &pkce, &[]);
    let redirect = run_browser_flow(server, &browser, &url, email, PASSWORD).await;
    assert!(query_of(&redirect).contains_key("code"), "{redirect}");
}
