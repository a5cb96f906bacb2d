//! The housekeeping purge (`src/housekeeping.rs`): codes, grants with their refresh tokens and
//! ended sessions go on time, and nothing a code replay or a refresh still needs goes before.

use crate::common::*;
use crate::on_both_backends;

on_both_backends!(housekeeping_purges_on_time_and_not_before);

async fn housekeeping_purges_on_time_and_not_before(backend: Backend) {
    use oxidp::store::GrantStore;
    let server = TestServer::start_with(backend, |config| {
        config.refresh_token_ttl = 1000;
        config.refresh_token_max_ttl = 2000;
    })
    .await;
    server.user("alice@example.com", PASSWORD).await;
    let client = server.client(&["--name", "App", "--redirect-uri", REDIRECT]).await;
    let browser = Browser::new();
    let (code, pkce) = obtain_code(&server, &browser, &client, &[]).await;
    let tokens = json(redeem(&server, &client, &code, &pkce.verifier).await).await;
    let refresh = tokens["refresh_token"].as_str().expect("refresh").to_string();
    let hash = server.state.secret.keyed_hash(oxidp::oauth::REFRESH_HASH_PURPOSE, &refresh);

    // Just before the family's absolute end (2000 s) nothing it needs is gone: a code replay
    // is still recognised, and the refresh token is still known.
    server.clock.advance(1999);
    let purged = oxidp::housekeeping::purge(&server.state).await.expect("purge");
    assert_eq!(purged.codes, 0, "codes stay while their tokens may live");
    assert_eq!(purged.grants, 0);
    assert_eq!(purged.sessions, 0, "the browser session is inside its idle timeout (3600 s)");
    assert!(server.state.db.refresh_token_by_hash(&hash).await.expect("read").is_some());
    let replay = redeem(&server, &client, &code, &pkce.verifier).await;
    assert_eq!(json(replay).await["error"], "invalid_grant");

    server.clock.advance(100);
    let purged = oxidp::housekeeping::purge(&server.state).await.expect("purge");
    assert!(purged.codes >= 1 && purged.grants >= 1, "{purged:?}");
    assert!(
        server.state.db.refresh_token_by_hash(&hash).await.expect("read").is_none(),
        "refresh tokens go with their family"
    );
    server.clock.advance(3601 - 2099);
    let purged = oxidp::housekeeping::purge(&server.state).await.expect("purge");
    // From the table, or (Redis removing the key by its TTL) from Redis's expiry index.
    assert_eq!(purged.sessions, 1, "the browser session passed its idle timeout");
    let silent = authorize_url(&server, &client, &pkce, &[("prompt", "none")]);
    let redirect = location(&browser.get(&silent).await);
    assert_eq!(query_of(&redirect).get("error").map(String::as_str), Some("login_required"), "{redirect}");
    let again = oxidp::housekeeping::purge(&server.state).await.expect("purge");
    assert_eq!(again, oxidp::store::housekeeping::Purged::default(), "nothing left to purge");
}
