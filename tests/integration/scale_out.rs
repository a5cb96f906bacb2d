//! Two instances of one deployment (one PostgreSQL, one Redis, one server secret): everything a
//! user or client does at one instance holds at the other, here codes, sessions, refresh tokens
//! and revocation in one walk. Single concerns across instances are tested with their module:
//! login limits (login_throttle.rs), signing keys (keys.rs), the client cache (oauth/client_cache.rs),
//! dynamic registration (registration.rs), pushed requests (oauth/par.rs), request objects and
//! assertion replay (oauth/request_object.rs), pairwise subjects (oidc/pairwise.rs).

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_and_sessions_cross_instances() {
    let (a, b) = pair().await;
    a.user("alice@example.com", PASSWORD).await;
    let client = a.client(&["--name", "App", "--redirect-uri", REDIRECT]).await;
    let browser = Browser::new();

    // Authorize at A (login, consent), redeem the code at B.
    let (code, pkce) = obtain_code(&a, &browser, &client, &[]).await;
    let tokens = json(redeem(&b, &client, &code, &pkce.verifier).await).await;
    let access = tokens["access_token"].as_str().expect("access").to_string();
    let refresh = tokens["refresh_token"].as_str().expect("refresh").to_string();
    a.verify_jwt(&access, &client.id, "at+jwt").await;

    // The session made at A is valid at B (cookies ignore the port): prompt=none gives a code.
    let silent = authorize_url(&b, &client, &pkce, &[("prompt", "none")]);
    let redirect = location(&browser.get(&silent).await);
    assert!(query_of(&redirect).contains_key("code"), "session from A accepted at B: {redirect}");

    // Refresh at B, then reuse the old refresh token at A after the grace window: family revoked.
    let rotated =
        json(token_request(&b, &client, &[("grant_type", "refresh_token"), ("refresh_token", &refresh)]).await).await;
    let successor = rotated["refresh_token"].as_str().expect("successor").to_string();
    a.clock.advance(6);
    let reuse = token_request(&a, &client, &[("grant_type", "refresh_token"), ("refresh_token", &refresh)]).await;
    assert_eq!(json(reuse).await["error"], "invalid_grant");
    let after = token_request(&b, &client, &[("grant_type", "refresh_token"), ("refresh_token", &successor)]).await;
    assert_eq!(json(after).await["error"], "invalid_grant", "the family is revoked everywhere");

    // Revoke at A, introspect at B.
    let (code, pkce) = obtain_code(&a, &browser, &client, &[]).await;
    let fresh = json(redeem(&a, &client, &code, &pkce.verifier).await).await;
    let token = fresh["access_token"].as_str().expect("access");
    assert_eq!(json(client_post(&b, "/introspect", &client, &[("token", token)]).await).await["active"], true);
    assert_eq!(client_post(&a, "/revoke", &client, &[("token", token)]).await.status(), 200);
    assert_eq!(json(client_post(&b, "/introspect", &client, &[("token", token)]).await).await["active"], false);
}
