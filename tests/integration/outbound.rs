//! Outgoing requests to URLs untrusted parties supply (`src/outbound/`, issue #14 rule 3), over
//! real HTTP against small servers on 127.0.0.1: special addresses are refused on the address
//! actually connected to (names resolving to loopback too) unless the deployment allows them,
//! plain http only towards allowed addresses, no redirects, bounded size and time. No oxidp
//! server or database is needed, so these are plain tokio tests.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use oxidp::outbound::{Limits, Outbound, OutboundError, OutboundPolicy};
use poem::http::StatusCode;
use poem::web::{Data, Form};
use poem::{EndpointExt, Response, Route, get, handler, post};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::federation::{serve_mock, silent_listener};

#[derive(Clone, Default)]
struct Hits(Arc<AtomicUsize>);

impl Hits {
    fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

#[handler]
fn document(Data(hits): Data<&Hits>) -> Response {
    hits.0.fetch_add(1, Ordering::SeqCst);
    Response::builder().content_type("application/json").body(json!({"client_id": "doc"}).to_string())
}

#[handler]
fn moved() -> Response {
    Response::builder().status(StatusCode::FOUND).header("Location", "/doc").finish()
}

#[handler]
fn big() -> Response {
    Response::builder().content_type("application/json").body(format!("\"{}\"", "x".repeat(100 * 1024)))
}

#[handler]
fn broken() -> Response {
    Response::builder().status(StatusCode::INTERNAL_SERVER_ERROR).body("no")
}

#[handler]
fn not_json() -> &'static str {
    "<html>hello</html>"
}

#[handler]
fn logout(Form(form): Form<std::collections::HashMap<String, String>>) -> String {
    form.get("logout_token").cloned().unwrap_or_default()
}

/// A mock upstream on 127.0.0.1; returns its port and the hit counter of `/doc`.
async fn upstream() -> (u16, Hits) {
    let hits = Hits::default();
    let app = Route::new()
        .at("/doc", get(document))
        .at("/moved", get(moved))
        .at("/big", get(big))
        .at("/broken", get(broken))
        .at("/html", get(not_json))
        .at("/logout", post(logout))
        .data(hits.clone());
    let base = serve_mock(app).await;
    let port = base.rsplit(':').next().expect("port").parse().expect("port number");
    (port, hits)
}

fn outbound(allow_loopback: bool, cidrs: &[&str]) -> Outbound {
    Outbound::new(OutboundPolicy {
        allow_cidrs: cidrs.iter().map(|cidr| cidr.parse().expect("cidr")).collect(),
        allow_loopback,
    })
    .expect("client")
}

fn quick() -> Limits {
    Limits { max_bytes: 64 * 1024, timeout: Duration::from_millis(800) }
}

#[tokio::test]
async fn loopback_is_refused_by_default_without_connecting() {
    let (port, hits) = upstream().await;
    let strict = outbound(false, &[]);
    for url in [
        format!("http://127.0.0.1:{port}/doc"),
        format!("https://127.0.0.1:{port}/doc"),
        format!("http://127.0.0.2:{port}/doc"),
        format!("http://[::ffff:127.0.0.1]:{port}/doc"),
        format!("http://[::1]:{port}/doc"),
    ] {
        let error = strict.get_json(&url, Limits::default()).await.expect_err(&url);
        assert!(matches!(error, OutboundError::Forbidden(_)), "{url}: {error:?}");
    }
    // Allowing only other networks changes nothing for loopback.
    let other = outbound(false, &["10.0.0.0/8"]);
    let error = other.get_json(&format!("http://127.0.0.1:{port}/doc"), Limits::default()).await.expect_err("refused");
    assert!(matches!(error, OutboundError::Forbidden(_)), "{error:?}");
    assert_eq!(hits.count(), 0, "nothing reached the server");
}

#[tokio::test]
async fn a_name_resolving_to_loopback_is_refused() {
    let (port, hits) = upstream().await;
    let strict = outbound(false, &[]);
    for url in [format!("https://localhost:{port}/doc"), format!("http://localhost:{port}/doc")] {
        let error = strict.get_json(&url, Limits::default()).await.expect_err(&url);
        assert!(matches!(error, OutboundError::Forbidden(ref host) if host == "localhost"), "{url}: {error:?}");
    }
    assert_eq!(hits.count(), 0, "the resolver refused before any connection");
    // The same name is fetched when loopback is allowed: the refusal came from the address.
    let relaxed = outbound(true, &[]);
    let fetched = relaxed.get_json(&format!("http://localhost:{port}/doc"), quick()).await.expect("fetched");
    assert_eq!(fetched.body["client_id"], "doc");
    assert_eq!(hits.count(), 1);
}

#[tokio::test]
async fn allow_loopback_fetches_loopback_over_http() {
    let (port, hits) = upstream().await;
    let relaxed = outbound(true, &[]);
    let fetched = relaxed.get_json(&format!("http://127.0.0.1:{port}/doc"), quick()).await.expect("fetched");
    assert_eq!(fetched.status, 200);
    assert_eq!(fetched.body, json!({"client_id": "doc"}));
    assert_eq!(fetched.headers.get("content-type").expect("content type"), "application/json");
    assert_eq!(hits.count(), 1);
    // A form POST (a back-channel logout token) goes the same way.
    let posted = relaxed
        .post_form(&format!("http://127.0.0.1:{port}/logout"), &[("logout_token", "a.b.c")], quick())
        .await
        .expect("posted");
    assert_eq!(posted.body, b"a.b.c");
}

#[tokio::test]
async fn allow_cidrs_fetches_listed_networks() {
    let (port, hits) = upstream().await;
    let listed = outbound(false, &["127.0.0.0/8"]);
    let fetched = listed.get_json(&format!("http://127.0.0.1:{port}/doc"), quick()).await.expect("fetched");
    assert_eq!(fetched.body["client_id"], "doc");
    assert_eq!(hits.count(), 1);
}

#[tokio::test]
async fn plain_http_is_refused_towards_addresses_not_explicitly_allowed() {
    let relaxed = outbound(true, &["127.0.0.0/8"]);
    let started = Instant::now();
    for url in ["http://8.8.8.8/doc", "http://[2606:4700::1111]/doc"] {
        let error = relaxed.get_json(url, Limits::default()).await.expect_err(url);
        assert!(matches!(error, OutboundError::NotHttps), "{url}: {error:?}");
    }
    for url in ["ftp://8.8.8.8/doc", "file:///etc/passwd", "gopher://8.8.8.8/"] {
        let error = relaxed.get(url, Limits::default()).await.expect_err(url);
        assert!(matches!(error, OutboundError::NotHttps), "{url}: {error:?}");
    }
    assert!(started.elapsed() < Duration::from_millis(500), "refused before connecting");
}

#[tokio::test]
async fn private_and_special_literals_are_refused_without_connecting() {
    // Even with loopback allowed: these are other special networks.
    let relaxed = outbound(true, &[]);
    let started = Instant::now();
    for url in [
        "https://10.0.0.1/doc",
        "http://10.0.0.1/doc",
        "https://169.254.169.254/latest/meta-data/",
        "https://[::ffff:10.0.0.1]/doc",
        "https://[fd00::1]/doc",
        "https://[fe80::1]/doc",
        "https://100.64.0.1/doc",
        "https://0.0.0.0/doc",
        "https://[::]/doc",
        "https://192.168.1.1/doc",
        "https://[64:ff9b::a00:1]/doc",
    ] {
        let error = relaxed.get_json(url, Limits::default()).await.expect_err(url);
        assert!(matches!(error, OutboundError::Forbidden(_)), "{url}: {error:?}");
    }
    // Connecting to 10.0.0.1 would take the 2-second connect limit at least.
    assert!(started.elapsed() < Duration::from_millis(500), "refused before connecting: {:?}", started.elapsed());
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let (port, hits) = upstream().await;
    let relaxed = outbound(true, &[]);
    let error = relaxed.get_json(&format!("http://127.0.0.1:{port}/moved"), quick()).await.expect_err("redirect");
    assert!(matches!(error, OutboundError::Redirect(302)), "{error:?}");
    assert_eq!(hits.count(), 0, "the target of the redirect was never fetched");
}

#[tokio::test]
async fn oversized_bodies_are_refused() {
    let (port, _) = upstream().await;
    let relaxed = outbound(true, &[]);
    let url = format!("http://127.0.0.1:{port}/big");
    let error = relaxed.get_json(&url, Limits::default()).await.expect_err("too large");
    assert!(matches!(error, OutboundError::TooLarge(65536)), "{error:?}");
    // The limit is per call.
    let roomy = Limits { max_bytes: 200 * 1024, timeout: Duration::from_secs(5) };
    assert!(relaxed.get_json(&url, roomy).await.is_ok());
    // Without a Content-Length the body is counted as it arrives.
    let base = raw_server(format!("\"{}\"", "y".repeat(100 * 1024)), Duration::ZERO).await;
    let error = relaxed.get_json(&format!("{base}/stream"), Limits::default()).await.expect_err("too large");
    assert!(matches!(error, OutboundError::TooLarge(65536)), "{error:?}");
}

#[tokio::test]
async fn slow_servers_time_out() {
    let relaxed = outbound(true, &[]);
    // Accepts the connection, never answers.
    let (_listener, base) = silent_listener();
    let started = Instant::now();
    let error = relaxed.get_json(&format!("{base}/doc"), quick()).await.expect_err("timeout");
    assert!(matches!(error, OutboundError::Timeout), "{error:?}");
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
    // Answers the headers, then dribbles the body past the limit: the limit is on the whole exchange.
    let base = raw_server("\"slow\"".into(), Duration::from_secs(3)).await;
    let started = Instant::now();
    let error = relaxed.get_json(&format!("{base}/doc"), quick()).await.expect_err("timeout");
    assert!(matches!(error, OutboundError::Timeout), "{error:?}");
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
}

#[tokio::test]
async fn errors_and_non_json_answers_are_typed() {
    let (port, _) = upstream().await;
    let relaxed = outbound(true, &[]);
    let error = relaxed.get_json(&format!("http://127.0.0.1:{port}/broken"), quick()).await.expect_err("500");
    assert!(matches!(error, OutboundError::Status(500)), "{error:?}");
    let error = relaxed.get_json(&format!("http://127.0.0.1:{port}/html"), quick()).await.expect_err("html");
    assert!(matches!(error, OutboundError::InvalidJson(_)), "{error:?}");
    // Nobody listens on the port of a closed listener.
    let (listener, base) = silent_listener();
    drop(listener);
    let error = relaxed.get_json(&format!("{base}/doc"), quick()).await.expect_err("closed");
    assert!(matches!(error, OutboundError::Unreachable(_)), "{error:?}");
    let error = relaxed.get_json("not a url", quick()).await.expect_err("invalid");
    assert!(matches!(error, OutboundError::InvalidUrl(_)), "{error:?}");
}

#[tokio::test]
async fn the_server_builds_its_outbound_handle_from_the_settings() {
    let config = oxidp::config::Config {
        outbound_allow_loopback: true,
        outbound_allow_cidrs: vec!["10.1.0.0/16".parse().expect("cidr")],
        ..oxidp::config::Config::default()
    };
    let built = Outbound::from_config(&config).expect("client");
    assert!(built.policy().allow_loopback);
    assert_eq!(built.policy().allow_cidrs.len(), 1);
}

/// A raw HTTP/1.1 server answering every connection with `body` (no Content-Length, closed at
/// the end), after writing the headers and then waiting `delay`.
async fn raw_server(body: String, delay: Duration) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let body = body.clone();
            tokio::spawn(async move {
                let mut request = [0u8; 4096];
                let _ = socket.read(&mut request).await;
                let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n";
                let _ = socket.write_all(head.as_bytes()).await;
                tokio::time::sleep(delay).await;
                let _ = socket.write_all(body.as_bytes()).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    format!("http://{addr}")
}
