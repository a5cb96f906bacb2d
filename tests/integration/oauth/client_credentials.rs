//! The client_credentials grant (`src/oauth/grants/client_credentials.rs`): the client's own
//! token, its refusals, resource indicators (RFC 8707) for the audience, and a client token that
//! never acts as a user (RFC 9700 §4.15).

use serde_json::json;

use super::{SERVICE, expect_oauth_error, expect_token, introspect, revoke};
use crate::common::*;
use crate::on_both_backends;

on_both_backends!(
    client_credentials_issues_a_client_token,
    client_credentials_refusals,
    resource_indicator_sets_the_audience,
    client_credentials_token_never_acts_as_a_user,
);

const ALICE: &str = "alice@example.com";

async fn client_credentials_issues_a_client_token(backend: Backend) {
    let server = TestServer::start(backend).await;
    let service = server.client(SERVICE).await;

    let body = expect_token(token_request(&server, &service, &[("grant_type", "client_credentials")]).await).await;
    assert_eq!(body["expires_in"], 900);
    assert_eq!(body["scope"], "api:read api:write", "all of the client's scopes by default");
    assert!(body.get("refresh_token").is_none(), "never a refresh token for client_credentials: {body}");
    assert!(body.get("id_token").is_none(), "never an ID token for client_credentials: {body}");
    let token = body["access_token"].as_str().expect("token");
    let claims = server.verify_jwt(token, &service.id, "at+jwt").await;
    assert_eq!(claims["sub"], service.id.as_str());
    assert_eq!(claims["aud"], service.id.as_str());
    assert_eq!(claims["client_id"], service.id.as_str());
    assert_eq!(claims["iss"], server.base.as_str());
    assert_eq!(claims["scope"], "api:read api:write");
    assert!(claims["jti"].is_string());
    let iat = claims["iat"].as_i64().expect("iat");
    assert!((iat - server.clock_now()).abs() <= 1);
    assert_eq!(claims["exp"].as_i64().expect("exp"), iat + 900);
    assert!(claims.get("auth_time").is_none());

    // A subset of the scopes.
    let body = expect_token(
        token_request(&server, &service, &[("grant_type", "client_credentials"), ("scope", "api:write")]).await,
    )
    .await;
    assert_eq!(body["scope"], "api:write");
    let claims = server.verify_jwt(body["access_token"].as_str().expect("token"), &service.id, "at+jwt").await;
    assert_eq!(claims["scope"], "api:write");

    // Its own client introspects it as active; it can revoke it.
    let answer = introspect(&server, &service, token).await;
    assert_eq!(answer["active"], true, "{answer}");
    assert_eq!(answer["sub"], service.id.as_str());
    assert_eq!(answer["client_id"], service.id.as_str());
    assert_eq!(answer["scope"], "api:read api:write");
    revoke(&server, &service, token).await;
    assert_eq!(introspect(&server, &service, token).await, json!({ "active": false }));
    // Expired tokens are inactive too.
    let fresh = expect_token(token_request(&server, &service, &[("grant_type", "client_credentials")]).await).await;
    let fresh = fresh["access_token"].as_str().expect("token");
    server.clock.advance(901);
    assert_eq!(introspect(&server, &service, fresh).await, json!({ "active": false }));
}

async fn client_credentials_refusals(backend: Backend) {
    let server = TestServer::start(backend).await;
    let service = server.client(SERVICE).await;
    let cc = |scope: &'static str| [("grant_type", "client_credentials"), ("scope", scope)];

    // User scopes and scopes the client does not have.
    for scope in ["openid", "api:read openid", "offline_access", "profile", "api:delete", "admin"] {
        let response = token_request(&server, &service, &cc(scope)).await;
        expect_oauth_error(response, 400, "invalid_scope").await;
    }

    // A confidential client without the grant.
    let web = server.client(&["--name", "Web App", "--redirect-uri", REDIRECT]).await;
    let response = token_request(&server, &web, &[("grant_type", "client_credentials")]).await;
    expect_oauth_error(response, 400, "unauthorized_client").await;
    // And a client_credentials-only client cannot redeem codes or refresh.
    let response = token_request(
        &server,
        &service,
        &[("grant_type", "authorization_code"), ("code", "x"), ("redirect_uri", REDIRECT)],
    )
    .await;
    expect_oauth_error(response, 400, "unauthorized_client").await;

    // A public client cannot be registered with client_credentials...
    use clap::Parser;
    #[derive(clap::Parser)]
    struct Wrapper {
        #[command(flatten)]
        args: oxidp::cli::CreateClientArgs,
    }
    let argv = [
        "client",
        "--name",
        "Public",
        "--public",
        "--redirect-uri",
        REDIRECT,
        "--grant-types",
        "authorization_code,client_credentials",
    ];
    let args = Wrapper::try_parse_from(argv).expect("flags parse").args;
    match oxidp::cli::create_client(&server.state, args).await {
        Ok(output) => panic!("a public client with client_credentials was registered: {output}"),
        Err(oxidp::cli::CliError::Invalid(message)) => assert!(message.contains("client_credentials"), "{message}"),
        Err(oxidp::cli::CliError::Failed(message)) => {
            panic!("refused as a failure rather than invalid input: {message}")
        }
    }

    // ...and a public client calling client_credentials is refused, even one stored with the grant.
    let public = server.client(&["--name", "Public", "--public", "--redirect-uri", REDIRECT]).await;
    assert!(public.secret.is_none());
    let response = token_request(&server, &public, &[("grant_type", "client_credentials")]).await;
    expect_oauth_error(response, 400, "unauthorized_client").await;
    {
        use oxidp::store::{ClientStore, NewClient};
        let stored = NewClient {
            id: "legacy-public".into(),
            name: "Legacy public".into(),
            secret_hash: None,
            redirect_uris: vec![REDIRECT.into()],
            post_logout_redirect_uris: vec![],
            grant_types: vec!["client_credentials".into()],
            scopes: vec!["api:read".into()],
            audiences: vec![],
            resources: vec![],
            is_public: true,
            first_party: false,
            resource_server: false,
            pkce_exempt: false,
            api_access: false,
            id_token_alg: None,
            require_par: false,
            dpop_bound_access_tokens: false,
            registered_via: None,
        };
        server.state.db.create_client(stored, server.clock_now()).await.expect("insert client");
    }
    let legacy = TestClient { id: "legacy-public".into(), secret: None };
    let response = token_request(&server, &legacy, &[("grant_type", "client_credentials")]).await;
    expect_oauth_error(response, 400, "unauthorized_client").await;
}

async fn resource_indicator_sets_the_audience(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut flags = SERVICE.to_vec();
    flags.extend(["--resource", "https://api.example.com", "--resource", "https://files.example.com/v1"]);
    let service = server.client(&flags).await;

    for resource in ["https://api.example.com", "https://files.example.com/v1"] {
        let response =
            token_request(&server, &service, &[("grant_type", "client_credentials"), ("resource", resource)]).await;
        let body = expect_token(response).await;
        let claims = server.verify_jwt(body["access_token"].as_str().expect("token"), resource, "at+jwt").await;
        assert_eq!(claims["aud"], resource, "exactly the requested resource");
        assert_eq!(claims["sub"], service.id.as_str());
    }
    // Without a resource the audience is the client_id.
    let body = expect_token(token_request(&server, &service, &[("grant_type", "client_credentials")]).await).await;
    let claims = server.verify_jwt(body["access_token"].as_str().expect("token"), &service.id, "at+jwt").await;
    assert_eq!(claims["aud"], service.id.as_str());

    for resource in [
        "https://other.example.com",
        "https://api.example.com/",
        "https://API.example.com.evil",
        &format!("{}/api", server.base),
    ] {
        let response =
            token_request(&server, &service, &[("grant_type", "client_credentials"), ("resource", resource)]).await;
        expect_oauth_error(response, 400, "invalid_target").await;
    }
    // A client without registered resources gets invalid_target for any.
    let plain = server.client(SERVICE).await;
    let response = token_request(
        &server,
        &plain,
        &[("grant_type", "client_credentials"), ("resource", "https://api.example.com")],
    )
    .await;
    expect_oauth_error(response, 400, "invalid_target").await;
}

/// RFC 9700 §4.15: a client's own token must never pass for a resource owner's.
async fn client_credentials_token_never_acts_as_a_user(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = server.user(ALICE, PASSWORD).await;
    let api = format!("{}/api", server.base);
    let service = server
        .client(&["--name", "Service", "--grant-types", "client_credentials", "--scopes", "api", "--audience", &api])
        .await;
    let response = token_request(&server, &service, &[("grant_type", "client_credentials")]).await;
    assert_eq!(response.status(), 200);
    let token = json(response).await["access_token"].as_str().expect("token").to_string();
    let claims = server.verify_jwt(&token, &api, "at+jwt").await;
    assert_eq!(claims["sub"], service.id.as_str(), "the client is its own subject");
    let http = reqwest::Client::new();
    let me = http.get(server.url("/api/v1/users/me")).bearer_auth(&token).send().await.expect("me");
    assert!([401, 403].contains(&me.status().as_u16()), "account API: {}", me.status());
    let info = http.get(server.url("/userinfo")).bearer_auth(&token).send().await.expect("userinfo");
    assert!([401, 403].contains(&info.status().as_u16()), "userinfo: {}", info.status());
    // Client ids are generated, and never in the form of a user's subject.
    assert!(uuid::Uuid::parse_str(&service.id).is_err(), "client id {}", service.id);
    assert!(uuid::Uuid::parse_str(&alice.sub).is_ok(), "user subjects are UUIDs");
    let more: [&[&str]; 2] = [
        &["--name", "x", "--redirect-uri", REDIRECT],
        &["--name", "y", "--grant-types", "client_credentials", "--scopes", "api"],
    ];
    for flags in more {
        assert!(uuid::Uuid::parse_str(&server.client(flags).await.id).is_err());
    }
}
