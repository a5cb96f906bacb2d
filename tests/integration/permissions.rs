//! Permissions and organizations (SPEC §6) over HTTP: idempotent grant and revoke, snapshots
//! with ETags that move exactly when the content moves (grants, roles, memberships,
//! organizations, bans), concurrency, organizations CRUD, and who may call what.

use oxidp::store::PermissionStore;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::*;
use crate::on_both_backends;

on_both_backends!(
    grant_snapshot_etag_round_trip,
    granting_twice_is_one_row,
    version_follows_roles_memberships_and_organizations,
    ban_and_soft_delete_move_the_version,
    concurrent_grants_and_revokes_stay_consistent,
    organizations_crud_slug_conflict_and_member_pagination,
    callers_and_bad_input,
    my_permissions_snapshot,
);

pub const SECRET: &str = "internal-test-secret";

async fn start(backend: Backend) -> TestServer {
    TestServer::start_with(backend, |c| c.internal_secret = Some(SECRET.into())).await
}

/// A JSON request with a Bearer token: (status, body or Null).
async fn call(
    server: &TestServer,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = reqwest::Client::new().request(method, server.url(path)).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("request");
    let status = response.status();
    let text = response.text().await.expect("body");
    let body = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).expect("JSON body") };
    assert!(!status.is_server_error(), "{path}: {status} {body}");
    (status, body)
}

fn permission(sub: &str, scope_type: &str, scope_id: &str, module: &str, action: &str) -> Value {
    json!({ "sub": sub, "scope_type": scope_type, "scope_id": scope_id, "module": module, "action": action })
}

async fn grant(server: &TestServer, token: &str, body: &Value) -> Value {
    let (status, body) =
        call(server, reqwest::Method::POST, "/api/v1/admin/permissions/grant", token, Some(body.clone())).await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn revoke(server: &TestServer, token: &str, body: &Value) -> Value {
    let (status, body) =
        call(server, reqwest::Method::POST, "/api/v1/admin/permissions/revoke", token, Some(body.clone())).await;
    assert_eq!(status, 200, "{body}");
    body
}

/// The internal snapshot of oxidp subject `sub`: (status, ETag, body).
pub async fn snapshot(server: &TestServer, sub: &str, if_none_match: Option<&str>) -> (StatusCode, String, Value) {
    let mut request = reqwest::Client::new()
        .get(server.url(&format!("/api/v1/internal/permissions/{sub}/snapshot")))
        .header("X-Internal-Secret", SECRET);
    if let Some(tag) = if_none_match {
        request = request.header("If-None-Match", tag);
    }
    let response = request.send().await.expect("snapshot");
    let status = response.status();
    let etag = response.headers().get("etag").map(|v| v.to_str().expect("etag").to_string()).unwrap_or_default();
    let text = response.text().await.expect("body");
    let body = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).expect("JSON") };
    (status, etag, body)
}

/// The current ETag of the user's snapshot (and a check that it matches the body's version).
async fn etag_of(server: &TestServer, sub: &str) -> String {
    let (status, etag, body) = snapshot(server, sub, None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(etag, format!("\"v{}\"", body["version"]), "ETag is the version");
    etag
}

async fn create_organization(server: &TestServer, token: &str, name: &str, slug: &str) -> String {
    let (status, body) = call(
        server,
        reqwest::Method::POST,
        "/api/v1/admin/organizations",
        token,
        Some(json!({ "name": name, "slug": slug })),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    body["id"].as_str().expect("id").to_string()
}

async fn set_member(server: &TestServer, token: &str, org: &str, user_id: &str, role: &str) -> Value {
    let path = format!("/api/v1/admin/organizations/{org}/members/{user_id}");
    let (status, body) = call(server, reqwest::Method::PUT, &path, token, Some(json!({ "role": role }))).await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn grant_snapshot_etag_round_trip(backend: Backend) {
    let server = start(backend).await;
    let admin = admin_token(&server).await;
    let alice = server.user("alice@example.com", PASSWORD).await;
    let billing = permission(&alice.sub, "global", "*", "billing", "read");

    let (status, first, body) = snapshot(&server, &alice.sub, None).await;
    assert_eq!(status, 200);
    assert_eq!(body["permissions"], json!([]));
    assert_eq!(body["role"], "user");
    assert_eq!(body["sub"], alice.sub.as_str());

    let granted = grant(&server, &admin, &billing).await;
    assert_eq!(granted["changed"], true);
    let (status, after_grant, body) = snapshot(&server, &alice.sub, Some(&first)).await;
    assert_eq!(status, 200, "the old ETag no longer matches");
    assert_eq!(after_grant, "\"v2\"");
    assert_eq!(granted["version"], 2);
    assert_eq!(
        body["permissions"],
        json!([{ "scope_type": "global", "scope_id": "*", "module": "billing", "action": "read" }])
    );

    let (status, unchanged, body) = snapshot(&server, &alice.sub, Some(&after_grant)).await;
    assert_eq!(status, 304);
    assert_eq!(unchanged, after_grant, "304 repeats the ETag");
    assert_eq!(body, Value::Null, "304 has no body");
    let (status, _, _) = snapshot(&server, &alice.sub, Some(&format!("W/{after_grant}"))).await;
    assert_eq!(status, 304, "weak comparison");

    let revoked = revoke(&server, &admin, &billing).await;
    assert_eq!(revoked["changed"], true);
    let (status, after_revoke, body) = snapshot(&server, &alice.sub, Some(&after_grant)).await;
    assert_eq!(status, 200);
    assert_ne!(after_revoke, after_grant);
    assert_eq!(body["permissions"], json!([]));

    let again = revoke(&server, &admin, &billing).await;
    assert_eq!(again["changed"], false);
    assert_eq!(again["version"], revoked["version"]);
    let (status, still, _) = snapshot(&server, &alice.sub, Some(&after_revoke)).await;
    assert_eq!(status, 304);
    assert_eq!(still, after_revoke, "revoking a missing permission moves nothing");
    println!(
        "ETags ({backend:?}): initial {first}, after grant {after_grant}, after revoke {after_revoke}, after revoking again {still}"
    );

    // Every call is audited with its fields.
    let (_, audit) =
        call(&server, reqwest::Method::GET, "/api/v1/admin/audit?action=permission.revoke", &admin, None).await;
    let items = audit["items"].as_array().expect("items");
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["target_id"], alice.id.as_str());
    assert_eq!(items[0]["details"]["module"], "billing");
    assert_eq!(items[0]["details"]["changed"], false);
    assert_eq!(items[1]["details"]["changed"], true);
    let (_, audit) =
        call(&server, reqwest::Method::GET, "/api/v1/admin/audit?action=permission.grant", &admin, None).await;
    let entry = &audit["items"][0];
    for field in ["sub", "scope_type", "scope_id", "module", "action"] {
        assert_eq!(entry["details"][field], billing[field], "{field} in the audit details");
    }
}

async fn granting_twice_is_one_row(backend: Backend) {
    let server = start(backend).await;
    let admin = admin_token(&server).await;
    let bob = server.user("bob@example.com", PASSWORD).await;
    let body = permission(&bob.sub, "global", "*", "reports", "export");
    let first = grant(&server, &admin, &body).await;
    let second = grant(&server, &admin, &body).await;
    assert_eq!((first["changed"].clone(), second["changed"].clone()), (json!(true), json!(false)));
    assert_eq!(first["version"], second["version"], "the version stays");
    let rows = server.state.db.permissions_of(&bob.id).await.expect("rows");
    assert_eq!(rows.len(), 1);
    assert_eq!(etag_of(&server, &bob.sub).await, format!("\"v{}\"", first["version"]));

    // Permissions scoped to an organization need an existing organization.
    let missing = permission(&bob.sub, "organization", "no-such-org", "projects", "read");
    let (status, problem) =
        call(&server, reqwest::Method::POST, "/api/v1/admin/permissions/grant", &admin, Some(missing)).await;
    assert_eq!(status, 400);
    assert_eq!(problem["field"], "scope_id");
    let org = create_organization(&server, &admin, "Acme", "acme").await;
    let scoped = permission(&bob.sub, "organization", &org, "projects", "read");
    assert_eq!(grant(&server, &admin, &scoped).await["changed"], true);
    assert_eq!(grant(&server, &admin, &scoped).await["changed"], false);
    assert_eq!(server.state.db.permissions_of(&bob.id).await.expect("rows").len(), 2);
    // Any other scope type is a free-form name.
    let custom = permission(&bob.sub, "project", "p-42", "tickets", "*");
    assert_eq!(grant(&server, &admin, &custom).await["changed"], true);
}

async fn version_follows_roles_memberships_and_organizations(backend: Backend) {
    let server = start(backend).await;
    let admin = admin_token(&server).await;
    let bob = server.user("bob@example.com", PASSWORD).await;
    let user_path = format!("/api/v1/admin/users/{}", bob.id);
    let mut seen = vec![etag_of(&server, &bob.sub).await];
    // Each step: what it does, and whether the snapshot (so the ETag) must move.
    async fn step(server: &TestServer, sub: &str, seen: &mut Vec<String>, what: &str, moves: bool) -> Value {
        let last = seen.last().expect("an ETag").clone();
        let (status, etag, body) = snapshot(server, sub, Some(&last)).await;
        if moves {
            assert_eq!(status, 200, "{what} moves the ETag");
            assert_ne!(etag, last, "{what}");
            seen.push(etag);
            body
        } else {
            assert_eq!(status, 304, "{what} leaves the ETag");
            assert_eq!(etag, last, "{what}");
            snapshot(server, sub, None).await.2
        }
    }

    call(&server, reqwest::Method::PATCH, &user_path, &admin, Some(json!({ "role": "moderator" }))).await;
    let body = step(&server, &bob.sub, &mut seen, "role change", true).await;
    assert_eq!(body["role"], "moderator");
    call(&server, reqwest::Method::PATCH, &user_path, &admin, Some(json!({ "role": "moderator" }))).await;
    step(&server, &bob.sub, &mut seen, "the same role again", false).await;
    call(&server, reqwest::Method::PATCH, &user_path, &admin, Some(json!({ "name": "Bobby" }))).await;
    step(&server, &bob.sub, &mut seen, "a name change", false).await;

    let org = create_organization(&server, &admin, "Acme", "acme").await;
    assert_eq!(set_member(&server, &admin, &org, &bob.id, "owner").await["changed"], true);
    let body = step(&server, &bob.sub, &mut seen, "joining", true).await;
    assert_eq!(body["organizations"], json!([{ "id": org, "slug": "acme", "role": "owner", "permissions": [] }]));
    assert_eq!(set_member(&server, &admin, &org, &bob.id, "owner").await["changed"], false);
    step(&server, &bob.sub, &mut seen, "the same membership again", false).await;
    set_member(&server, &admin, &org, &bob.id, "member").await;
    let body = step(&server, &bob.sub, &mut seen, "a role change in the organization", true).await;
    assert_eq!(body["organizations"][0]["role"], "member");

    grant(&server, &admin, &permission(&bob.sub, "organization", &org, "projects", "write")).await;
    let body = step(&server, &bob.sub, &mut seen, "an organization-scoped grant", true).await;
    assert_eq!(body["organizations"][0]["permissions"], json!([{ "module": "projects", "action": "write" }]));

    let org_path = format!("/api/v1/admin/organizations/{org}");
    call(&server, reqwest::Method::PATCH, &org_path, &admin, Some(json!({ "name": "Acme Inc." }))).await;
    step(&server, &bob.sub, &mut seen, "renaming the organization", false).await;
    call(&server, reqwest::Method::PATCH, &org_path, &admin, Some(json!({ "slug": "acme" }))).await;
    step(&server, &bob.sub, &mut seen, "the same slug again", false).await;
    call(&server, reqwest::Method::PATCH, &org_path, &admin, Some(json!({ "slug": "acme-inc" }))).await;
    let body = step(&server, &bob.sub, &mut seen, "a new slug", true).await;
    assert_eq!(body["organizations"][0]["slug"], "acme-inc");

    let member_path = format!("{org_path}/members/{}", bob.id);
    let (_, removed) = call(&server, reqwest::Method::DELETE, &member_path, &admin, None).await;
    assert_eq!(removed["changed"], true);
    let body = step(&server, &bob.sub, &mut seen, "leaving", true).await;
    assert_eq!(body["organizations"], json!([]));
    assert_eq!(body["permissions"].as_array().expect("list").len(), 1, "the scoped permission stays");
    let (status, removed) = call(&server, reqwest::Method::DELETE, &member_path, &admin, None).await;
    assert_eq!((status, removed["changed"].clone()), (StatusCode::OK, json!(false)));
    step(&server, &bob.sub, &mut seen, "leaving again", false).await;

    set_member(&server, &admin, &org, &bob.id, "member").await;
    step(&server, &bob.sub, &mut seen, "joining again", true).await;
    // Carol only holds a permission scoped to the organization: its deletion moves her too.
    let carol = server.user("carol@example.com", PASSWORD).await;
    grant(&server, &admin, &permission(&carol.sub, "organization", &org, "projects", "read")).await;
    let carol_before = etag_of(&server, &carol.sub).await;
    let (status, _) = call(&server, reqwest::Method::DELETE, &org_path, &admin, None).await;
    assert_eq!(status, 204);
    let body = step(&server, &bob.sub, &mut seen, "deleting the organization", true).await;
    assert_eq!(body["organizations"], json!([]));
    assert_eq!(body["permissions"], json!([]), "permissions scoped to it go with it");
    let (status, carol_after, body) = snapshot(&server, &carol.sub, Some(&carol_before)).await;
    assert_eq!(status, 200);
    assert_ne!(carol_after, carol_before);
    assert_eq!(body["permissions"], json!([]));
    println!("ETags across role, membership and organization changes ({backend:?}): {seen:?}");
    let versions: Vec<i64> =
        seen.iter().map(|tag| tag.trim_matches('"').trim_start_matches('v').parse().expect("version")).collect();
    assert!(versions.windows(2).all(|pair| pair[1] == pair[0] + 1), "one step per change: {versions:?}");
}

async fn ban_and_soft_delete_move_the_version(backend: Backend) {
    let server = start(backend).await;
    let admin = admin_token(&server).await;
    let dave = server.user("dave@example.com", PASSWORD).await;
    grant(&server, &admin, &permission(&dave.sub, "global", "*", "wiki", "edit")).await;
    let user_path = format!("/api/v1/admin/users/{}", dave.id);
    let mut last = etag_of(&server, &dave.sub).await;
    for (method, path, status) in [
        (reqwest::Method::POST, format!("{user_path}/ban"), "banned"),
        (reqwest::Method::POST, format!("{user_path}/unban"), "active"),
        (reqwest::Method::DELETE, user_path.clone(), "deleted"),
        (reqwest::Method::POST, format!("{user_path}/restore"), "active"),
    ] {
        let (code, _) = call(&server, method, &path, &admin, None).await;
        assert_eq!(code, 200, "{path}");
        let (code, etag, body) = snapshot(&server, &dave.sub, Some(&last)).await;
        assert_eq!(code, 200, "{path} moves the version");
        assert_ne!(etag, last);
        assert_eq!(body["status"], status);
        let rights = if status == "active" { 1 } else { 0 };
        assert_eq!(body["permissions"].as_array().expect("list").len(), rights, "only active users hold rights");
        last = etag;
    }
}

async fn concurrent_grants_and_revokes_stay_consistent(backend: Backend) {
    let server = start(backend).await;
    let admin = admin_token(&server).await;
    let erin = server.user("erin@example.com", PASSWORD).await;
    let body = permission(&erin.sub, "global", "*", "deploy", "run");
    let start_version = server.state.db.permissions_version(&erin.id).await.expect("read").expect("user");

    let mut tasks = Vec::new();
    for n in 0..20 {
        let url =
            server.url(if n % 2 == 0 { "/api/v1/admin/permissions/grant" } else { "/api/v1/admin/permissions/revoke" });
        let (admin, body) = (admin.clone(), body.clone());
        tasks.push(tokio::spawn(async move {
            let response = reqwest::Client::new().post(url).bearer_auth(admin).json(&body).send().await.expect("call");
            assert_eq!(response.status(), 200);
            let answer: Value = response.json().await.expect("JSON");
            (n % 2 == 0, answer["changed"].as_bool().expect("changed"))
        }));
    }
    let mut grants_changed = 0i64;
    let mut revokes_changed = 0i64;
    for task in tasks {
        match task.await.expect("task") {
            (true, true) => grants_changed += 1,
            (false, true) => revokes_changed += 1,
            _ => {}
        }
    }
    let rows = server.state.db.permissions_of(&erin.id).await.expect("rows").len() as i64;
    let end_version = server.state.db.permissions_version(&erin.id).await.expect("read").expect("user");
    assert!(rows <= 1);
    assert_eq!(rows, grants_changed - revokes_changed, "each answered change happened, in some order");
    assert_eq!(end_version - start_version, grants_changed + revokes_changed, "one version per real change");
    assert!(grants_changed >= 1);
    println!("{backend:?}: {grants_changed} grants and {revokes_changed} revokes changed something; {rows} row");

    // Ten concurrent grants of a new permission: exactly one changes something.
    let fresh = permission(&erin.sub, "global", "*", "deploy", "approve");
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let (url, admin, body) = (server.url("/api/v1/admin/permissions/grant"), admin.clone(), fresh.clone());
        tasks.push(tokio::spawn(async move {
            let response = reqwest::Client::new().post(url).bearer_auth(admin).json(&body).send().await.expect("call");
            assert_eq!(response.status(), 200);
            response.json::<Value>().await.expect("JSON")["changed"].as_bool().expect("changed")
        }));
    }
    let mut changed = 0;
    for task in tasks {
        changed += i32::from(task.await.expect("task"));
    }
    assert_eq!(changed, 1);
    let after = server.state.db.permissions_version(&erin.id).await.expect("read").expect("user");
    assert_eq!(after, end_version + 1);
}

async fn organizations_crud_slug_conflict_and_member_pagination(backend: Backend) {
    let server = start(backend).await;
    let admin = admin_token(&server).await;
    let orgs = "/api/v1/admin/organizations";
    let acme = create_organization(&server, &admin, "Acme", "acme").await;
    server.clock.advance(1);
    let globex = create_organization(&server, &admin, "Globex", "globex").await;

    let (status, problem) =
        call(&server, reqwest::Method::POST, orgs, &admin, Some(json!({ "name": "Other", "slug": "acme" }))).await;
    assert_eq!(status, 409);
    assert_eq!(problem["code"], "slug_taken");
    let (status, problem) =
        call(&server, reqwest::Method::POST, orgs, &admin, Some(json!({ "name": "Bad", "slug": "Bad Slug" }))).await;
    assert_eq!((status, problem["field"].clone()), (StatusCode::BAD_REQUEST, json!("slug")));
    let (status, problem) =
        call(&server, reqwest::Method::POST, orgs, &admin, Some(json!({ "name": " ", "slug": "blank" }))).await;
    assert_eq!((status, problem["field"].clone()), (StatusCode::BAD_REQUEST, json!("name")));

    let (status, page) = call(&server, reqwest::Method::GET, &format!("{orgs}?limit=1"), &admin, None).await;
    assert_eq!(status, 200);
    assert_eq!(page["items"][0]["slug"], "acme");
    let cursor = page["next_cursor"].as_str().expect("cursor").to_string();
    let (_, page) = call(&server, reqwest::Method::GET, &format!("{orgs}?limit=1&cursor={cursor}"), &admin, None).await;
    assert_eq!(page["items"][0]["id"], globex.as_str());
    assert!(page["next_cursor"].is_null());

    let acme_path = format!("{orgs}/{acme}");
    let (status, org) = call(&server, reqwest::Method::GET, &acme_path, &admin, None).await;
    assert_eq!((status, org["name"].clone()), (StatusCode::OK, json!("Acme")));
    let (status, problem) =
        call(&server, reqwest::Method::PATCH, &acme_path, &admin, Some(json!({ "slug": "globex" }))).await;
    assert_eq!((status, problem["code"].clone()), (StatusCode::CONFLICT, json!("slug_taken")));
    let (status, org) =
        call(&server, reqwest::Method::PATCH, &acme_path, &admin, Some(json!({ "name": "Acme Corp" }))).await;
    assert_eq!((status, org["name"].clone(), org["slug"].clone()), (StatusCode::OK, json!("Acme Corp"), json!("acme")));
    let (status, _) = call(&server, reqwest::Method::PATCH, &format!("{orgs}/nope"), &admin, Some(json!({}))).await;
    assert_eq!(status, 404);

    // Members: in joining order, a page at a time.
    let mut ids = Vec::new();
    for n in 0..5 {
        let user = server.user(&format!("member{n}@example.com"), PASSWORD).await;
        set_member(&server, &admin, &acme, &user.id, if n == 0 { "owner" } else { "member" }).await;
        ids.push(user.id);
        server.clock.advance(1);
    }
    let mut listed = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("{acme_path}/members?limit=2");
        if let Some(cursor) = &cursor {
            path.push_str(&format!("&cursor={cursor}"));
        }
        let (status, page) = call(&server, reqwest::Method::GET, &path, &admin, None).await;
        assert_eq!(status, 200);
        let items = page["items"].as_array().expect("items");
        assert!(items.len() <= 2);
        listed.extend(items.iter().map(|m| m["user_id"].as_str().expect("id").to_string()));
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    assert_eq!(listed, ids);
    let (_, page) = call(&server, reqwest::Method::GET, &format!("{acme_path}/members"), &admin, None).await;
    assert_eq!(page["items"][0]["role"], "owner");
    assert_eq!(page["items"][0]["email"], "member0@example.com");
    for bad in ["limit=0", "limit=101", "cursor=%%%"] {
        let (status, _) =
            call(&server, reqwest::Method::GET, &format!("{acme_path}/members?{bad}"), &admin, None).await;
        assert_eq!(status, 400, "{bad}");
    }
    let (status, _) = call(&server, reqwest::Method::GET, &format!("{orgs}/nope/members"), &admin, None).await;
    assert_eq!(status, 404);
    let (status, _) = call(
        &server,
        reqwest::Method::PUT,
        &format!("{acme_path}/members/no-such-user"),
        &admin,
        Some(json!({ "role": "member" })),
    )
    .await;
    assert_eq!(status, 404, "unknown user");
    let (status, _) = call(
        &server,
        reqwest::Method::PUT,
        &format!("{orgs}/nope/members/{}", ids[0]),
        &admin,
        Some(json!({ "role": "member" })),
    )
    .await;
    assert_eq!(status, 404, "unknown organization");
    let (status, problem) = call(
        &server,
        reqwest::Method::PUT,
        &format!("{acme_path}/members/{}", ids[0]),
        &admin,
        Some(json!({ "role": "chief executive" })),
    )
    .await;
    assert_eq!((status, problem["field"].clone()), (StatusCode::BAD_REQUEST, json!("role")));

    let (status, body) = call(&server, reqwest::Method::DELETE, &acme_path, &admin, None).await;
    assert_eq!((status, body), (StatusCode::NO_CONTENT, Value::Null));
    assert_eq!(call(&server, reqwest::Method::GET, &acme_path, &admin, None).await.0, 404);
    assert_eq!(call(&server, reqwest::Method::DELETE, &acme_path, &admin, None).await.0, 404);
    let (status, _) =
        call(&server, reqwest::Method::DELETE, &format!("{acme_path}/members/{}", ids[0]), &admin, None).await;
    assert_eq!(status, 404);
    // The slug is free again.
    create_organization(&server, &admin, "Acme again", "acme").await;
    let (_, audit) =
        call(&server, reqwest::Method::GET, "/api/v1/admin/audit?action=organization.delete", &admin, None).await;
    assert_eq!(audit["items"][0]["target_id"], acme.as_str());
}

async fn callers_and_bad_input(backend: Backend) {
    let server = start(backend).await;
    let admin = admin_token(&server).await;
    let frank = server.user("frank@example.com", PASSWORD).await;
    let user_token = api_token(&server, "frank@example.com").await;
    let body = permission(&frank.sub, "global", "*", "billing", "read");
    let http = reqwest::Client::new();
    let grant_url = server.url("/api/v1/admin/permissions/grant");

    // A user who is not an administrator.
    for (method, path) in [
        (reqwest::Method::POST, "/api/v1/admin/permissions/grant"),
        (reqwest::Method::POST, "/api/v1/admin/permissions/revoke"),
        (reqwest::Method::GET, "/api/v1/admin/organizations"),
        (reqwest::Method::POST, "/api/v1/admin/organizations"),
    ] {
        let (status, problem) = call(&server, method, path, &user_token, Some(body.clone())).await;
        assert_eq!(status, 403, "{path}");
        assert_eq!(problem["code"], "admin_required");
    }
    // No credentials; a third-party client's token (aud = its client id) of an administrator.
    let response = http.post(&grant_url).json(&body).send().await.expect("grant");
    assert_eq!(response.status(), 401);
    let client = server.client(&["--name", "third", "--redirect-uri", REDIRECT]).await;
    server.user_with_role("boss@example.com", PASSWORD, true).await;
    let browser = Browser::new();
    let pkce = pkce();
    let url = authorize_url(&server, &client, &pkce, &[]);
    let redirect = run_browser_flow(&server, &browser, &url, "boss@example.com", PASSWORD).await;
    let code = query_of(&redirect)["code"].clone();
    let tokens = json(redeem(&server, &client, &code, &pkce.verifier).await).await;
    let third_party = tokens["access_token"].as_str().expect("token");
    let (status, problem) =
        call(&server, reqwest::Method::POST, "/api/v1/admin/permissions/grant", third_party, Some(body.clone())).await;
    assert_eq!(status, 401);
    assert_eq!(problem["code"], "invalid_audience");
    let (status, _) = call(&server, reqwest::Method::GET, "/api/v1/users/me/permissions", third_party, None).await;
    assert_eq!(status, 401);
    // An administrator's read-only key reads but does not grant.
    let created = http
        .post(server.url("/api/v1/users/me/api-keys"))
        .bearer_auth(&admin)
        .json(&json!({ "name": "reader", "scopes": ["read:users"] }))
        .send()
        .await
        .expect("key");
    let key = json(created).await["key"].as_str().expect("key").to_string();
    let response = http.post(&grant_url).header("X-API-Key", &key).json(&body).send().await.expect("grant");
    assert_eq!(response.status(), 403);
    let response =
        http.get(server.url("/api/v1/admin/organizations")).header("X-API-Key", &key).send().await.expect("list");
    assert_eq!(response.status(), 200);
    assert!(server.state.db.permissions_of(&frank.id).await.expect("rows").is_empty(), "nothing was granted");

    // Bad input: 400 problem JSON naming the field, never a 5xx.
    let long = "x".repeat(129);
    for field in ["sub", "scope_type", "scope_id", "module", "action"] {
        for bad in ["", "white space", "semi;colon", "quote'", long.as_str()] {
            let mut request = body.clone();
            request[field] = json!(bad);
            for path in ["/api/v1/admin/permissions/grant", "/api/v1/admin/permissions/revoke"] {
                let response =
                    http.post(server.url(path)).bearer_auth(&admin).json(&request).send().await.expect("call");
                assert_eq!(response.status(), 400, "{path} {field}={bad:?}");
                assert_eq!(response.headers()["content-type"], "application/problem+json");
                let problem = json(response).await;
                assert_eq!(problem["field"], field, "{field}={bad:?}: {problem}");
                assert_eq!(problem["code"], "invalid_field");
            }
        }
    }
    let mut unknown = body.clone();
    unknown["sub"] = json!("no-such-sub");
    let (status, problem) =
        call(&server, reqwest::Method::POST, "/api/v1/admin/permissions/grant", &admin, Some(unknown)).await;
    assert_eq!((status, problem["code"].clone()), (StatusCode::NOT_FOUND, json!("not_found")));
    let mut extra = body.clone();
    extra["admin"] = json!(true);
    let (status, _) =
        call(&server, reqwest::Method::POST, "/api/v1/admin/permissions/grant", &admin, Some(extra)).await;
    assert_eq!(status, 400, "unknown fields are refused");
    for malformed in [json!({ "sub": frank.sub }), json!([1, 2]), json!({ "sub": 5, "scope_type": "global" })] {
        let (status, problem) =
            call(&server, reqwest::Method::POST, "/api/v1/admin/permissions/grant", &admin, Some(malformed)).await;
        assert_eq!(status, 400);
        assert!(problem["request_id"].is_string());
    }
    let response = http
        .post(&grant_url)
        .bearer_auth(&admin)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("call");
    assert_eq!(response.status(), 400);
}

async fn my_permissions_snapshot(backend: Backend) {
    let server = start(backend).await;
    let admin = admin_token(&server).await;
    let grace = server.user("grace@example.com", PASSWORD).await;
    let token = api_token(&server, "grace@example.com").await;
    grant(&server, &admin, &permission(&grace.sub, "global", "*", "calendar", "write")).await;
    let http = reqwest::Client::new();
    let url = server.url("/api/v1/users/me/permissions");
    let response = http.get(&url).bearer_auth(&token).send().await.expect("me");
    assert_eq!(response.status(), 200);
    let etag = response.headers()["etag"].to_str().expect("etag").to_string();
    assert_eq!(etag, "\"v2\"");
    assert!(response.headers()["cache-control"].to_str().expect("cc").contains("no-cache"));
    let body = json(response).await;
    assert_eq!(body["sub"], grace.sub.as_str());
    assert_eq!(body["permissions"][0]["module"], "calendar");
    // The same as services see it.
    assert_eq!(snapshot(&server, &grace.sub, None).await.2, body);
    let response = http.get(&url).bearer_auth(&token).header("If-None-Match", &etag).send().await.expect("me");
    assert_eq!(response.status(), 304);
    assert_eq!(response.headers()["etag"], etag.as_str());
    assert!(response.text().await.expect("body").is_empty());

    // With an API key that may read the account; not without credentials.
    let created = http
        .post(server.url("/api/v1/users/me/api-keys"))
        .bearer_auth(&token)
        .json(&json!({ "name": "reader", "scopes": ["read:users"] }))
        .send()
        .await
        .expect("key");
    let key = json(created).await["key"].as_str().expect("key").to_string();
    let response = http.get(&url).header("X-API-Key", &key).send().await.expect("me");
    assert_eq!(response.status(), 200);
    let response = http.get(&url).send().await.expect("me");
    assert_eq!(response.status(), 401);
    assert_eq!(response.headers()["content-type"], "application/problem+json");
}
