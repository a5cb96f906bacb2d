//! Token exchange (RFC 8693; issue #15 item 3) over real HTTP: a client allowed the grant trades
//! a subject token for an access token to a target its policy lists, only ever down-scoped and
//! never outliving the subject; delegation with `act`; federated subject tokens from a trusted
//! issuer (with `may_act`); every refusal in OAuth's JSON.

use josekit::jws::{ES256, JwsHeader};
use josekit::jwt::{self, JwtPayload};
use poem::{EndpointExt, Route, get, handler, web::Json as PoemJson};
use serde_json::{Value, json};

use super::expect_oauth_error;
use crate::common::*;
use crate::on_both_backends;
use oxidp::store::{AuditFilter, AuditStore};

on_both_backends!(
    own_tokens_are_exchanged_within_the_policy_and_only_down_scoped,
    delegation_nests_act_and_needs_the_policy,
    trusted_issuer_tokens_are_exchanged_and_may_act_allows_delegation,
    the_command_line_sets_the_policy,
);

const GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS: &str = "urn:ietf:params:oauth:token-type:access_token";
const JWT: &str = "urn:ietf:params:oauth:token-type:jwt";
const BOB: &str = "bob@example.com";

/// A confidential client allowed the grant, a target API (a resource server), and an admin token.
async fn setup(server: &TestServer) -> (TestClient, TestClient, String) {
    let grants = format!("authorization_code,refresh_token,{GRANT}");
    let exchanger = server.client(&["--name", "Gateway", "--redirect-uri", REDIRECT, "--grant-types", &grants]).await;
    let target =
        server.client(&["--name", "Orders API", "--resource-server", "--grant-types", "client_credentials"]).await;
    (exchanger, target, admin_token(server).await)
}

async fn set_policy(server: &TestServer, admin: &str, client_id: &str, policy: Value) -> reqwest::Response {
    reqwest::Client::new()
        .put(server.url(&format!("/api/v1/admin/clients/{client_id}/token-exchange")))
        .bearer_auth(admin)
        .json(&policy)
        .send()
        .await
        .expect("PUT policy")
}

/// The user's tokens for `client` after a browser sign-in.
async fn user_tokens(server: &TestServer, client: &TestClient, email: &str) -> Value {
    let browser = Browser::new();
    let pkce = pkce();
    let url = authorize_url(server, client, &pkce, &[]);
    let redirect = run_browser_flow(server, &browser, &url, email, PASSWORD).await;
    let code = query_of(&redirect)["code"].clone();
    json(redeem(server, client, &code, &pkce.verifier).await).await
}

async fn exchange(server: &TestServer, client: &TestClient, form: &[(&str, &str)]) -> reqwest::Response {
    let mut form = form.to_vec();
    form.push(("grant_type", GRANT));
    token_request(server, client, &form).await
}

async fn introspect(server: &TestServer, resource_server: &TestClient, token: &str) -> Value {
    json(client_post(server, "/introspect", resource_server, &[("token", token)]).await).await
}

async fn own_tokens_are_exchanged_within_the_policy_and_only_down_scoped(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = server.user("alice@example.com", PASSWORD).await;
    let (gateway, orders, admin) = setup(&server).await;
    let tokens = user_tokens(&server, &gateway, "alice@example.com").await;
    let subject = tokens["access_token"].as_str().expect("access token");
    let discovery = json(reqwest::get(server.url("/.well-known/openid-configuration")).await.expect("get")).await;
    assert!(discovery["grant_types_supported"].as_array().expect("list").contains(&json!(GRANT)));

    let good = [("subject_token", subject), ("subject_token_type", ACCESS), ("audience", orders.id.as_str())];
    // Outside the policy (none yet): invalid_target.
    expect_oauth_error(exchange(&server, &gateway, &good).await, 400, "invalid_target").await;
    let policy = json!({ "audiences": [orders.id], "resources": ["https://orders.example.com"] });
    let answer = set_policy(&server, &admin, &gateway.id, policy).await;
    assert_eq!(answer.status(), 200);
    let unknown = set_policy(&server, &admin, &gateway.id, json!({ "audiences": ["no-such-client"] })).await;
    assert_eq!(unknown.status(), 400, "audiences must be registered clients");
    let not_allowed = set_policy(&server, &admin, &orders.id, json!({ "audiences": [gateway.id] })).await;
    assert_eq!(not_allowed.status(), 400, "only for clients allowed the grant");

    let answer = exchange(&server, &gateway, &[("scope", "openid profile"), good[0], good[1], good[2]]).await;
    assert_eq!(answer.status(), 200);
    let exchanged = json(answer).await;
    assert_eq!(exchanged["issued_token_type"], ACCESS);
    assert_eq!(exchanged["token_type"], "Bearer");
    assert!(exchanged.get("refresh_token").is_none(), "no refresh token: {exchanged}");
    let token = exchanged["access_token"].as_str().expect("token");
    let claims = server.verify_jwt(token, &orders.id, "at+jwt").await;
    let subject_claims = server.verify_jwt(subject, &gateway.id, "at+jwt").await;
    assert_eq!(claims["sub"], alice.sub.as_str());
    assert_eq!(claims["client_id"], gateway.id.as_str());
    assert_eq!(claims["scope"], "openid profile");
    assert!(claims["exp"].as_i64() <= subject_claims["exp"].as_i64(), "never outlives the subject");
    assert!(claims.get("act").is_none(), "impersonation carries no act");
    assert_eq!(introspect(&server, &orders, token).await["active"], true);

    // The default scopes are the subject's, without offline access or oxidp's own API.
    let by_resource = [good[0], good[1], ("resource", "https://orders.example.com")];
    let default = json(exchange(&server, &gateway, &by_resource).await).await;
    let default_claims =
        server.verify_jwt(default["access_token"].as_str().expect("t"), "https://orders.example.com", "at+jwt");
    let scope = default_claims.await["scope"].as_str().expect("scope").to_string();
    assert!(!scope.contains("offline_access") && scope.contains("openid"), "{scope}");

    // Refusals.
    let escalate = [("scope", "openid admin"), good[0], good[1], good[2]];
    expect_oauth_error(exchange(&server, &gateway, &escalate).await, 400, "invalid_scope").await;
    let refresh_type =
        [("requested_token_type", "urn:ietf:params:oauth:token-type:refresh_token"), good[0], good[1], good[2]];
    expect_oauth_error(exchange(&server, &gateway, &refresh_type).await, 400, "invalid_request").await;
    let forged = format!("{}x", &subject[..subject.len() - 1]);
    let forged_form = [("subject_token", forged.as_str()), good[1], good[2]];
    expect_oauth_error(exchange(&server, &gateway, &forged_form).await, 400, "invalid_grant").await;
    let other_app = server.client(&["--name", "Other", "--redirect-uri", REDIRECT]).await;
    let foreign = user_tokens(&server, &other_app, "alice@example.com").await;
    let foreign_form = [("subject_token", foreign["access_token"].as_str().expect("t")), good[1], good[2]];
    expect_oauth_error(exchange(&server, &gateway, &foreign_form).await, 400, "invalid_grant").await;
    expect_oauth_error(exchange(&server, &other_app, &good).await, 400, "unauthorized_client").await;
    expect_oauth_error(exchange(&server, &gateway, &[good[0], good[2]]).await, 400, "invalid_request").await;

    let filter = AuditFilter { action: Some("token.exchange".into()), limit: 10, ..AuditFilter::default() };
    let entries = server.state.db.query_audit(&filter).await.expect("audit");
    assert_eq!(entries.len(), 2, "each exchange is audited");
    assert!(entries.iter().any(|entry| entry.details.to_string().contains(&orders.id)), "with its audience");

    // Revoking the subject's grant (its refresh token) revokes what was exchanged from it.
    let refresh = tokens["refresh_token"].as_str().expect("refresh");
    assert_eq!(client_post(&server, "/revoke", &gateway, &[("token", refresh)]).await.status(), 200);
    assert_eq!(introspect(&server, &orders, token).await["active"], false);
    expect_oauth_error(exchange(&server, &gateway, &good).await, 400, "invalid_grant").await;
}

async fn delegation_nests_act_and_needs_the_policy(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.user("alice@example.com", PASSWORD).await;
    let bob = server.user(BOB, PASSWORD).await;
    let (gateway, orders, admin) = setup(&server).await;
    let subject =
        user_tokens(&server, &gateway, "alice@example.com").await["access_token"].as_str().expect("t").to_string();
    let actor = user_tokens(&server, &gateway, BOB).await["access_token"].as_str().expect("t").to_string();
    let form = [
        ("subject_token", subject.as_str()),
        ("subject_token_type", ACCESS),
        ("actor_token", actor.as_str()),
        ("actor_token_type", ACCESS),
        ("audience", orders.id.as_str()),
    ];
    assert_eq!(set_policy(&server, &admin, &gateway.id, json!({ "audiences": [orders.id] })).await.status(), 200);
    expect_oauth_error(exchange(&server, &gateway, &form).await, 400, "invalid_grant").await;
    expect_oauth_error(exchange(&server, &gateway, &form[..4]).await, 400, "invalid_request").await;
    let actor_only = [form[0], form[1], form[2], form[4]];
    expect_oauth_error(exchange(&server, &gateway, &actor_only).await, 400, "invalid_request").await;

    let policy = json!({ "audiences": [orders.id, gateway.id], "delegation": true });
    assert_eq!(set_policy(&server, &admin, &gateway.id, policy).await.status(), 200);
    let delegated = json(exchange(&server, &gateway, &form).await).await;
    let delegated = delegated["access_token"].as_str().expect("delegated token").to_string();
    let claims = server.verify_jwt(&delegated, &orders.id, "at+jwt").await;
    assert_eq!(claims["act"]["sub"], bob.sub.as_str());
    assert_eq!(claims["act"]["client_id"], gateway.id.as_str());

    // Exchanged again with another actor: the earlier actor is nested inside.
    let again = [("subject_token", delegated.as_str()), form[1], form[2], form[3], ("audience", gateway.id.as_str())];
    let nested = json(exchange(&server, &gateway, &again).await).await;
    let nested = server.verify_jwt(nested["access_token"].as_str().expect("t"), &gateway.id, "at+jwt").await;
    assert_eq!(nested["act"]["sub"], bob.sub.as_str());
    assert_eq!(nested["act"]["act"]["sub"], bob.sub.as_str(), "the earlier actor, nested: {nested:?}");
}

#[handler]
fn published(keys: poem::web::Data<&Value>) -> PoemJson<Value> {
    PoemJson(keys.0.clone())
}

async fn trusted_issuer_tokens_are_exchanged_and_may_act_allows_delegation(backend: Backend) {
    let pair = ES256.generate_key_pair().expect("key pair");
    let mut public = pair.to_jwk_public_key();
    public.set_key_id("ext-1");
    let signer = ES256.signer_from_der(pair.to_der_private_key()).expect("signer");
    let keys = json!({ "keys": [Value::Object(public.as_ref().clone())] });
    let issuer = crate::federation::serve_mock(Route::new().at("/jwks", get(published)).data(keys)).await;
    let jwks_url = format!("{issuer}/jwks");
    let issuer_for_config = issuer.clone();
    let server = TestServer::start_with(backend, move |config| {
        let trusted = oxidp::config::TrustedIssuerConfig {
            issuer: issuer_for_config,
            audience: "oxidp".into(),
            jwks_url: Some(jwks_url),
            trust_email: Some(true),
            trust_unverified_email: false,
            timeout: Some(2),
            token_types: None,
        };
        config.trusted_issuer.insert("partner".into(), trusted);
    })
    .await;
    let alice = server.user("alice@example.com", PASSWORD).await;
    let (gateway, orders, admin) = setup(&server).await;
    assert_eq!(set_policy(&server, &admin, &gateway.id, json!({ "audiences": [orders.id] })).await.status(), 200);
    let actor =
        user_tokens(&server, &gateway, "alice@example.com").await["access_token"].as_str().expect("t").to_string();
    let now = server.clock_now();
    let external = |extra: Value| {
        let mut claims = json!({
            "iss": issuer, "aud": "oxidp", "sub": "partner-alice", "email": "alice@example.com",
            "email_verified": true, "iat": now, "exp": now + 600, "scope": "openid profile",
        });
        for (name, value) in extra.as_object().expect("object") {
            claims[name] = value.clone();
        }
        let mut header = JwsHeader::new();
        header.set_token_type("at+jwt");
        header.set_key_id("ext-1");
        let payload = JwtPayload::from_map(claims.as_object().expect("claims").clone()).expect("payload");
        jwt::encode_with_signer(&payload, &header, &signer).expect("sign")
    };

    let plain = external(json!({}));
    let form = [("subject_token", plain.as_str()), ("subject_token_type", JWT), ("audience", orders.id.as_str())];
    let answer = json(exchange(&server, &gateway, &form).await).await;
    let claims = server.verify_jwt(answer["access_token"].as_str().expect("t"), &orders.id, "at+jwt").await;
    assert_eq!(claims["sub"], alice.sub.as_str(), "the external subject is oxidp's linked user");
    assert_eq!(claims["scope"], "openid profile");

    // Delegation: refused without may_act (and no policy), allowed when may_act names the actor.
    let with_actor = |subject: &str| {
        vec![
            ("subject_token", subject.to_string()),
            ("subject_token_type", JWT.to_string()),
            ("actor_token", actor.clone()),
            ("actor_token_type", ACCESS.to_string()),
            ("audience", orders.id.clone()),
        ]
    };
    let refused = with_actor(&plain);
    let refused: Vec<(&str, &str)> = refused.iter().map(|(k, v)| (*k, v.as_str())).collect();
    expect_oauth_error(exchange(&server, &gateway, &refused).await, 400, "invalid_grant").await;
    let allowed_token = external(json!({ "may_act": { "sub": alice.sub } }));
    let allowed = with_actor(&allowed_token);
    let allowed: Vec<(&str, &str)> = allowed.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let answer = exchange(&server, &gateway, &allowed).await;
    assert_eq!(answer.status(), 200);
    let token = json(answer).await["access_token"].as_str().expect("t").to_string();
    assert_eq!(server.verify_jwt(&token, &orders.id, "at+jwt").await["act"]["sub"], alice.sub.as_str());

    // Forged (another key) and expired external tokens are refused.
    let stranger = ES256.generate_key_pair().expect("pair");
    let stranger = ES256.signer_from_der(stranger.to_der_private_key()).expect("signer");
    let mut header = JwsHeader::new();
    header.set_token_type("at+jwt");
    header.set_key_id("ext-1");
    let claims = json!({ "iss": issuer, "aud": "oxidp", "sub": "partner-alice", "exp": now + 600 });
    let payload = JwtPayload::from_map(claims.as_object().expect("claims").clone()).expect("payload");
    let forged = jwt::encode_with_signer(&payload, &header, &stranger).expect("sign");
    let expired = external(json!({ "exp": now - 10 }));
    for token in [forged, expired] {
        let form = [("subject_token", token.as_str()), ("subject_token_type", JWT), ("audience", orders.id.as_str())];
        expect_oauth_error(exchange(&server, &gateway, &form).await, 400, "invalid_grant").await;
    }
}

/// `oxidp client token-exchange` replaces the policy and names the flag of a bad value.
async fn the_command_line_sets_the_policy(backend: Backend) {
    let cli = crate::cli::Cli::new(backend).await;
    let grants = format!("authorization_code,{GRANT}");
    let gateway =
        cli.json(&["client", "create", "--name", "Gateway", "--redirect-uri", REDIRECT, "--grant-types", &grants]);
    let orders = cli.json(&["client", "create", "--name", "Orders", "--redirect-uri", REDIRECT]);
    let (gateway, orders) = (gateway["client_id"].as_str().expect("id"), orders["client_id"].as_str().expect("id"));
    let set = cli.json(&[
        "client",
        "token-exchange",
        "--client-id",
        gateway,
        "--audience",
        orders,
        "--resource",
        "https://orders.example.com",
        "--delegation",
    ]);
    assert_eq!(set["audiences"], json!([orders]));
    assert_eq!(set["resources"], json!(["https://orders.example.com"]));
    assert_eq!(set["delegation"], true);
    cli.invalid(&["client", "token-exchange", "--client-id", gateway, "--audience", "nobody"], &["--audience"]);
    cli.invalid(&["client", "token-exchange", "--client-id", gateway, "--resource", "not a url"], &["--resource"]);
    cli.invalid(&["client", "token-exchange", "--client-id", orders, "--audience", gateway], &["--client-id"]);
    cli.invalid(&["client", "token-exchange", "--client-id", "missing"], &["--client-id"]);
}

/// Two instances: a token issued at A is exchanged at B; the result is valid at A and is revoked
/// everywhere with the subject's grant.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exchanges_hold_across_instances() {
    let (a, b) = pair().await;
    a.user("alice@example.com", PASSWORD).await;
    let (gateway, orders, admin) = setup(&a).await;
    assert_eq!(set_policy(&a, &admin, &gateway.id, json!({ "audiences": [orders.id] })).await.status(), 200);
    let tokens = user_tokens(&a, &gateway, "alice@example.com").await;
    let subject = tokens["access_token"].as_str().expect("access token");
    let form = [("subject_token", subject), ("subject_token_type", ACCESS), ("audience", orders.id.as_str())];
    let answer = exchange(&b, &gateway, &form).await;
    assert_eq!(answer.status(), 200, "the policy set at A holds at B");
    let token = json(answer).await["access_token"].as_str().expect("token").to_string();
    assert_eq!(introspect(&a, &orders, &token).await["active"], true);
    let refresh = tokens["refresh_token"].as_str().expect("refresh");
    assert_eq!(client_post(&b, "/revoke", &gateway, &[("token", refresh)]).await.status(), 200);
    assert_eq!(introspect(&a, &orders, &token).await["active"], false);
}
