//! The real `oxidp serve` binary as operators run it: SIGTERM lets requests in flight finish and
//! exits 0; `OXIDP_LOG_FORMAT=json` writes JSON lines that carry the request ID; the client IP
//! behind a trusted proxy reaches the logs; text logs escape control characters from requests.

use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::cli::{Cli, Serving, free_port};
use crate::common::*;

/// Reads until the peer closes the connection (or `limit` passes).
async fn read_to_close(stream: &mut TcpStream, limit: Duration) -> String {
    let mut buffer = Vec::new();
    tokio::time::timeout(limit, stream.read_to_end(&mut buffer))
        .await
        .unwrap_or_else(|_| panic!("the server did not close the connection within {limit:?}"))
        .expect("read");
    String::from_utf8_lossy(&buffer).into_owned()
}

/// Reads one HTTP/1.1 response with a `Content-Length` body; the connection stays open.
async fn read_response(stream: &mut TcpStream) -> String {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&buffer).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|line| line.to_ascii_lowercase().strip_prefix("content-length:").map(str::to_string))
                .and_then(|value| value.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if buffer.len() >= end + 4 + length {
                return text;
            }
        }
        let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk))
            .await
            .expect("a response within 10 s")
            .expect("read");
        assert!(read > 0, "connection closed mid-response: {:?}", String::from_utf8_lossy(&buffer));
        buffer.extend_from_slice(&chunk[..read]);
    }
}

fn body_of(response: &str) -> &str {
    response.split_once("\r\n\r\n").map_or("", |(_, body)| body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_requests_in_flight_finish_then_exits_0() {
    let cli = Cli::new(Backend::Sqlite).await;
    let created =
        cli.json(&["client", "create", "--name", "svc", "--grant-types", "client_credentials", "--scopes", "api"]);
    let (client_id, secret) =
        (created["client_id"].as_str().expect("id"), created["client_secret"].as_str().expect("s"));
    let port = free_port();
    let (bind, issuer) = (format!("127.0.0.1:{port}"), format!("http://127.0.0.1:{port}"));
    let mut serving =
        Serving::start(&cli, &[("OXIDP_BIND", bind.as_str()), ("OXIDP_ISSUER", issuer.as_str())], "serve.log");
    serving.wait_for_line("discovery");

    // A keep-alive connection that has finished its request and sits idle.
    let mut idle = TcpStream::connect(&bind).await.expect("connect");
    idle.write_all(format!("GET /healthz HTTP/1.1\r\nHost: {bind}\r\n\r\n").as_bytes()).await.expect("write");
    assert!(read_response(&mut idle).await.starts_with("HTTP/1.1 200"));

    // A token request whose headers and half of whose body have arrived. `Expect: 100-continue`
    // tells when the handler has started reading the body: the request is in flight for sure.
    let body = format!("grant_type=client_credentials&client_id={client_id}&client_secret={secret}");
    let (first_half, second_half) = body.split_at(body.len() / 2);
    let mut in_flight = TcpStream::connect(&bind).await.expect("connect");
    let head = format!(
        "POST /token HTTP/1.1\r\nHost: {bind}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: {}\r\nExpect: 100-continue\r\n\r\n",
        body.len()
    );
    in_flight.write_all(head.as_bytes()).await.expect("write headers");
    assert!(read_response(&mut in_flight).await.starts_with("HTTP/1.1 100"), "the handler reads the body");
    in_flight.write_all(first_half.as_bytes()).await.expect("write half the body");
    tokio::time::sleep(Duration::from_millis(100)).await;

    let signalled = Instant::now();
    serving.signal_term();

    // The listener closes at once: a new connection is refused while the request is still open.
    let mut refused = None;
    while signalled.elapsed() < Duration::from_secs(3) {
        match TcpStream::connect(&bind).await {
            Err(error) => {
                refused = Some((error.kind(), signalled.elapsed()));
                break;
            }
            Ok(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    let (kind, refused_after) = refused.expect("new connections are refused after SIGTERM");
    // A connection that raced the close sits in the kernel's backlog and is reset instead.
    assert!(
        matches!(kind, std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::ConnectionReset),
        "refused or reset, got {kind:?}"
    );
    // The idle connection is closed rather than kept for the grace period.
    let leftover = read_to_close(&mut idle, Duration::from_secs(3)).await;
    assert!(leftover.is_empty(), "nothing more on the idle connection: {leftover:?}");
    assert!(serving.child_running(), "still running: a request is in flight");

    // The rest of the body arrives after the signal: the answer is complete and correct.
    tokio::time::sleep(Duration::from_millis(200)).await;
    in_flight.write_all(second_half.as_bytes()).await.expect("write the rest of the body");
    let response = read_to_close(&mut in_flight, Duration::from_secs(10)).await;
    let answered_after = signalled.elapsed();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let token: Value = serde_json::from_str(body_of(&response)).expect("token JSON");
    assert_eq!(token["token_type"], "Bearer", "{token}");
    assert!(token["access_token"].as_str().is_some_and(|t| t.split('.').count() == 3), "{token}");
    assert!(response.to_ascii_lowercase().contains("connection: close"), "the connection ends with it: {response}");

    let code = serving.wait_exit();
    let exited_after = signalled.elapsed();
    assert_eq!(code, Some(0), "exit status after SIGTERM");
    // Well inside the 10 s grace period: nothing was left to wait for.
    assert!(exited_after < Duration::from_secs(5), "exited {exited_after:?} after SIGTERM");
    assert!(TcpStream::connect(&bind).await.is_err(), "nothing listens after exit");
    // The database was closed, not abandoned: SQLite merged its write-ahead log and removed it.
    assert!(cli.dir.path().join("oxidp.db").exists());
    assert!(!cli.dir.path().join("oxidp.db-wal").exists(), "the WAL is checkpointed at exit");
    println!(
        "SIGTERM: new connections refused after {refused_after:?}, in-flight answer after {answered_after:?}, \
         exit 0 after {exited_after:?}"
    );
}

/// Every line of a log, parsed; panics naming the first line that is not a JSON object.
fn json_lines(log: &str) -> Vec<Value> {
    log.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| match serde_json::from_str::<Value>(line) {
            Ok(value @ Value::Object(_)) => value,
            _ => panic!("not a JSON object: {line:?}"),
        })
        .collect()
}

fn request_id_of(line: &Value) -> Option<&str> {
    line["span"]["request_id"].as_str()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_carry_the_request_id_and_one_access_line_per_request() {
    let cli = Cli::new(Backend::Sqlite).await;
    let port = free_port();
    let (bind, issuer) = (format!("127.0.0.1:{port}"), format!("http://127.0.0.1:{port}"));
    let env = [
        ("OXIDP_BIND", bind.as_str()),
        ("OXIDP_ISSUER", issuer.as_str()),
        ("OXIDP_LOG_FORMAT", "json"),
        ("OXIDP_INTERNAL_SECRET", "the-internal-secret-of-this-test"),
        // The test talks to the server directly, so its own address is "the proxy".
        ("OXIDP_TRUSTED_PROXIES", "127.0.0.1/32"),
    ];
    let mut serving = Serving::start(&cli, &env, "serve.log");
    serving.wait_for_line("discovery");
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");

    // A query with a secret-looking value: the log gets the path only.
    let response = http
        .get(format!("{issuer}/authorize?client_id=nobody&state=query-secret-4711&code_challenge=abc"))
        .header("X-Request-Id", "ops-authorize-1")
        .send()
        .await
        .expect("authorize");
    assert_eq!(response.status(), 400);
    // A request that logs a warning of its own, from behind the (trusted) proxy.
    let response = http
        .post(format!("{issuer}/api/v1/internal/users/upsert-by-sub"))
        .header("X-Request-Id", "ops-internal-2")
        .header("X-Internal-Secret", "wrong-secret-0815")
        .header("X-Forwarded-For", "198.51.100.7, 203.0.113.5")
        .json(&serde_json::json!({ "sub": "s", "email": "e@example.com" }))
        .send()
        .await
        .expect("internal");
    assert_eq!(response.status(), 401);
    assert_eq!(response.headers()["x-request-id"], "ops-internal-2");
    // Without a request ID, the server makes one and logs it.
    let response = http.get(format!("{issuer}/healthz")).send().await.expect("healthz");
    let made = response.headers()["x-request-id"].to_str().expect("id").to_string();

    assert_eq!(serving.terminate(), Some(0));
    let log = std::fs::read_to_string(&serving.log).expect("log");
    let lines = json_lines(&log);
    assert!(lines.len() >= 6, "start, three requests, stop: {log}");
    for line in &lines {
        assert!(line["timestamp"].is_string() && line["level"].is_string(), "{line}");
        assert!(line["target"].as_str().is_some_and(|t| !t.is_empty()), "{line}");
        assert!(line["fields"]["message"].is_string(), "{line}");
    }
    assert!(!log.contains("query-secret-4711") && !log.contains("wrong-secret-0815"), "{log}");

    for (request_id, method, path, status) in [
        ("ops-authorize-1", "GET", "/authorize", 400),
        ("ops-internal-2", "POST", "/api/v1/internal/users/upsert-by-sub", 401),
        (made.as_str(), "GET", "/healthz", 200),
    ] {
        let of_request: Vec<&Value> = lines.iter().filter(|line| request_id_of(line) == Some(request_id)).collect();
        let access: Vec<&&Value> = of_request.iter().filter(|line| line["fields"]["message"] == "served").collect();
        assert_eq!(access.len(), 1, "one access line for {request_id}: {of_request:?}");
        let access = access[0];
        assert_eq!(access["level"], "INFO");
        assert_eq!(access["span"]["method"], method);
        assert_eq!(access["span"]["path"], path, "the path, without the query");
        assert_eq!(access["fields"]["status"], status);
        assert!(access["fields"]["elapsed_ms"].as_f64().is_some_and(|ms| ms >= 0.0), "{access}");
    }
    // The handler's own warning carries the request ID, and the client behind the proxy: the
    // right-most hop the proxy did not add.
    let warning = lines
        .iter()
        .find(|line| line["fields"]["message"] == "internal route called with a wrong secret")
        .unwrap_or_else(|| panic!("the wrong-secret warning: {log}"));
    assert_eq!(request_id_of(warning), Some("ops-internal-2"));
    assert_eq!(warning["level"], "WARN");
    assert_eq!(warning["target"], "oxidp::api::internal");
    assert_eq!(warning["fields"]["ip"], "203.0.113.5");
    // Lines outside any request (start, stop) have no request ID.
    assert!(lines.iter().any(|line| line["fields"]["message"] == "stopped" && request_id_of(line).is_none()));
}

/// Issue #12 item 7: an upstream's `error` text reaches a warning; in text logs its newline and
/// escape sequence are escaped, so the request cannot forge a line or colour the terminal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_logs_escape_control_characters_from_requests() {
    let cli = Cli::new(Backend::Sqlite).await;
    let port = free_port();
    let (bind, issuer) = (format!("127.0.0.1:{port}"), format!("http://127.0.0.1:{port}"));
    let env = [
        ("OXIDP_BIND", bind.as_str()),
        ("OXIDP_ISSUER", issuer.as_str()),
        ("OXIDP_LOG_FORMAT", "text"),
        ("OXIDP_UPSTREAM__GH__KIND", "github"),
        ("OXIDP_UPSTREAM__GH__CLIENT_ID", "gh-client"),
        ("OXIDP_UPSTREAM__GH__CLIENT_SECRET", "gh-secret"),
    ];
    let mut serving = Serving::start(&cli, &env, "serve.log");
    serving.wait_for_line("discovery");
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");

    // The attacker starts their own upstream login, then answers the callback themselves.
    let started = http.get(format!("{issuer}/login/gh")).send().await.expect("start");
    assert_eq!(started.status(), 302);
    let location = started.headers()["location"].to_str().expect("location").to_string();
    let state = url::Url::parse(&location)
        .expect("upstream URL")
        .query_pairs()
        .find(|(name, _)| name == "state")
        .map(|(_, value)| value.into_owned())
        .expect("state");
    let binding = started
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find_map(|value| value.strip_prefix("oxidp_federation=").and_then(|rest| rest.split(';').next()))
        .expect("binding cookie")
        .to_string();
    let forged = "x\n2026-12-02T00:00:00.000000Z ERROR oxidp: FORGED-LINE \u{1b}[2J";
    let callback = url::Url::parse_with_params(
        &format!("{issuer}/login/gh/callback"),
        &[("state", state.as_str()), ("error", forged)],
    )
    .expect("callback URL");
    let answered =
        http.get(callback).header("cookie", format!("oxidp_federation={binding}")).send().await.expect("callback");
    assert_eq!(answered.status(), 400);

    assert_eq!(serving.terminate(), Some(0));
    let log = std::fs::read_to_string(&serving.log).expect("log");
    assert!(log.contains("FORGED-LINE"), "the upstream's error text is logged: {log}");
    assert!(log.contains("\\x0a2026-12-02T00:00:00.000000Z ERROR oxidp: FORGED-LINE \\x1b[2J"), "escaped: {log}");
    for line in log.lines() {
        assert!(!line.starts_with("2026-12-02T00:00:00.000000Z"), "a forged line: {line}");
        assert!(!line.contains('\u{1b}') && !line.contains('\r'), "a raw control character: {line:?}");
    }
}
