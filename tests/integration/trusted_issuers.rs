//! External bearer tokens on the account API: JWT access tokens of a configured trusted issuer
//! (here a second oxidp, A) are accepted when signature, `iss`, `aud` and `exp` check out; the
//! user is upserted by (issuer, `sub`). Unknown issuers, wrong audiences, forged or expired
//! tokens are refused, and such a token never reaches the admin API.

use oxidp::config::TrustedIssuerConfig;
use oxidp::store::{IdentityStore, UserStore};
use serde_json::{Value, json};

use crate::common::*;
use crate::on_both_backends;

on_both_backends!(trusted_issuer_tokens_sign_in_to_the_account_api, foreign_and_forged_tokens_are_refused);

const AUDIENCE: &str = "oxidp-b-api";

async fn servers(backend: Backend) -> (TestServer, TestServer) {
    let a = TestServer::start(backend).await;
    let issuer = a.base.clone();
    let b = TestServer::start_with(backend, move |config| {
        let trusted = TrustedIssuerConfig {
            issuer,
            audience: AUDIENCE.into(),
            jwks_url: None,
            trust_email: Some(true),
            trust_unverified_email: false,
            timeout: Some(2),
            token_types: None,
        };
        config.trusted_issuer.insert("a".into(), trusted);
    })
    .await;
    (a, b)
}

/// An access token of `email` at `server`, for a client whose tokens name `audience`.
pub(crate) async fn token_from(server: &TestServer, email: &str, audience: &str) -> String {
    if server.state.db.user_by_email(email).await.expect("db").is_none() {
        server.user(email, PASSWORD).await;
    }
    let client = server.client(&["--name", "Service", "--redirect-uri", REDIRECT, "--audience", audience]).await;
    let browser = Browser::new();
    let pkce = pkce();
    let url = authorize_url(server, &client, &pkce, &[]);
    let redirect = run_browser_flow(server, &browser, &url, email, PASSWORD).await;
    let code = query_of(&redirect)["code"].clone();
    let body = json(redeem(server, &client, &code, &pkce.verifier).await).await;
    body["access_token"].as_str().expect("access token").to_string()
}

async fn me(server: &TestServer, token: &str) -> reqwest::Response {
    reqwest::Client::new().get(server.url("/api/v1/users/me")).bearer_auth(token).send().await.expect("me")
}

async fn problem_code(response: reqwest::Response) -> String {
    assert_eq!(response.headers()["content-type"], "application/problem+json");
    json(response).await["code"].as_str().expect("code").to_string()
}

async fn trusted_issuer_tokens_sign_in_to_the_account_api(backend: Backend) {
    let (a, b) = servers(backend).await;
    let token = token_from(&a, "alice@example.com", AUDIENCE).await;

    // First use: the user is made at B, with the email A's userinfo knows.
    let response = me(&b, &token).await;
    assert_eq!(response.status(), 200);
    let profile = json(response).await;
    assert_eq!(profile["email"], "alice@example.com");
    let alice_at_a = a.state.db.user_by_email("alice@example.com").await.expect("db").expect("alice");
    let identity = b.state.db.identity("a", &alice_at_a.sub).await.expect("db").expect("identity (a, sub)");
    let user = b.state.db.user_by_id(&identity.user_id).await.expect("db").expect("user");
    assert_eq!(profile["sub"], user.sub.as_str(), "B's own subject");

    // Again: the same user, nothing new.
    let again = json(me(&b, &token).await).await;
    assert_eq!(again["sub"], profile["sub"]);
    assert_eq!(b.state.db.count_users().await.expect("count"), 1);
    let identities = reqwest::Client::new()
        .get(b.url("/api/v1/users/me/identities"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("identities");
    assert_eq!(identities.status(), 200);
    let identities = json(identities).await;
    assert_eq!(identities["items"][0]["provider"], "a");

    // Account rights only: the admin API refuses it even for an administrator.
    b.state.db.set_role_and_status(&user.id, Some("admin"), None, b.clock_now()).await.expect("promote");
    let response =
        reqwest::Client::new().get(b.url("/api/v1/admin/users")).bearer_auth(&token).send().await.expect("admin");
    assert_eq!(response.status(), 403);

    // Expired on B's clock.
    b.clock.advance(901);
    let response = me(&b, &token).await;
    assert_eq!(response.status(), 401);
    assert_eq!(problem_code(response).await, "invalid_token");
}

fn forged(issuer: &str, kid: &str, alg_none: bool) -> String {
    use josekit::jwk::alg::rsa::RsaKeyPair;
    let claims = json!({
        "iss": issuer, "sub": "forged", "aud": AUDIENCE, "exp": 4_000_000_000i64, "iat": 1_700_000_000i64,
        "email": "forged@example.com", "email_verified": true,
    });
    if alg_none {
        let header = oxidp::crypto::b64url(json!({ "alg": "none", "typ": "at+jwt" }).to_string());
        return format!("{header}.{}.", oxidp::crypto::b64url(claims.to_string()));
    }
    let pair = RsaKeyPair::generate(2048).expect("key");
    let mut header = josekit::jws::JwsHeader::new();
    header.set_token_type("at+jwt");
    header.set_key_id(kid);
    let payload = josekit::jwt::JwtPayload::from_map(claims.as_object().expect("map").clone()).expect("payload");
    let signer = josekit::jws::RS256.signer_from_pem(pair.to_pem_private_key()).expect("signer");
    josekit::jwt::encode_with_signer(&payload, &header, &signer).expect("sign")
}

async fn foreign_and_forged_tokens_are_refused(backend: Backend) {
    let (a, b) = servers(backend).await;
    let c = TestServer::start(backend).await;

    // An issuer B does not trust.
    let response = me(&b, &token_from(&c, "carol@example.com", AUDIENCE).await).await;
    assert_eq!(response.status(), 401, "unknown issuer");
    assert_eq!(problem_code(response).await, "invalid_token");

    // The trusted issuer, another audience.
    let response = me(&b, &token_from(&a, "alice@example.com", "another-api").await).await;
    assert_eq!(response.status(), 401, "wrong audience");
    assert_eq!(problem_code(response).await, "invalid_audience");

    // A's token with its signature altered.
    let token = token_from(&a, "alice@example.com", AUDIENCE).await;
    let mut tampered = token.clone();
    let last = tampered.pop().expect("char");
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    assert_eq!(me(&b, &tampered).await.status(), 401, "bad signature");
    // Claiming A as issuer with a key A never published, or with no signature at all.
    let jwks: serde_json::Value = serde_json::from_str(&a.state.keys.jwks_json()).expect("jwks");
    let kid = jwks["keys"][0]["kid"].as_str().expect("kid").to_string();
    for (what, token) in [
        ("unknown kid", forged(&a.base, "not-a-key-of-a", false)),
        ("A's kid, another key", forged(&a.base, &kid, false)),
        ("alg none", forged(&a.base, &kid, true)),
    ] {
        let response = me(&b, &token).await;
        assert_eq!(response.status(), 401, "{what}");
        assert_eq!(problem_code(response).await, "invalid_token", "{what}");
    }
    assert!(b.state.db.user_by_email("forged@example.com").await.expect("db").is_none());

    // The email of B's administrator: never linked automatically, even from a trusted issuer.
    b.user_with_role("admin@example.com", PASSWORD, true).await;
    let response = me(&b, &token_from(&a, "admin@example.com", AUDIENCE).await).await;
    assert_eq!(response.status(), 403);
    assert_eq!(problem_code(response).await, "identity_conflict");
    let admin_at_a = a.state.db.user_by_email("admin@example.com").await.expect("db").expect("admin at A");
    assert!(b.state.db.identity("a", &admin_at_a.sub).await.expect("db").is_none());

    // Issue #12 item 7: A's ID tokens (typ JWT), signed with A's real key and naming B's
    // audience, are not access tokens: refused unless OXIDP_TRUSTED_ISSUER__A__TOKEN_TYPES lists them.
    let now = a.clock_now();
    let id_token_claims = json!({
        "iss": a.base, "sub": "id-token-subject", "aud": AUDIENCE, "exp": now + 600, "iat": now,
        "email": "idtoken@example.com", "email_verified": true,
    });
    let id_token = a.state.keys.sign("JWT", id_token_claims.as_object().expect("claims")).expect("sign");
    let response = me(&b, &id_token).await;
    assert_eq!(response.status(), 401, "an ID token is not an access token");
    assert_eq!(problem_code(response).await, "invalid_token");
    assert!(b.state.db.user_by_email("idtoken@example.com").await.expect("db").is_none());

    // Still fine for the genuine token.
    let response = me(&b, &token).await;
    assert_eq!(response.status(), 200);
    let body: Value = json(response).await;
    assert_eq!(body["email"], "alice@example.com");
}
