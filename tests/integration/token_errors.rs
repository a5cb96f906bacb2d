//! Failure paths of /token, /revoke and /introspect (RFC 6749 §5.2, RFC 7009, RFC 7662), the
//! client_credentials grant with resource indicators, and client authentication over the wire.

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use serde_json::{Value, json};

use crate::common::*;
use crate::on_both_backends;

on_both_backends!(
    missing_and_unsupported_grant_types_are_refused,
    repeated_parameters_are_refused,
    malformed_bodies_are_refused,
    client_authentication_failures,
    client_secret_post_works_like_basic,
    client_credentials_issues_a_client_token,
    client_credentials_refusals,
    resource_indicator_sets_the_audience,
    repeated_client_auth_failures_are_rate_limited,
    token_requests_are_rate_limited_per_client,
    revoked_tokens_introspect_as_inactive,
    revoking_the_refresh_token_revokes_the_grant,
    other_clients_cannot_revoke_or_introspect,
    resource_server_introspects_other_clients_tokens,
);

const FORM: &str = "application/x-www-form-urlencoded";
const ENDPOINTS: [&str; 3] = ["/token", "/revoke", "/introspect"];

/// A confidential client that may use client_credentials, with two custom scopes.
const SERVICE: &[&str] =
    &["--name", "Service", "--grant-types", "client_credentials", "--scopes", "api:read api:write"];

/// POSTs raw bytes with the given content type and, optionally, Basic credentials.
async fn post_raw(
    server: &TestServer,
    path: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
    basic: Option<&TestClient>,
) -> reqwest::Response {
    let mut request = reqwest::Client::new().post(server.url(path)).body(body);
    if let Some(content_type) = content_type {
        request = request.header(CONTENT_TYPE, content_type);
    }
    if let Some(client) = basic {
        request = request.basic_auth(&client.id, client.secret.as_deref());
    }
    request.send().await.expect("POST")
}

/// POSTs a form with an arbitrary `Authorization` header (or none).
async fn post_with_authorization(
    server: &TestServer,
    path: &str,
    authorization: Option<&str>,
    form: &[(&str, &str)],
) -> reqwest::Response {
    let mut request = reqwest::Client::new().post(server.url(path)).form(form);
    if let Some(value) = authorization {
        request = request.header(AUTHORIZATION, value);
    }
    request.send().await.expect("POST")
}

/// Checks an RFC 6749 §5.2 error: status, JSON content type, `error`, a non-empty
/// `error_description`, and `Cache-Control: no-store`. Returns the body.
async fn expect_oauth_error(response: reqwest::Response, status: u16, error: &str) -> Value {
    let url = response.url().path().to_string();
    let actual = response.status().as_u16();
    assert!(actual < 500, "{url} answered with a server error {actual}");
    let content_type = response.headers().get(CONTENT_TYPE).map(|v| v.to_str().expect("content type").to_string());
    let cache = response.headers().get("cache-control").map(|v| v.to_str().expect("cache-control").to_string());
    let challenge =
        response.headers().get("www-authenticate").map(|v| v.to_str().expect("www-authenticate").to_string());
    let text = response.text().await.expect("body");
    assert_eq!(actual, status, "{url}: expected {status} {error}, got {actual}: {text}");
    assert!(
        content_type.as_deref().is_some_and(|c| c.starts_with("application/json")),
        "{url}: content type {content_type:?}"
    );
    let body: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("{url}: not JSON: {text}"));
    assert_eq!(body["error"], error, "{url}: {body}");
    let description =
        body["error_description"].as_str().unwrap_or_else(|| panic!("{url}: no error_description in {body}"));
    assert!(!description.trim().is_empty(), "{url}: empty error_description");
    assert_eq!(cache.as_deref(), Some("no-store"), "{url}: error responses are not cached either");
    if error == "invalid_client" {
        let challenge = challenge.unwrap_or_else(|| panic!("{url}: invalid_client without WWW-Authenticate"));
        assert!(challenge.starts_with("Basic"), "{url}: challenge {challenge}");
    }
    body
}

async fn expect_description_names(response: reqwest::Response, status: u16, error: &str, name: &str) {
    let body = expect_oauth_error(response, status, error).await;
    let description = body["error_description"].as_str().expect("description");
    assert!(description.contains(name), "the description should name '{name}': {description}");
}

/// A successful token response: 200, `no-store`, JSON.
async fn expect_token(response: reqwest::Response) -> Value {
    let status = response.status();
    let cache = response.headers().get("cache-control").map(|v| v.to_str().expect("cache-control").to_string());
    let pragma = response.headers().get("pragma").map(|v| v.to_str().expect("pragma").to_string());
    let text = response.text().await.expect("body");
    assert_eq!(status, 200, "token request failed: {text}");
    assert_eq!(cache.as_deref(), Some("no-store"), "token responses carry Cache-Control: no-store");
    assert_eq!(pragma.as_deref(), Some("no-cache"));
    let body: Value = serde_json::from_str(&text).expect("token JSON");
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["access_token"].is_string(), "{body}");
    body
}

async fn introspect(server: &TestServer, caller: &TestClient, token: &str) -> Value {
    let response = client_post(server, "/introspect", caller, &[("token", token)]).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    json(response).await
}

async fn revoke(server: &TestServer, caller: &TestClient, token: &str) {
    let response = client_post(server, "/revoke", caller, &[("token", token)]).await;
    assert_eq!(response.status(), 200, "revocation answers 200 whatever the token");
}

/// A server with alice, a web client, and tokens from a full code flow for it.
struct CodeFlow {
    server: TestServer,
    client: TestClient,
    access_token: String,
    refresh_token: String,
}

async fn code_flow(backend: Backend) -> CodeFlow {
    let server = TestServer::start(backend).await;
    server.user("alice@example.com", PASSWORD).await;
    let client = server.client(&["--name", "Web App", "--redirect-uri", REDIRECT]).await;
    let browser = Browser::new();
    let (code, pkce) = obtain_code(&server, &browser, &client, &[]).await;
    let body = expect_token(redeem(&server, &client, &code, &pkce.verifier).await).await;
    CodeFlow {
        access_token: body["access_token"].as_str().expect("access token").to_string(),
        refresh_token: body["refresh_token"].as_str().expect("refresh token (offline_access)").to_string(),
        server,
        client,
    }
}

async fn missing_and_unsupported_grant_types_are_refused(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = server.client(SERVICE).await;

    let response = token_request(&server, &client, &[("scope", "api:read")]).await;
    expect_description_names(response, 400, "invalid_request", "grant_type").await;
    // An empty value counts as absent (RFC 6749 §3.1).
    let response = token_request(&server, &client, &[("grant_type", "")]).await;
    expect_oauth_error(response, 400, "invalid_request").await;

    for grant_type in
        ["password", "implicit", "urn:ietf:params:oauth:grant-type:device_code", "CLIENT_CREDENTIALS", "nonsense"]
    {
        let response = token_request(
            &server,
            &client,
            &[("grant_type", grant_type), ("username", "alice@example.com"), ("password", PASSWORD)],
        )
        .await;
        expect_oauth_error(response, 400, "unsupported_grant_type").await;
    }
    // The same client succeeds with a grant it has: the refusals above were about the grant type.
    expect_token(token_request(&server, &client, &[("grant_type", "client_credentials")]).await).await;
}

async fn repeated_parameters_are_refused(backend: Backend) {
    let server = TestServer::start(backend).await;
    let service = server.client(SERVICE).await;
    let web = server.client(&["--name", "Web App", "--redirect-uri", REDIRECT]).await;

    let body = b"grant_type=client_credentials&grant_type=client_credentials".to_vec();
    let response = post_raw(&server, "/token", Some(FORM), body, Some(&service)).await;
    expect_description_names(response, 400, "invalid_request", "grant_type").await;
    let body = b"grant_type=client_credentials&grant_type=authorization_code".to_vec();
    let response = post_raw(&server, "/token", Some(FORM), body, Some(&service)).await;
    expect_description_names(response, 400, "invalid_request", "grant_type").await;

    let body = format!(
        "grant_type=authorization_code&code=a&redirect_uri={REDIRECT}&code=b&code_verifier={}",
        pkce().verifier
    );
    let response = post_raw(&server, "/token", Some(FORM), body.into_bytes(), Some(&web)).await;
    expect_description_names(response, 400, "invalid_request", "code").await;

    let body = b"grant_type=client_credentials&scope=api:read&scope=api:write".to_vec();
    let response = post_raw(&server, "/token", Some(FORM), body, Some(&service)).await;
    expect_description_names(response, 400, "invalid_request", "scope").await;

    // client_secret_post with the client_id twice.
    let secret = service.secret.clone().expect("secret");
    let body = format!("grant_type=client_credentials&client_id={0}&client_id={0}&client_secret={secret}", service.id);
    let response = post_raw(&server, "/token", Some(FORM), body.into_bytes(), None).await;
    expect_description_names(response, 400, "invalid_request", "client_id").await;

    for path in ["/revoke", "/introspect"] {
        let response = post_raw(&server, path, Some(FORM), b"token=a&token=b".to_vec(), Some(&service)).await;
        expect_description_names(response, 400, "invalid_request", "token").await;
    }

    // The same requests without the repetition succeed.
    expect_token(
        post_raw(
            &server,
            "/token",
            Some(FORM),
            b"grant_type=client_credentials&scope=api:read".to_vec(),
            Some(&service),
        )
        .await,
    )
    .await;
    let response = post_raw(&server, "/introspect", Some(FORM), b"token=a".to_vec(), Some(&service)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(json(response).await, json!({ "active": false }));
}

async fn malformed_bodies_are_refused(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = server.client(SERVICE).await;
    let web = server.client(&["--name", "Web App", "--redirect-uri", REDIRECT]).await;

    for path in ENDPOINTS {
        // Invalid UTF-8 after percent-decoding, in a value and in a name.
        for body in [
            &b"grant_type=client_credentials&token=%FF%FE"[..],
            b"grant_type=client_credentials&%C3%28=x",
            b"token=\xff\xfe&grant_type=client_credentials",
        ] {
            let response = post_raw(&server, path, Some(FORM), body.to_vec(), Some(&client)).await;
            expect_oauth_error(response, 400, "invalid_request").await;
        }
        // A body over the 64 KiB limit.
        let mut body = b"grant_type=client_credentials&token=x&padding=".to_vec();
        body.resize(64 * 1024 + 1, b'a');
        let response = post_raw(&server, path, Some(FORM), body, Some(&client)).await;
        expect_oauth_error(response, 400, "invalid_request").await;
        // JSON and missing or other content types are not forms.
        let body = br#"{"grant_type":"client_credentials","token":"x"}"#.to_vec();
        for content_type in
            [Some("application/json"), Some("text/plain"), Some("multipart/form-data; boundary=x"), None]
        {
            let response = post_raw(&server, path, content_type, body.clone(), Some(&client)).await;
            expect_oauth_error(response, 400, "invalid_request").await;
        }
    }

    // A single parameter over 4096 characters is refused before anything looks at it.
    let long = "a".repeat(4097);
    let response = token_request(&server, &client, &[("grant_type", "client_credentials"), ("scope", &long)]).await;
    expect_description_names(response, 400, "invalid_request", "scope").await;
    let response = token_request(
        &server,
        &web,
        &[("grant_type", "authorization_code"), ("code", &long), ("redirect_uri", REDIRECT)],
    )
    .await;
    expect_description_names(response, 400, "invalid_request", "code").await;
    for path in ["/revoke", "/introspect"] {
        let response = client_post(&server, path, &client, &[("token", &long)]).await;
        expect_oauth_error(response, 400, "invalid_request").await;
    }
    // At exactly the limit the code is merely unknown.
    let at_limit = "a".repeat(4096);
    let response = token_request(
        &server,
        &web,
        &[("grant_type", "authorization_code"), ("code", &at_limit), ("redirect_uri", REDIRECT)],
    )
    .await;
    expect_oauth_error(response, 400, "invalid_grant").await;

    // A body just under the size limit is still read; a charset parameter is fine.
    let mut body = b"grant_type=client_credentials&padding=".to_vec();
    body.resize(60 * 1024, b'a');
    let response =
        post_raw(&server, "/token", Some("application/x-www-form-urlencoded; charset=UTF-8"), body, Some(&client))
            .await;
    // The padding value is too long as a parameter, which proves the body was read and parsed.
    expect_description_names(response, 400, "invalid_request", "padding").await;
    let body = b"grant_type=client_credentials&scope=api%3Aread".to_vec();
    let response =
        post_raw(&server, "/token", Some("application/x-www-form-urlencoded; charset=UTF-8"), body, Some(&client))
            .await;
    assert_eq!(expect_token(response).await["scope"], "api:read");
}

async fn client_authentication_failures(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = server.client(SERVICE).await;
    let secret = client.secret.clone().expect("secret");
    let wrong = TestClient { id: client.id.clone(), secret: Some(format!("{secret}x")) };
    let unknown = TestClient { id: "no-such-client".into(), secret: Some(secret.clone()) };
    let grant = [("grant_type", "client_credentials")];

    for path in ENDPOINTS {
        let form: &[(&str, &str)] = if path == "/token" { &grant } else { &[("token", "whatever")] };
        // Wrong secret, unknown client: 401 invalid_client with a challenge.
        expect_oauth_error(client_post(&server, path, &wrong, form).await, 401, "invalid_client").await;
        expect_oauth_error(client_post(&server, path, &unknown, form).await, 401, "invalid_client").await;
        // The same with client_secret_post.
        let mut post = form.to_vec();
        post.extend([("client_id", client.id.as_str()), ("client_secret", "wrong")]);
        expect_oauth_error(post_with_authorization(&server, path, None, &post).await, 401, "invalid_client").await;
        // A confidential client cannot authenticate as public (no secret).
        let mut no_secret = form.to_vec();
        no_secret.push(("client_id", client.id.as_str()));
        expect_oauth_error(post_with_authorization(&server, path, None, &no_secret).await, 401, "invalid_client").await;
        // No authentication at all.
        expect_oauth_error(post_with_authorization(&server, path, None, form).await, 401, "invalid_client").await;

        // Basic and client_secret_post together.
        let mut both = form.to_vec();
        both.extend([("client_id", client.id.as_str()), ("client_secret", secret.as_str())]);
        let response = reqwest::Client::new()
            .post(server.url(path))
            .basic_auth(&client.id, Some(&secret))
            .form(&both)
            .send()
            .await
            .expect("POST");
        expect_oauth_error(response, 400, "invalid_request").await;
        // Basic with a different client_id in the form.
        let mut mismatch = form.to_vec();
        mismatch.push(("client_id", "someone-else"));
        let response = reqwest::Client::new()
            .post(server.url(path))
            .basic_auth(&client.id, Some(&secret))
            .form(&mismatch)
            .send()
            .await
            .expect("POST");
        expect_oauth_error(response, 400, "invalid_request").await;

        // Malformed Basic headers.
        use base64::Engine;
        let b64 = |text: &str| base64::engine::general_purpose::STANDARD.encode(text);
        let malformed = [
            "Basic".to_string(),
            "Basic !!!not-base64!!!".to_string(),
            format!("Basic {}", b64("no-colon-here")),
            format!("Basic {}", base64::engine::general_purpose::STANDARD.encode([0xff, 0xfe, b':', b'x'])),
            format!("Bearer {secret}"),
        ];
        for header in &malformed {
            let response = post_with_authorization(&server, path, Some(header), form).await;
            expect_oauth_error(response, 401, "invalid_client").await;
        }
    }

    // After all that, the right credentials still work (9 failures stay under the default limit of 20).
    expect_token(token_request(&server, &client, &grant).await).await;
}

async fn client_secret_post_works_like_basic(backend: Backend) {
    let server = TestServer::start(backend).await;
    let service = server.client(SERVICE).await;
    let secret = service.secret.clone().expect("secret");

    let basic = expect_token(token_request(&server, &service, &[("grant_type", "client_credentials")]).await).await;
    let post_form =
        [("grant_type", "client_credentials"), ("client_id", service.id.as_str()), ("client_secret", secret.as_str())];
    let post = expect_token(post_with_authorization(&server, "/token", None, &post_form).await).await;
    for body in [&basic, &post] {
        let claims = server.verify_jwt(body["access_token"].as_str().expect("token"), &service.id, "at+jwt").await;
        assert_eq!(claims["sub"], service.id.as_str());
    }

    // A code redeemed with client_secret_post.
    server.user("alice@example.com", PASSWORD).await;
    let web = server.client(&["--name", "Web App", "--redirect-uri", REDIRECT]).await;
    let web_secret = web.secret.clone().expect("secret");
    let (code, pkce) = obtain_code(&server, &Browser::new(), &web, &[]).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", pkce.verifier.as_str()),
        ("client_id", web.id.as_str()),
        ("client_secret", web_secret.as_str()),
    ];
    let body = expect_token(post_with_authorization(&server, "/token", None, &form).await).await;
    server.verify_jwt(body["access_token"].as_str().expect("token"), &web.id, "at+jwt").await;
    assert!(body["id_token"].is_string());

    // /revoke and /introspect accept client_secret_post too.
    let access = body["access_token"].as_str().expect("token");
    let form = [("token", access), ("client_id", web.id.as_str()), ("client_secret", web_secret.as_str())];
    let answer = json(post_with_authorization(&server, "/introspect", None, &form).await).await;
    assert_eq!(answer["active"], true);
    assert_eq!(post_with_authorization(&server, "/revoke", None, &form).await.status(), 200);
    let answer = json(post_with_authorization(&server, "/introspect", None, &form).await).await;
    assert_eq!(answer, json!({ "active": false }));
}

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

/// Issue #12 item 3: a client_id is public, so failures must never lock the client out. They
/// are counted per client and source address, after the credential is checked.
async fn repeated_client_auth_failures_are_rate_limited(backend: Backend) {
    let server = TestServer::start_with(backend, |config| config.client_auth_failure_limit = 3).await;
    let victim = server.client(SERVICE).await;
    let bystander = server.client(SERVICE).await;
    let wrong = TestClient { id: victim.id.clone(), secret: Some("wrong-secret".into()) };
    let grant = [("grant_type", "client_credentials")];

    for _ in 0..3 {
        expect_oauth_error(token_request(&server, &wrong, &grant).await, 401, "invalid_client").await;
    }
    let limited = |response: reqwest::Response| async move {
        let retry_after = response.headers().get("retry-after").map(|v| v.to_str().expect("retry-after").to_string());
        let status = response.status().as_u16();
        let body = json(response).await;
        assert_eq!(status, 429, "{body}");
        assert!(body["error"].is_string() && body["error_description"].is_string(), "{body}");
        let seconds: i64 = retry_after.expect("Retry-After header").parse().expect("Retry-After in seconds");
        assert!((1..=60).contains(&seconds), "Retry-After {seconds}");
    };
    limited(token_request(&server, &wrong, &grant).await).await;
    limited(client_post(&server, "/introspect", &wrong, &[("token", "x")]).await).await;
    // The attacker locked nobody out: the right secret works on every endpoint, from the very
    // address the failures came from.
    expect_token(token_request(&server, &victim, &grant).await).await;
    let introspected = client_post(&server, "/introspect", &victim, &[("token", "x")]).await;
    assert_eq!(introspected.status().as_u16(), 200);
    let revoked = client_post(&server, "/revoke", &victim, &[("token", "x")]).await;
    assert_eq!(revoked.status().as_u16(), 200);
    // Other clients are not affected.
    expect_token(token_request(&server, &bystander, &grant).await).await;
    // Failures count per source address: the same wrong secret from 127.0.0.2 is its own count.
    let elsewhere = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .build()
        .expect("client bound to 127.0.0.2");
    let response = elsewhere
        .post(server.url("/token"))
        .basic_auth(&wrong.id, wrong.secret.as_deref())
        .form(&grant)
        .send()
        .await
        .expect("token request from 127.0.0.2");
    expect_oauth_error(response, 401, "invalid_client").await;

    // The window passes.
    server.clock.advance(61);
    expect_oauth_error(token_request(&server, &wrong, &grant).await, 401, "invalid_client").await;
    // Successful attempts do not count as failures.
    for _ in 0..5 {
        expect_token(token_request(&server, &victim, &grant).await).await;
    }
}

/// SPEC §8 "per client on /token": `OXIDP_TOKEN_RATE_LIMIT` requests per client and minute.
async fn token_requests_are_rate_limited_per_client(backend: Backend) {
    let server = TestServer::start_with(backend, |config| config.token_rate_limit = 3).await;
    let busy = server.client(SERVICE).await;
    let bystander = server.client(SERVICE).await;
    let wrong = TestClient { id: busy.id.clone(), secret: Some("wrong-secret".into()) };
    let grant = [("grant_type", "client_credentials")];

    // Requests that fail client authentication do not use the client's allowance: it is
    // counted after authentication, so nobody without the secret can exhaust it.
    for _ in 0..2 {
        expect_oauth_error(token_request(&server, &wrong, &grant).await, 401, "invalid_client").await;
    }
    for _ in 0..3 {
        expect_token(token_request(&server, &busy, &grant).await).await;
    }
    let response = token_request(&server, &busy, &grant).await;
    let retry_after: i64 =
        response.headers().get("retry-after").expect("Retry-After").to_str().expect("header").parse().expect("seconds");
    assert_eq!(retry_after, 60 - server.clock_now() % 60, "until the next minute");
    expect_oauth_error(response, 429, "temporarily_unavailable").await;
    // Other clients have their own allowance.
    expect_token(token_request(&server, &bystander, &grant).await).await;

    server.clock.advance(retry_after);
    for _ in 0..3 {
        expect_token(token_request(&server, &busy, &grant).await).await;
    }
    expect_oauth_error(token_request(&server, &busy, &grant).await, 429, "temporarily_unavailable").await;
}

async fn revoked_tokens_introspect_as_inactive(backend: Backend) {
    let flow = code_flow(backend).await;
    let (server, client) = (&flow.server, &flow.client);

    let answer = introspect(server, client, &flow.access_token).await;
    assert_eq!(answer["active"], true, "{answer}");
    assert_eq!(answer["client_id"], client.id.as_str());
    assert_eq!(answer["token_type"], "Bearer");
    assert_eq!(answer["scope"], "openid profile email offline_access");
    let sub = answer["sub"].as_str().expect("sub").to_string();
    let answer = introspect(server, client, &flow.refresh_token).await;
    assert_eq!(answer["active"], true, "{answer}");
    assert_eq!(answer["client_id"], client.id.as_str());
    assert_eq!(answer["sub"], sub.as_str());
    assert_eq!(answer["token_type"], "refresh_token");

    // Revoking the access token: it is inactive and no longer accepted at /userinfo.
    revoke(server, client, &flow.access_token).await;
    assert_eq!(introspect(server, client, &flow.access_token).await, json!({ "active": false }));
    let response = reqwest::Client::new()
        .get(server.url("/userinfo"))
        .bearer_auth(&flow.access_token)
        .send()
        .await
        .expect("userinfo");
    assert_eq!(response.status(), 401);
    // Revoking again, with a hint, is still 200.
    let response =
        client_post(server, "/revoke", client, &[("token", &flow.access_token), ("token_type_hint", "access_token")])
            .await;
    assert_eq!(response.status(), 200);

    // Revoking the refresh token: it is inactive and cannot be used.
    revoke(server, client, &flow.refresh_token).await;
    assert_eq!(introspect(server, client, &flow.refresh_token).await, json!({ "active": false }));
    let response =
        token_request(server, client, &[("grant_type", "refresh_token"), ("refresh_token", &flow.refresh_token)]).await;
    expect_oauth_error(response, 400, "invalid_grant").await;

    // Unknown or garbage tokens: 200 and nothing else; introspection says inactive.
    for token in ["no-such-token", "a.b.c", &"x".repeat(200)] {
        revoke(server, client, token).await;
        assert_eq!(introspect(server, client, token).await, json!({ "active": false }));
    }
    // A missing token parameter is a malformed request.
    for path in ["/revoke", "/introspect"] {
        let response = client_post(server, path, client, &[("token_type_hint", "access_token")]).await;
        expect_oauth_error(response, 400, "invalid_request").await;
    }
    // Introspection and revocation require client authentication.
    for path in ["/introspect", "/revoke"] {
        let response = post_with_authorization(server, path, None, &[("token", &flow.access_token)]).await;
        expect_oauth_error(response, 401, "invalid_client").await;
    }
}

async fn revoking_the_refresh_token_revokes_the_grant(backend: Backend) {
    let flow = code_flow(backend).await;
    let (server, client) = (&flow.server, &flow.client);

    // A refresh first, so the grant has two access tokens and a rotated refresh token.
    let response =
        token_request(server, client, &[("grant_type", "refresh_token"), ("refresh_token", &flow.refresh_token)]).await;
    let refreshed = expect_token(response).await;
    let second_access = refreshed["access_token"].as_str().expect("access").to_string();
    let second_refresh = refreshed["refresh_token"].as_str().expect("refresh").to_string();
    for token in [&flow.access_token, &second_access, &second_refresh] {
        assert_eq!(introspect(server, client, token).await["active"], true);
    }

    revoke(server, client, &second_refresh).await;
    for token in [&flow.access_token, &second_access, &second_refresh, &flow.refresh_token] {
        assert_eq!(introspect(server, client, token).await, json!({ "active": false }), "the whole grant is revoked");
    }
    let http = reqwest::Client::new();
    for token in [&flow.access_token, &second_access] {
        let response = http.get(server.url("/userinfo")).bearer_auth(token).send().await.expect("userinfo");
        assert_eq!(response.status(), 401);
    }
    let response =
        token_request(server, client, &[("grant_type", "refresh_token"), ("refresh_token", &second_refresh)]).await;
    expect_oauth_error(response, 400, "invalid_grant").await;
}

async fn other_clients_cannot_revoke_or_introspect(backend: Backend) {
    let flow = code_flow(backend).await;
    let (server, client) = (&flow.server, &flow.client);
    let other = server.client(&["--name", "Other", "--redirect-uri", REDIRECT]).await;
    let public = server.client(&["--name", "Public", "--public", "--redirect-uri", REDIRECT]).await;

    for intruder in [&other, &public] {
        for token in [&flow.access_token, &flow.refresh_token] {
            // Not for them to see: exactly {"active": false}.
            assert_eq!(introspect(server, intruder, token).await, json!({ "active": false }));
            // Not for them to revoke: 200, but nothing happens.
            revoke(server, intruder, token).await;
            assert_eq!(introspect(server, client, token).await["active"], true, "another client revoked a token");
        }
    }
    // The tokens still work.
    let response = reqwest::Client::new()
        .get(server.url("/userinfo"))
        .bearer_auth(&flow.access_token)
        .send()
        .await
        .expect("userinfo");
    assert_eq!(response.status(), 200);
    let response =
        token_request(server, client, &[("grant_type", "refresh_token"), ("refresh_token", &flow.refresh_token)]).await;
    expect_token(response).await;
}

async fn resource_server_introspects_other_clients_tokens(backend: Backend) {
    let flow = code_flow(backend).await;
    let (server, client) = (&flow.server, &flow.client);
    let resource_server = server
        .client(&["--name", "API", "--grant-types", "client_credentials", "--scopes", "api:read", "--resource-server"])
        .await;

    let own = introspect(server, client, &flow.access_token).await;
    let answer = introspect(server, &resource_server, &flow.access_token).await;
    assert_eq!(answer["active"], true, "{answer}");
    assert_eq!(answer, own, "the resource server gets the full answer");
    assert_eq!(answer["client_id"], client.id.as_str());
    assert_eq!(answer["aud"], client.id.as_str());
    assert_eq!(answer["iss"], server.base.as_str());
    assert!(answer["sub"].is_string() && answer["exp"].is_i64() && answer["iat"].is_i64(), "{answer}");

    let answer = introspect(server, &resource_server, &flow.refresh_token).await;
    assert_eq!(answer["active"], true, "{answer}");
    assert_eq!(answer["client_id"], client.id.as_str());
    assert_eq!(answer["sub"], own["sub"]);
    assert_eq!(answer["scope"], "openid profile email offline_access");

    // Another service's client_credentials token too.
    let service = server.client(SERVICE).await;
    let body = expect_token(token_request(server, &service, &[("grant_type", "client_credentials")]).await).await;
    let answer = introspect(server, &resource_server, body["access_token"].as_str().expect("token")).await;
    assert_eq!(answer["active"], true, "{answer}");
    assert_eq!(answer["sub"], service.id.as_str());

    // A resource server still cannot revoke other clients' tokens.
    revoke(server, &resource_server, &flow.access_token).await;
    assert_eq!(introspect(server, client, &flow.access_token).await["active"], true);
    // Once revoked by its owner, the resource server sees it inactive.
    revoke(server, client, &flow.access_token).await;
    assert_eq!(introspect(server, &resource_server, &flow.access_token).await, json!({ "active": false }));
}
