//! ES256 and EdDSA beside RS256 (issue #7 item 4): discovery lists them, the JWKS publishes a key
//! of each, a client that asks gets its ID tokens in its algorithm (verified with an independent
//! library), access tokens stay RS256, and only offered algorithms are accepted.

use jsonwebtoken::Algorithm;
use serde_json::{Value, json};

use crate::common::*;
use crate::on_both_backends;

on_both_backends!(
    discovery_and_jwks_offer_three_algorithms,
    id_tokens_follow_the_client_algorithm,
    only_offered_algorithms_are_accepted,
    each_algorithm_rotates_on_its_own
);

async fn jwks(server: &TestServer) -> Vec<Value> {
    let response = reqwest::get(server.url("/jwks.json")).await.expect("jwks");
    assert_eq!(response.status(), 200);
    json(response).await["keys"].as_array().expect("keys").clone()
}

async fn discovery_and_jwks_offer_three_algorithms(backend: Backend) {
    let server = TestServer::start(backend).await;
    let discovery = json(reqwest::get(server.url("/.well-known/openid-configuration")).await.expect("discovery")).await;
    assert_eq!(discovery["id_token_signing_alg_values_supported"], json!(["RS256", "ES256", "EdDSA"]));

    let keys = jwks(&server).await;
    let by_alg = |alg: &str| keys.iter().find(|k| k["alg"] == alg).unwrap_or_else(|| panic!("{alg} key: {keys:?}"));
    assert_eq!(keys.len(), 3);
    assert_eq!(by_alg("RS256")["kty"], "RSA");
    assert_eq!((by_alg("ES256")["kty"].clone(), by_alg("ES256")["crv"].clone()), (json!("EC"), json!("P-256")));
    assert_eq!((by_alg("EdDSA")["kty"].clone(), by_alg("EdDSA")["crv"].clone()), (json!("OKP"), json!("Ed25519")));
    for key in &keys {
        let key = key.as_object().expect("object");
        assert_eq!(key["use"], "sig");
        assert!(!key.contains_key("d"), "private member published: {key:?}");
        let jwk = josekit::jwk::Jwk::from_map(key.clone()).expect("jwk");
        assert_eq!(oxidp::keys::thumbprint(&jwk).as_deref(), key["kid"].as_str(), "kid is the thumbprint");
    }

    // A deployment that offers RS256 only publishes and lists RS256 only.
    let rsa_only = TestServer::start_with(backend, |config| config.signing_algs = vec!["RS256".into()]).await;
    let discovery =
        json(reqwest::get(rsa_only.url("/.well-known/openid-configuration")).await.expect("discovery")).await;
    assert_eq!(discovery["id_token_signing_alg_values_supported"], json!(["RS256"]));
    assert_eq!(jwks(&rsa_only).await.len(), 1);
}

async fn id_tokens_follow_the_client_algorithm(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.user("alice@example.com", PASSWORD).await;
    for (alg, expected) in [("ES256", Algorithm::ES256), ("EdDSA", Algorithm::EdDSA), ("RS256", Algorithm::RS256)] {
        let client = server.client(&["--name", "App", "--redirect-uri", REDIRECT, "--id-token-alg", alg]).await;
        let browser = Browser::new();
        let (code, pkce) = obtain_code(&server, &browser, &client, &[("nonce", "n-1")]).await;
        let response = redeem(&server, &client, &code, &pkce.verifier).await;
        assert_eq!(response.status(), 200, "{alg}");
        let body = json(response).await;
        let access_token = body["access_token"].as_str().expect("access token");
        // Access tokens stay RS256 whatever the client's ID-token algorithm.
        server.verify_jwt(access_token, &client.id, "at+jwt").await;
        let id_token = body["id_token"].as_str().expect("id token");
        let claims = server.verify_jwt_alg(id_token, &client.id, "JWT", expected).await;
        assert_eq!(claims["nonce"], "n-1");
        assert_eq!(claims["at_hash"], oxidp::oidc::id_token::at_hash(alg, access_token).as_str(), "{alg}");

        // The ID token is accepted as id_token_hint whatever its algorithm.
        let logout = browser.get(&server.url(&format!("/logout?id_token_hint={id_token}"))).await;
        assert!(logout.status().is_success() || logout.status().is_redirection(), "{alg}: {}", logout.status());
    }
    // EdDSA's at_hash is the left half of SHA-512, not SHA-256.
    assert_ne!(oxidp::oidc::id_token::at_hash("EdDSA", "token"), oxidp::oidc::id_token::at_hash("RS256", "token"));
    assert_eq!(oxidp::oidc::id_token::at_hash("EdDSA", "token").len(), 43);
}

async fn only_offered_algorithms_are_accepted(backend: Backend) {
    let server =
        TestServer::start_with(backend, |config| config.signing_algs = vec!["RS256".into(), "ES256".into()]).await;
    let admin = admin_token(&server).await;
    let http = reqwest::Client::new();
    let create = |alg: &str| {
        http.post(server.url("/api/v1/admin/clients"))
            .bearer_auth(&admin)
            .json(&json!({ "name": "App", "redirect_uris": [REDIRECT], "id_token_signed_response_alg": alg }))
            .send()
    };
    for refused in ["EdDSA", "HS256", "none", ""] {
        let response = create(refused).await.expect("create");
        assert_eq!(response.status(), 400, "{refused}");
        assert_eq!(response.headers()["content-type"], "application/problem+json");
        let problem = json(response).await;
        assert_eq!(problem["field"], "id_token_signed_response_alg", "{problem}");
    }
    let response = create("ES256").await.expect("create");
    assert_eq!(response.status(), 201);
    let created = json(response).await;
    assert_eq!(created["id_token_signed_response_alg"], "ES256");
    let id = created["client_id"].as_str().expect("id");

    let patch = |alg: &str| {
        http.patch(server.url(&format!("/api/v1/admin/clients/{id}")))
            .bearer_auth(&admin)
            .json(&json!({ "id_token_signed_response_alg": alg }))
            .send()
    };
    assert_eq!(patch("EdDSA").await.expect("patch").status(), 400);
    let response = patch("RS256").await.expect("patch");
    assert_eq!(response.status(), 200);
    assert_eq!(json(response).await["id_token_signed_response_alg"], "RS256");
    // Clients that never chose report the default.
    let plain = server.client(&["--name", "Plain", "--redirect-uri", REDIRECT]).await;
    let view = http
        .get(server.url(&format!("/api/v1/admin/clients/{}", plain.id)))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("get");
    assert_eq!(json(view).await["id_token_signed_response_alg"], "RS256");

    // The CLI refuses the same way, naming its flag.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_oxidp"))
        .args(["client", "create", "--name", "X", "--redirect-uri", REDIRECT, "--id-token-alg", "HS256"])
        .env("OXIDP_DATABASE_URL", &server.state.config.database_url)
        .env("OXIDP_SECRET_KEY", server.state.config.secret_key.as_deref().expect("test secret"))
        .env("OXIDP_SIGNING_ALGS", "RS256,ES256")
        .output()
        .expect("cli");
    assert_eq!(output.status.code(), Some(2), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--id-token-alg"));
    // And `keys rotate` for an algorithm this deployment does not offer.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_oxidp"))
        .args(["keys", "rotate", "--alg", "EdDSA"])
        .env("OXIDP_DATABASE_URL", &server.state.config.database_url)
        .env("OXIDP_SECRET_KEY", server.state.config.secret_key.as_deref().expect("test secret"))
        .env("OXIDP_SIGNING_ALGS", "RS256,ES256")
        .output()
        .expect("cli");
    assert_eq!(output.status.code(), Some(2), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--alg EdDSA"));
}

async fn each_algorithm_rotates_on_its_own(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = admin_token(&server).await;
    let http = reqwest::Client::new();
    let rotate =
        |alg: &str| http.post(server.url(&format!("/api/v1/admin/keys/rotate?alg={alg}"))).bearer_auth(&admin).send();
    let response = rotate("ES256").await.expect("rotate");
    assert_eq!(response.status(), 200);
    let rotated = json(response).await;
    assert_eq!(rotated["alg"], "ES256");
    assert_eq!(rotate("HS256").await.expect("rotate").status(), 400);

    let keys = jwks(&server).await;
    assert_eq!(keys.iter().filter(|k| k["alg"] == "ES256").count(), 2, "old and pending ES256 keys published");
    assert_eq!(keys.iter().filter(|k| k["alg"] == "RS256").count(), 1, "RS256 untouched");
    // The pending ES256 key supersedes only the old ES256 key: RS256 keeps signing with its one key.
    server.clock.advance(331);
    let listed = server.state.keys.list().await.expect("list");
    let statuses: Vec<(String, &str)> = listed.iter().map(|k| (k.alg.clone(), k.status)).collect();
    assert!(statuses.contains(&("RS256".into(), "active")), "{statuses:?}");
    assert!(statuses.contains(&("ES256".into(), "retired")), "{statuses:?}");
    assert_eq!(statuses.iter().filter(|(alg, status)| alg == "ES256" && *status == "active").count(), 1);
    let active_es = listed.iter().find(|k| k.alg == "ES256" && k.status == "active").expect("active ES256");
    assert_eq!(active_es.kid, rotated["kid"].as_str().expect("kid"));
}
