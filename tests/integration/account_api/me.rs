//! `/api/v1/users/me/*` (`src/api/me.rs`): who may call it, the profile and its claims, the
//! password change, and the user's browser sessions.

use serde_json::{Value, json};

use super::*;
use crate::common::*;
use crate::on_both_backends;

on_both_backends!(
    me_requires_an_account_token_for_the_api,
    patch_me_updates_the_profile_and_the_claims,
    change_password_ends_other_sessions_and_tokens,
    sessions_are_listed_paginated_and_revocable,
);

async fn me_requires_an_account_token_for_the_api(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = server.user("alice@example.com", PASSWORD).await;
    let tokens = login_tokens(&server, "alice@example.com", PASSWORD).await;
    let response = get_me(&server, &tokens.access).await;
    assert_eq!(response.status(), 200);
    let me = json(response).await;
    assert_eq!(me["sub"], alice.sub.as_str());
    assert_eq!(me["id"], alice.id.as_str());
    assert_eq!(me["email"], "alice@example.com");
    assert_eq!(me["name"], "Test User");
    assert!(!me.to_string().contains("password"));

    // No credentials, other schemes, garbage, and the refresh token in place of an access token.
    let http = reqwest::Client::new();
    problem(http.get(api_url(&server, "/users/me")).send().await.expect("GET"), 401).await;
    let basic = http.get(api_url(&server, "/users/me")).basic_auth("alice@example.com", Some(PASSWORD));
    problem(basic.send().await.expect("GET"), 401).await;
    assert_eq!(problem(get_me(&server, "garbage").await, 401).await["code"], "invalid_token");
    assert_eq!(problem(get_me(&server, &tokens.refresh).await, 401).await["code"], "invalid_token");

    // A third-party client's token is for that client, not for the API.
    let client = server.client(&third_party_client_flags()).await;
    let browser = Browser::new();
    let foreign = code_flow_tokens(&server, &browser, &client, "alice@example.com", &[]).await;
    let foreign_access = foreign["access_token"].as_str().expect("access token");
    let claims = server.verify_jwt(foreign_access, &client.id, "at+jwt").await;
    assert!(!scope_set(&claims["scope"]).contains("account"));
    let body = problem(get_me(&server, foreign_access).await, 401).await;
    assert_eq!(body["code"], "invalid_audience");
    let id_token = foreign["id_token"].as_str().expect("id token");
    assert_eq!(problem(get_me(&server, id_token).await, 401).await["code"], "invalid_token");

    // Even with the API as audience, a token without the account scope may not use it.
    let api_audience = format!("{}/api", server.base);
    let audience_client =
        server.client(&["--name", "y", "--redirect-uri", REDIRECT, "--audience", api_audience.as_str()]).await;
    let scoped = code_flow_tokens(&server, &browser, &audience_client, "alice@example.com", &[]).await;
    let scoped_access = scoped["access_token"].as_str().expect("access token");
    server.verify_jwt(scoped_access, &api_audience, "at+jwt").await;
    let body = problem(get_me(&server, scoped_access).await, 403).await;
    assert_eq!(body["code"], "insufficient_scope");

    // Expiry: 900 seconds.
    server.clock.advance(899);
    assert_eq!(get_me(&server, &tokens.access).await.status(), 200);
    server.clock.advance(2);
    assert_eq!(problem(get_me(&server, &tokens.access).await, 401).await["code"], "invalid_token");
}

async fn patch_me_updates_the_profile_and_the_claims(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.user("alice@example.com", PASSWORD).await;
    let tokens = login_tokens(&server, "alice@example.com", PASSWORD).await;
    let created = json(get_me(&server, &tokens.access).await).await;
    server.clock.advance(10);

    let change = json!({
        "name": "Alice Liddell",
        "given_name": "Alice",
        "family_name": "Liddell",
        "locale": "en-GB",
        "phone_number": "+14155550100",
        "picture": "https://example.com/alice.png",
    });
    let response = patch_me(&server, &tokens.access, &change).await;
    assert_eq!(response.status(), 200);
    let updated = json(response).await;
    for (field, value) in change.as_object().expect("object") {
        assert_eq!(&updated[field], value, "{field}");
    }
    assert_eq!(updated["email"], "alice@example.com");
    assert!(updated["updated_at"].as_i64().expect("updated_at") > created["updated_at"].as_i64().expect("updated_at"));
    let me = json(get_me(&server, &tokens.access).await).await;
    assert_eq!(me, updated, "GET shows what PATCH answered");

    // An absent field is left alone; null clears.
    let updated = json(patch_me(&server, &tokens.access, &json!({"family_name": null})).await).await;
    assert_eq!(updated["family_name"], Value::Null);
    assert_eq!(updated["name"], "Alice Liddell");
    assert_eq!(updated["given_name"], "Alice");
    assert_eq!(updated["picture"], "https://example.com/alice.png");

    // Invalid values name their field and change nothing.
    let invalid = [
        (json!({"picture": "http://example.com/alice.png"}), "picture"),
        (json!({"picture": "not a url"}), "picture"),
        (json!({"phone_number": "555-0100"}), "phone_number"),
        (json!({"phone_number": "+1415abc0100"}), "phone_number"),
        (json!({"locale": "en GB"}), "locale"),
        (json!({"name": "Alice", "picture": "javascript:alert(1)"}), "picture"),
    ];
    for (body, field) in invalid {
        assert_field(&problem(patch_me(&server, &tokens.access, &body).await, 400).await, "invalid_field", field);
    }
    problem(patch_me(&server, &tokens.access, &json!({"nickname": "al"})).await, 400).await;
    problem(patch_me(&server, &tokens.access, &json!({"email": "mallory@example.com"})).await, 400).await;
    problem(patch_me(&server, &tokens.access, &json!({"name": ["Alice"]})).await, 400).await;
    let unchanged = json(get_me(&server, &tokens.access).await).await;
    assert_eq!(unchanged, updated, "failed patches changed nothing");
    // Without credentials.
    let anonymous = reqwest::Client::new().patch(api_url(&server, "/users/me")).json(&json!({"name": "x"}));
    problem(anonymous.send().await.expect("PATCH"), 401).await;

    // The changes reach /userinfo and new ID tokens.
    let client = server
        .client(&["--name", "x", "--redirect-uri", REDIRECT, "--scopes", "openid profile email phone offline_access"])
        .await;
    let browser = Browser::new();
    let issued = code_flow_tokens(
        &server,
        &browser,
        &client,
        "alice@example.com",
        &[("scope", "openid profile email phone offline_access")],
    )
    .await;
    let id = server.verify_jwt(issued["id_token"].as_str().expect("id token"), &client.id, "JWT").await;
    let access = issued["access_token"].as_str().expect("access token");
    let http = reqwest::Client::new();
    let info = json(http.get(server.url("/userinfo")).bearer_auth(access).send().await.expect("userinfo")).await;
    for claims in [&info, &Value::Object(id)] {
        assert_eq!(claims["name"], "Alice Liddell", "{claims}");
        assert_eq!(claims["given_name"], "Alice");
        assert!(claims.get("family_name").is_none_or(Value::is_null), "cleared: {claims}");
        assert_eq!(claims["locale"], "en-GB");
        assert_eq!(claims["phone_number"], "+14155550100");
        assert_eq!(claims["picture"], "https://example.com/alice.png");
        assert_eq!(claims["updated_at"], updated["updated_at"]);
    }

    // A later change shows in /userinfo at once.
    assert_eq!(patch_me(&server, &tokens.access, &json!({"name": "Alice L.", "locale": null})).await.status(), 200);
    let info = json(http.get(server.url("/userinfo")).bearer_auth(access).send().await.expect("userinfo")).await;
    assert_eq!(info["name"], "Alice L.");
    assert!(info.get("locale").is_none_or(Value::is_null), "{info}");
}

async fn change_password_ends_other_sessions_and_tokens(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.user("alice@example.com", PASSWORD).await;
    let client = server.client(&third_party_client_flags()).await;
    let browser = browser_login(&server, &client, "alice@example.com").await;
    let caller = login_tokens(&server, "alice@example.com", PASSWORD).await;
    let other = login_tokens(&server, "alice@example.com", PASSWORD).await;
    let change = |current: &str, new: &str| json!({"current_password": current, "new_password": new});

    let body = problem(
        post_with(&server, "/users/me/password", &caller.access, &change("wrong password!", NEW_PASSWORD)).await,
        400,
    )
    .await;
    assert_field(&body, "wrong_password", "current_password");
    for weak in ["password123", "short", "alice-rocks-2024"] {
        let body =
            problem(post_with(&server, "/users/me/password", &caller.access, &change(PASSWORD, weak)).await, 400).await;
        assert_field(&body, "invalid_field", "new_password");
    }
    let extra = json!({"current_password": PASSWORD, "new_password": NEW_PASSWORD, "logout_others": false});
    problem(post_with(&server, "/users/me/password", &caller.access, &extra).await, 400).await;
    let anonymous =
        reqwest::Client::new().post(api_url(&server, "/users/me/password")).json(&change(PASSWORD, NEW_PASSWORD));
    problem(anonymous.send().await.expect("POST"), 401).await;

    // None of that changed anything.
    assert_session_alive(&silent_authorize(&server, &browser, &client).await);
    assert_eq!(get_me(&server, &other.access).await.status(), 200);
    assert_eq!(login(&server, "alice@example.com", NEW_PASSWORD).await.status(), 401);

    let response = post_with(&server, "/users/me/password", &caller.access, &change(PASSWORD, NEW_PASSWORD)).await;
    assert_eq!(response.status(), 204);
    assert!(response.text().await.expect("body").is_empty());

    // The caller's own login goes on.
    assert_eq!(get_me(&server, &caller.access).await.status(), 200);
    refreshed_tokens(&server, &caller.refresh).await;
    // The other login and the browser session end.
    assert_eq!(problem(refresh(&server, &other.refresh).await, 401).await["code"], "invalid_grant");
    problem(get_me(&server, &other.access).await, 401).await;
    assert_session_gone(&silent_authorize(&server, &browser, &client).await);

    assert_eq!(login(&server, "alice@example.com", PASSWORD).await.status(), 401);
    login_tokens(&server, "alice@example.com", NEW_PASSWORD).await;
}

async fn sessions_are_listed_paginated_and_revocable(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.user("alice@example.com", PASSWORD).await;
    server.user("bob@example.com", PASSWORD).await;
    let client = server.client(&third_party_client_flags()).await;
    let older_browser = browser_login(&server, &client, "alice@example.com").await;
    server.clock.advance(10);
    let newer_browser = browser_login(&server, &client, "alice@example.com").await;
    let bob_browser = browser_login(&server, &client, "bob@example.com").await;
    let tokens = login_tokens(&server, "alice@example.com", PASSWORD).await;

    let response = get_with(&server, "/users/me/sessions", &tokens.access).await;
    assert_eq!(response.status(), 200);
    let page = json(response).await;
    let items = page["items"].as_array().expect("items").clone();
    assert_eq!(items.len(), 2, "the two browser logins, not the API login: {page}");
    assert!(page.get("next_cursor").is_none_or(Value::is_null), "{page}");
    for item in &items {
        assert_eq!(item["ip"], "127.0.0.1", "{item}");
        assert_eq!(item["amr"], json!(["pwd"]));
        assert!(item["id"].as_str().is_some_and(|id| !id.is_empty()));
        assert!(item["expires_at"].as_i64().expect("expires_at") > server.clock_now());
    }
    let newer_created = items[0]["created_at"].as_i64().expect("created_at");
    let older_created = items[1]["created_at"].as_i64().expect("created_at");
    assert!(newer_created >= older_created + 10, "newest first: {page}");
    let newer_id = items[0]["id"].as_str().expect("id").to_string();
    let older_id = items[1]["id"].as_str().expect("id").to_string();
    assert_ne!(newer_id, older_id);

    // One at a time.
    let first = json(get_with(&server, "/users/me/sessions?limit=1", &tokens.access).await).await;
    assert_eq!(first["items"].as_array().expect("items").len(), 1);
    assert_eq!(first["items"][0]["id"], newer_id.as_str());
    let cursor = first["next_cursor"].as_str().expect("next_cursor on a partial page").to_string();
    let path = format!("/users/me/sessions?limit=1&cursor={}", urlencode(&cursor));
    let second = json(get_with(&server, &path, &tokens.access).await).await;
    assert_eq!(second["items"].as_array().expect("items").len(), 1);
    assert_eq!(second["items"][0]["id"], older_id.as_str());
    assert!(second.get("next_cursor").is_none_or(Value::is_null), "last page: {second}");

    // Bad paging parameters.
    for query in ["cursor=not-a-cursor!!", "cursor=Z2FyYmFnZQ", "limit=1&cursor=%25%25"] {
        let body = problem(get_with(&server, &format!("/users/me/sessions?{query}"), &tokens.access).await, 400).await;
        assert_field(&body, "invalid_field", "cursor");
    }
    for query in ["limit=0", "limit=101"] {
        let body = problem(get_with(&server, &format!("/users/me/sessions?{query}"), &tokens.access).await, 400).await;
        assert_field(&body, "invalid_field", "limit");
    }
    problem(get_with(&server, "/users/me/sessions?limit=abc", &tokens.access).await, 400).await;
    problem(get_with(&server, "/users/me/sessions?limit=-1", &tokens.access).await, 400).await;
    assert_eq!(get_with(&server, "/users/me/sessions?limit=100", &tokens.access).await.status(), 200);
    problem(reqwest::Client::new().get(api_url(&server, "/users/me/sessions")).send().await.expect("GET"), 401).await;

    // Ending one session signs out that browser only.
    assert_session_alive(&silent_authorize(&server, &older_browser, &client).await);
    let response = delete_with(&server, &format!("/users/me/sessions/{older_id}"), &tokens.access).await;
    assert_eq!(response.status(), 204);
    assert_session_gone(&silent_authorize(&server, &older_browser, &client).await);
    assert_session_alive(&silent_authorize(&server, &newer_browser, &client).await);
    let page = json(get_with(&server, "/users/me/sessions", &tokens.access).await).await;
    let ids: Vec<_> = page["items"].as_array().expect("items").iter().map(|item| item["id"].clone()).collect();
    assert_eq!(ids, vec![json!(newer_id)]);

    // Gone, unknown, and other users' sessions are all "not found".
    let body =
        problem(delete_with(&server, &format!("/users/me/sessions/{older_id}"), &tokens.access).await, 404).await;
    assert_eq!(body["code"], "not_found");
    problem(delete_with(&server, "/users/me/sessions/00000000-0000-0000-0000-000000000000", &tokens.access).await, 404)
        .await;
    let bob = login_tokens(&server, "bob@example.com", PASSWORD).await;
    let bob_page = json(get_with(&server, "/users/me/sessions", &bob.access).await).await;
    let bob_items = bob_page["items"].as_array().expect("items");
    assert_eq!(bob_items.len(), 1);
    let bob_session = bob_items[0]["id"].as_str().expect("id");
    assert!(bob_session != newer_id && bob_session != older_id);
    let body =
        problem(delete_with(&server, &format!("/users/me/sessions/{bob_session}"), &tokens.access).await, 404).await;
    assert_eq!(body["code"], "not_found");
    assert_session_alive(&silent_authorize(&server, &bob_browser, &client).await);
    assert_eq!(
        json(get_with(&server, "/users/me/sessions", &bob.access).await).await["items"]
            .as_array()
            .expect("items")
            .len(),
        1
    );
}

fn urlencode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}
