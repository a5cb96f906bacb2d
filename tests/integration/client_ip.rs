//! The client IP behind TLS-terminating proxies (RFC 9700 §4.13, `src/http/context.rs`):
//! `X-Forwarded-For` is believed only from `OXIDP_TRUSTED_PROXIES`, and then only its right-most
//! untrusted hop. The brute-force limits and the audit log show which address was taken.

use serde_json::json;

use crate::common::*;
use crate::on_both_backends;

on_both_backends!(
    forwarded_for_is_believed_only_from_trusted_proxies,
    forwarded_for_skips_trusted_hops_and_is_ignored_from_other_peers,
    an_ipv4_mapped_peer_counts_as_its_ipv4_address,
);

/// Issue #12 item 7: bound to `[::]`, an IPv4 client arrives as `::ffff:127.0.0.1`; it is the
/// IPv4 address for trusted proxies, allowlists, throttles and the audit log.
async fn an_ipv4_mapped_peer_counts_as_its_ipv4_address(backend: Backend) {
    let server = TestServer::start_dual_stack(backend, |c| {
        c.trusted_proxies = vec!["127.0.0.1/32".parse().expect("cidr")];
    })
    .await;
    let login = |forwarded: Option<&'static str>| {
        let mut request = reqwest::Client::new()
            .post(server.url("/api/v1/auth/login"))
            .json(&json!({ "email": "nobody@example.com", "password": "wrong password!" }));
        if let Some(forwarded) = forwarded {
            request = request.header("x-forwarded-for", forwarded);
        }
        request.send()
    };
    assert_eq!(login(None).await.expect("login").status(), 401);
    // The mapped peer is the trusted proxy 127.0.0.1, so its X-Forwarded-For is believed.
    assert_eq!(login(Some("203.0.113.9")).await.expect("login").status(), 401);
    use oxidp::store::{AuditFilter, AuditStore};
    let filter = AuditFilter { action: Some("login.failed".into()), limit: 10, ..AuditFilter::default() };
    let mut ips: Vec<String> =
        server.state.db.query_audit(&filter).await.expect("audit").into_iter().filter_map(|e| e.ip).collect();
    ips.sort();
    assert_eq!(ips, ["127.0.0.1", "203.0.113.9"]);
}

const ALICE: &str = "alice@example.com";

async fn forwarded_for_is_believed_only_from_trusted_proxies(backend: Backend) {
    async fn attempt(server: &TestServer, forwarded: &str, email: &str, password: &str) -> u16 {
        reqwest::Client::new()
            .post(server.url("/api/v1/auth/login"))
            .header("x-forwarded-for", forwarded)
            .json(&json!({ "email": email, "password": password }))
            .send()
            .await
            .expect("login")
            .status()
            .as_u16()
    }
    async fn audited_ips(server: &TestServer) -> Vec<String> {
        use oxidp::store::{AuditFilter, AuditStore};
        let filter = AuditFilter { action: Some("login.failed".into()), limit: 100, ..AuditFilter::default() };
        server.state.db.query_audit(&filter).await.expect("audit").into_iter().filter_map(|e| e.ip).collect()
    }

    // No trusted proxy: a header that changes with every request changes nothing.
    let server = TestServer::start_with(backend, |c| {
        c.login_ip_limit = 3;
        c.login_account_limit = 100;
    })
    .await;
    server.user(ALICE, PASSWORD).await;
    for i in 0..3 {
        let status =
            attempt(&server, &format!("203.0.113.{i}"), &format!("user{i}@example.com"), "wrong password!").await;
        assert_eq!(status, 401);
    }
    assert_eq!(attempt(&server, "198.51.100.77", ALICE, PASSWORD).await, 429, "the peer address is locked");
    assert!(audited_ips(&server).await.iter().all(|ip| ip == "127.0.0.1"), "the audit names the peer");

    // Behind a trusted proxy, the right-most untrusted hop is the client.
    let server = TestServer::start_with(backend, |c| {
        c.login_ip_limit = 3;
        c.login_account_limit = 100;
        c.trusted_proxies = vec!["127.0.0.1/32".parse().expect("cidr")];
    })
    .await;
    server.user(ALICE, PASSWORD).await;
    for i in 0..3 {
        let status = attempt(&server, "203.0.113.9", &format!("user{i}@example.com"), "wrong password!").await;
        assert_eq!(status, 401);
    }
    assert_eq!(attempt(&server, "203.0.113.9", ALICE, PASSWORD).await, 429, "that client is locked");
    // A spoofed left-most hop does not move the client off its real address.
    assert_eq!(attempt(&server, "198.51.100.1, 203.0.113.9", ALICE, PASSWORD).await, 429);
    assert_eq!(attempt(&server, "203.0.113.10", ALICE, PASSWORD).await, 200, "another client is not");
    assert!(audited_ips(&server).await.iter().all(|ip| ip == "203.0.113.9"));
}

/// The two other sides of `OXIDP_TRUSTED_PROXIES`: a list that does not hold the peer leaves the
/// header unbelieved; a chain of trusted proxies is walked to the right-most hop none of them is.
async fn forwarded_for_skips_trusted_hops_and_is_ignored_from_other_peers(backend: Backend) {
    /// The IP the audit log records for a failed login sent with these `X-Forwarded-For` headers.
    async fn client_ip_for(server: &TestServer, forwarded: &[&str]) -> String {
        use oxidp::store::{AuditFilter, AuditStore};
        let request_id = uuid::Uuid::new_v4().to_string();
        let mut request = reqwest::Client::new()
            .post(server.url("/api/v1/auth/login"))
            .header("x-request-id", &request_id)
            // A fresh account each time: the progressive delay per account must not answer first.
            .json(&json!({ "email": format!("nobody-{request_id}@example.com"), "password": "wrong password!" }));
        for header in forwarded {
            request = request.header("x-forwarded-for", *header);
        }
        assert_eq!(request.send().await.expect("login").status(), 401);
        let filter = AuditFilter { action: Some("login.failed".into()), limit: 100, ..AuditFilter::default() };
        let entries = server.state.db.query_audit(&filter).await.expect("audit");
        let entry = entries.into_iter().find(|e| e.request_id.as_deref() == Some(request_id.as_str()));
        entry.and_then(|entry| entry.ip).expect("the failed login is audited with an IP")
    }

    // Proxies are configured, but the peer (127.0.0.1) is not one of them: the header is the
    // client's own claim and changes nothing.
    let server =
        TestServer::start_with(backend, |c| c.trusted_proxies = vec!["10.0.0.0/8".parse().expect("cidr")]).await;
    assert_eq!(client_ip_for(&server, &["203.0.113.9"]).await, "127.0.0.1");
    assert_eq!(client_ip_for(&server, &["10.1.2.3"]).await, "127.0.0.1");

    // The peer and an inner proxy are trusted: the client is the hop left of the inner proxy,
    // neither the inner proxy nor whatever the client put further left.
    let server = TestServer::start_with(backend, |c| {
        c.trusted_proxies = vec!["127.0.0.1/32".parse().expect("cidr"), "10.0.0.0/8".parse().expect("cidr")]
    })
    .await;
    assert_eq!(client_ip_for(&server, &["198.51.100.1, 203.0.113.9, 10.1.2.3"]).await, "203.0.113.9");
    // Several headers are one list, in order.
    assert_eq!(client_ip_for(&server, &["198.51.100.1", "203.0.113.10, 10.9.9.9"]).await, "203.0.113.10");
    // Only trusted hops, or nothing usable: the peer itself is the client.
    assert_eq!(client_ip_for(&server, &["10.1.2.3, 10.4.5.6"]).await, "127.0.0.1");
    assert_eq!(client_ip_for(&server, &["unknown, not-an-ip"]).await, "127.0.0.1");
    assert_eq!(client_ip_for(&server, &[]).await, "127.0.0.1");
}
