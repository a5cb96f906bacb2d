//! DPoP at resources: /userinfo and oxidp's own API take a bound token only with the DPoP
//! scheme and a proof of its key that hashes it (`ath`); refusals carry the `DPoP` challenge.

use super::*;
use crate::on_both_backends;

on_both_backends!(userinfo_checks_the_scheme_the_proof_and_ath, oxidps_own_api_takes_the_dpop_scheme);

async fn userinfo_checks_the_scheme_the_proof_and_ath(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = public_client_with_alice(&server).await;
    let (key, other) = (Key::es256(), Key::es256());
    let (code, pkce) = obtain_code(&server, &Browser::new(), &client, &[]).await;
    let proof = key.proof(&server, "POST", "/token");
    let tokens = expect_dpop_token(redeem_dpop(&server, &client, &code, &pkce, Some(&proof)).await, &key).await;
    let access = tokens["access_token"].as_str().expect("access");
    let scheme = format!("DPoP {access}");

    let ok = userinfo(&server, &scheme, &[&key.proof_for(&server, "GET", "/userinfo", access)]).await;
    assert_eq!(ok.status(), 200);
    assert!(json(ok).await["sub"].is_string());

    // A bound token sent as Bearer.
    expect_dpop_challenge(userinfo(&server, &format!("Bearer {access}"), &[]).await, "invalid_token").await;
    // The DPoP scheme without a proof, without ath, with another token's ath, by another key,
    // for another method, replayed.
    expect_dpop_challenge(userinfo(&server, &scheme, &[]).await, "invalid_dpop_proof").await;
    let no_ath = key.proof(&server, "GET", "/userinfo");
    expect_dpop_challenge(userinfo(&server, &scheme, &[&no_ath]).await, "invalid_dpop_proof").await;
    let wrong_ath = key.proof_for(&server, "GET", "/userinfo", "another-token");
    expect_dpop_challenge(userinfo(&server, &scheme, &[&wrong_ath]).await, "invalid_dpop_proof").await;
    let other_key = other.proof_for(&server, "GET", "/userinfo", access);
    expect_dpop_challenge(userinfo(&server, &scheme, &[&other_key]).await, "invalid_dpop_proof").await;
    let post = key.proof_for(&server, "POST", "/userinfo", access);
    expect_dpop_challenge(userinfo(&server, &scheme, &[&post]).await, "invalid_dpop_proof").await;
    let once = key.proof_for(&server, "GET", "/userinfo", access);
    assert_eq!(userinfo(&server, &scheme, &[&once]).await.status(), 200);
    expect_dpop_challenge(userinfo(&server, &scheme, &[&once]).await, "invalid_dpop_proof").await;

    // An unbound token sent with the DPoP scheme.
    let (code, pkce) = obtain_code(&server, &Browser::new(), &client, &[]).await;
    let plain = json(redeem_dpop(&server, &client, &code, &pkce, None).await).await;
    let plain = plain["access_token"].as_str().expect("access");
    let proof = key.proof_for(&server, "GET", "/userinfo", plain);
    expect_dpop_challenge(userinfo(&server, &format!("DPoP {plain}"), &[&proof]).await, "invalid_token").await;
}

async fn oxidps_own_api_takes_the_dpop_scheme(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.user("alice@example.com", PASSWORD).await;
    let client = server
        .client(&[
            "--name",
            "Console",
            "--public",
            "--first-party",
            "--scopes",
            "openid account",
            "--redirect-uri",
            REDIRECT,
        ])
        .await;
    let key = Key::es256();
    let (code, pkce) = obtain_code(&server, &Browser::new(), &client, &[("scope", "openid account")]).await;
    let proof = key.proof(&server, "POST", "/token");
    let tokens = expect_dpop_token(redeem_dpop(&server, &client, &code, &pkce, Some(&proof)).await, &key).await;
    let access = tokens["access_token"].as_str().expect("access");
    let me = |authorization: String, proofs: Vec<String>| {
        let server = &server;
        async move {
            let mut request =
                reqwest::Client::new().get(server.url("/api/v1/users/me")).header("Authorization", authorization);
            for proof in proofs {
                request = request.header("DPoP", proof);
            }
            request.send().await.expect("me")
        }
    };
    let ok = me(format!("DPoP {access}"), vec![key.proof_for(&server, "GET", "/api/v1/users/me", access)]).await;
    assert_eq!(ok.status(), 200);
    assert_eq!(json(ok).await["email"], "alice@example.com");

    // Refusals are problem JSON with a DPoP challenge.
    let refused = |response: reqwest::Response, code: &'static str| async move {
        let challenge = response.headers().get("www-authenticate").map(|v| v.to_str().expect("ascii").to_string());
        assert_eq!(response.status(), 401);
        let challenge = challenge.expect("challenge");
        assert!(challenge.starts_with("DPoP ") && challenge.contains(&format!("error=\"{code}\"")), "{challenge}");
        assert_eq!(json(response).await["code"], code);
    };
    refused(me(format!("Bearer {access}"), vec![]).await, "invalid_token").await;
    refused(me(format!("DPoP {access}"), vec![]).await, "invalid_dpop_proof").await;
    let no_ath = key.proof(&server, "GET", "/api/v1/users/me");
    refused(me(format!("DPoP {access}"), vec![no_ath]).await, "invalid_dpop_proof").await;
    let elsewhere = key.proof_for(&server, "GET", "/api/v1/users/me/identities", access);
    refused(me(format!("DPoP {access}"), vec![elsewhere]).await, "invalid_dpop_proof").await;
}
