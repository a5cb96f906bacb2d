//! Kubernetes service links (issue #19): a Service named `oxidp` or `oxidp-<x>` makes the
//! kubelet put `OXIDP_SERVICE_HOST`, `OXIDP_PORT=tcp://…` and the like into every pod of its
//! namespace. The binary ignores exactly those (name and value), and still refuses typos.

use std::time::Duration;

use crate::cli::{Cli, Serving, free_port};
use crate::common::*;

/// What the kubelet sets for Service `oxidp` (cluster IP 10.96.0.20, port 80 named `http`, as
/// in deploy/k8s/service.yaml) and Service `oxidp-metrics` (10.96.0.21, port 9100 named `metrics`).
const SERVICE_LINKS: [(&str, &str); 16] = [
    ("OXIDP_SERVICE_HOST", "10.96.0.20"),
    ("OXIDP_SERVICE_PORT", "80"),
    ("OXIDP_SERVICE_PORT_HTTP", "80"),
    ("OXIDP_PORT", "tcp://10.96.0.20:80"),
    ("OXIDP_PORT_80_TCP", "tcp://10.96.0.20:80"),
    ("OXIDP_PORT_80_TCP_PROTO", "tcp"),
    ("OXIDP_PORT_80_TCP_PORT", "80"),
    ("OXIDP_PORT_80_TCP_ADDR", "10.96.0.20"),
    ("OXIDP_METRICS_SERVICE_HOST", "10.96.0.21"),
    ("OXIDP_METRICS_SERVICE_PORT", "9100"),
    ("OXIDP_METRICS_SERVICE_PORT_METRICS", "9100"),
    ("OXIDP_METRICS_PORT", "tcp://10.96.0.21:9100"),
    ("OXIDP_METRICS_PORT_9100_TCP", "tcp://10.96.0.21:9100"),
    ("OXIDP_METRICS_PORT_9100_TCP_PROTO", "tcp"),
    ("OXIDP_METRICS_PORT_9100_TCP_PORT", "9100"),
    ("OXIDP_METRICS_PORT_9100_TCP_ADDR", "10.96.0.21"),
];

fn with_links<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    SERVICE_LINKS.iter().copied().chain(extra.iter().copied()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_starts_with_kubernetes_service_links_and_still_refuses_typos() {
    let cli = Cli::new(Backend::Sqlite).await;

    // A command: accepted, and each ignored variable gets a debug line (its name, not its value).
    let run = cli.run_with(&["migrate"], &with_links(&[("OXIDP_LOG", "debug")]));
    assert_eq!(run.code, Some(0), "migrate with service links: {}", run.stderr);
    let ignored: Vec<&str> =
        run.stderr.lines().filter(|line| line.contains("ignored a Kubernetes service-link variable")).collect();
    for (name, _) in SERVICE_LINKS {
        assert!(ignored.iter().any(|line| line.ends_with(&format!(" name={name}"))), "{name}: {ignored:#?}");
    }
    assert_eq!(ignored.len(), SERVICE_LINKS.len(), "{ignored:#?}");
    assert!(!ignored.iter().any(|line| line.contains("10.96.0.")), "values are not logged: {ignored:#?}");

    // The server: starts, answers its probes, stops cleanly.
    let port = free_port();
    let bind = format!("127.0.0.1:{port}");
    let issuer = format!("http://127.0.0.1:{port}");
    let env = with_links(&[("OXIDP_BIND", bind.as_str()), ("OXIDP_ISSUER", issuer.as_str())]);
    let mut serving = Serving::start(&cli, &env, "serve.log");
    serving.wait_for_line("discovery");
    let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().expect("client");
    for path in ["/healthz", "/readyz"] {
        let status = http.get(format!("{issuer}{path}")).send().await.expect(path).status();
        assert_eq!(status, 200, "{path}");
    }
    assert_eq!(serving.terminate(), Some(0));

    // The same names with values the kubelet never writes are mistakes, refused with exit 2.
    for (name, value) in [
        ("OXIDP_PORT", "8080"),
        ("OXIDP_SERVICE_HOST", "oxidp.default.svc"),
        ("OXIDP_PORT_80_TCP_PORT", "81"),
        ("OXIDP_METRICS_SERVICE_PORT", "metrics"),
    ] {
        let env: Vec<(&str, &str)> =
            SERVICE_LINKS.iter().copied().filter(|(link, _)| *link != name).chain([(name, value)]).collect();
        cli.invalid_with(&["migrate"], &env, &[&format!("{name}: unknown field")]);
    }
}
