//! oxidp's load generator (issue #7): drives a running server over loopback for a fixed time
//! with N keep-alive connections and prints, per scenario, operations/s, p50/p99 latency and
//! the server's peak RSS. Not part of the server; `scripts/bench/run.sh` runs it end to end.
//!
//! ```sh
//! cargo bench --bench load -- --base http://127.0.0.1:8080 --pid $(pidof oxidp) \
//!     --client-id … --client-secret … --email … --password … --scenario all
//! cargo bench --bench load -- report --oxidp run.json --out docs/PERFORMANCE.md   # see report.rs
//! ```
//!
//! Without `--base` (as under `cargo test --all-targets`) it does nothing and exits 0.

// A failing test or a broken benchmark set-up should stop loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod http;
mod report;
mod signing;

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand};
use hyper::Method;
use serde_json::{Value, json};

use http::{Conn, Jar, basic_auth, form, path_of, pkce_pair, query_param, random_b64};

pub const SCENARIOS: [&str; 6] = ["client_credentials", "introspection", "jwks", "discovery", "code_flow", "refresh"];

#[derive(Parser)]
#[command(name = "load", about = "Load generator for oxidp (and OIDC peers)")]
struct Cli {
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Turn result files into the Markdown table and the SVG chart.
    Report(Box<report::ReportArgs>),
    /// Print a free loopback TCP port.
    FreePort,
    /// Sign and verify rates of oxidp's key manager, one thread, per algorithm (JSON to --json).
    SignRates {
        #[arg(long, default_value_t = 2.0)]
        seconds: f64,
        #[arg(long)]
        json: Option<PathBuf>,
    },
}

#[derive(Args, Clone)]
struct RunArgs {
    /// Server base URL, e.g. http://127.0.0.1:8080 (endpoints come from its discovery document).
    #[arg(long)]
    base: Option<String>,
    /// Measured seconds per scenario.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Unmeasured seconds of load before each scenario's measurement.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Concurrent keep-alive connections (one worker each).
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// Load generator threads (the generator shares the machine with the server).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// A scenario name, a comma-separated list, or `all`.
    #[arg(long, default_value = "all")]
    scenario: String,
    /// The server's process id, to sample its RSS (VmRSS, VmHWM) and CPU time from /proc.
    #[arg(long)]
    pid: Option<u32>,
    /// A confidential client allowed client_credentials, authorization_code and refresh_token.
    #[arg(long, default_value = "")]
    client_id: String,
    #[arg(long, default_value = "")]
    client_secret: String,
    /// A user for the code flow (logged in once per worker through the HTML form).
    #[arg(long, default_value = "")]
    email: String,
    #[arg(long, default_value = "")]
    password: String,
    #[arg(long, default_value = "http://127.0.0.1:9/cb")]
    redirect_uri: String,
    /// Scope of the code flow and refresh scenarios.
    #[arg(long, default_value = "openid profile email offline_access")]
    scope: String,
    /// Scope of client_credentials tokens.
    #[arg(long, default_value = "api")]
    cc_scope: String,
    /// RFC 8707 resource for client_credentials (and the introspected token).
    #[arg(long)]
    resource: Option<String>,
    /// RFC 8707 resource sent in the code flow and refresh requests.
    #[arg(long)]
    flow_resource: Option<String>,
    /// Introspect a token obtained without `resource` (a peer that refuses to introspect JWTs).
    #[arg(long)]
    introspect_opaque: bool,
    /// Name written into the results.
    #[arg(long, default_value = "oxidp")]
    label: String,
    /// Write the results as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Report(args)) => match report::run(&args) {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("report: {error}");
                std::process::ExitCode::FAILURE
            }
        },
        Some(Command::FreePort) => match std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()) {
            Ok(addr) => {
                println!("{}", addr.port());
                std::process::ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("free-port: {error}");
                std::process::ExitCode::FAILURE
            }
        },
        Some(Command::SignRates { seconds, json }) => {
            let written = signing::run(seconds).and_then(|rates| match json {
                Some(path) => std::fs::write(&path, rates.to_string()).map_err(|e| format!("{}: {e}", path.display())),
                None => Ok(()),
            });
            match written {
                Ok(()) => std::process::ExitCode::SUCCESS,
                Err(error) => {
                    eprintln!("sign-rates: {error}");
                    std::process::ExitCode::FAILURE
                }
            }
        }
        None if cli.run.base.is_none() => {
            println!("load: no --base given, nothing to do (scripts/bench/run.sh runs the benchmark)");
            std::process::ExitCode::SUCCESS
        }
        None => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(cli.run.threads.max(1))
                .enable_all()
                .build()
                .expect("tokio runtime");
            match runtime.block_on(run(cli.run)) {
                Ok(()) => std::process::ExitCode::SUCCESS,
                Err(error) => {
                    eprintln!("load: {error}");
                    std::process::ExitCode::FAILURE
                }
            }
        }
    }
}

/// What every worker shares: the target and the endpoints from discovery.
struct Target {
    args: RunArgs,
    addr: SocketAddr,
    host: String,
    token_path: String,
    introspection_path: Option<String>,
    jwks_path: String,
    authorize_path: String,
    basic: String,
}

impl Target {
    fn conn(&self) -> Conn {
        Conn::new(self.addr, self.host.clone())
    }
}

async fn discover(args: RunArgs) -> Result<Target, String> {
    let base = args.base.clone().unwrap_or_default();
    let authority = base.split_once("://").map(|(_, rest)| rest).unwrap_or(&base).trim_end_matches('/').to_string();
    let authority = authority.split('/').next().unwrap_or_default().to_string();
    let addr = authority
        .to_socket_addrs()
        .map_err(|e| format!("--base {base}: {e}"))?
        .next()
        .ok_or_else(|| format!("--base {base}: no address"))?;
    let mut conn = Conn::new(addr, authority.clone());
    let response = conn.send(Method::GET, "/.well-known/openid-configuration", None, None, None).await?;
    if response.status != 200 {
        return Err(format!("discovery: {}", response.describe()));
    }
    let document = response.json()?;
    let endpoint = |name: &str| document.get(name).and_then(Value::as_str).map(path_of);
    Ok(Target {
        basic: basic_auth(&args.client_id, &args.client_secret),
        token_path: endpoint("token_endpoint").ok_or("discovery has no token_endpoint")?,
        introspection_path: endpoint("introspection_endpoint"),
        jwks_path: endpoint("jwks_uri").ok_or("discovery has no jwks_uri")?,
        authorize_path: endpoint("authorization_endpoint").ok_or("discovery has no authorization_endpoint")?,
        args,
        addr,
        host: authority,
    })
}

/// One worker's state for a scenario.
struct Worker {
    target: Arc<Target>,
    conn: Conn,
    jar: Jar,
    token: String,
    /// HTTP requests sent (the code flow sends two per operation).
    requests: u64,
}

impl Worker {
    fn new(target: Arc<Target>) -> Worker {
        let conn = target.conn();
        Worker { target, conn, jar: Jar::default(), token: String::new(), requests: 0 }
    }

    async fn send(
        &mut self,
        method: Method,
        path: &str,
        basic: bool,
        body: Option<String>,
    ) -> Result<http::Response, String> {
        self.requests += 1;
        let auth = if basic { Some(self.target.basic.clone()) } else { None };
        let cookies = self.jar.header();
        let response = self.conn.send(method, path, auth.as_deref(), Some(&cookies), body).await?;
        self.jar.absorb(&response);
        Ok(response)
    }

    async fn client_credentials(&mut self, resource: Option<&str>) -> Result<(), String> {
        let target = self.target.clone();
        let mut pairs = vec![("grant_type", "client_credentials"), ("scope", target.args.cc_scope.as_str())];
        if let Some(resource) = resource {
            pairs.push(("resource", resource));
        }
        let response = self.send(Method::POST, &target.token_path, true, Some(form(&pairs))).await?;
        if response.status != 200 {
            return Err(response.describe());
        }
        Ok(())
    }

    /// GET the authorization endpoint and follow the server's redirects, submitting a login
    /// form once if one is shown, until it redirects to the client with a code.
    async fn authorize(&mut self, challenge: &str, allow_login: bool) -> Result<String, String> {
        let target = self.target.clone();
        let args = &target.args;
        let state = random_b64(12);
        let nonce = random_b64(12);
        let mut pairs = vec![
            ("response_type", "code"),
            ("client_id", args.client_id.as_str()),
            ("redirect_uri", args.redirect_uri.as_str()),
            ("scope", args.scope.as_str()),
            ("state", state.as_str()),
            ("nonce", nonce.as_str()),
            ("code_challenge", challenge),
            ("code_challenge_method", "S256"),
        ];
        if let Some(resource) = args.flow_resource.as_deref() {
            pairs.push(("resource", resource));
        }
        let mut path = format!("{}?{}", target.authorize_path, form(&pairs));
        let mut method = Method::GET;
        let mut body = None;
        let mut logged_in = false;
        for _ in 0..12 {
            let response = self.send(method.clone(), &path, false, body.take()).await?;
            if (300..400).contains(&response.status) {
                let location = response.location.clone().ok_or("redirect without Location")?;
                if location.starts_with(&args.redirect_uri) {
                    if query_param(&location, "state").as_deref() != Some(state.as_str()) {
                        return Err(format!("state mismatch in {location}"));
                    }
                    return query_param(&location, "code").ok_or_else(|| format!("no code: {location}"));
                }
                if !allow_login {
                    return Err(format!("expected a code, got a redirect to {location}"));
                }
                path = path_of(&location);
                method = Method::GET;
                continue;
            }
            let html = String::from_utf8_lossy(&response.body).to_string();
            let login_form = http::parse_form(&html).filter(|f| f.inputs.iter().any(|(name, _)| name == "password"));
            match login_form {
                Some(login_form) if allow_login && response.status == 200 && !logged_in => {
                    let fields: Vec<(String, String)> = login_form
                        .inputs
                        .into_iter()
                        .map(|(name, value)| match name.as_str() {
                            "email" | "login" | "username" => (name, args.email.clone()),
                            "password" => (name, args.password.clone()),
                            _ => (name, value),
                        })
                        .collect();
                    let refs: Vec<(&str, &str)> = fields.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
                    path = if login_form.action.is_empty() { path_of(&path) } else { path_of(&login_form.action) };
                    method = Method::POST;
                    body = Some(form(&refs));
                    logged_in = true;
                }
                _ => return Err(format!("authorization stopped at {path}: {}", response.describe())),
            }
        }
        Err("too many redirects".into())
    }

    async fn code_flow(&mut self, allow_login: bool) -> Result<Value, String> {
        let (verifier, challenge) = pkce_pair();
        let code = self.authorize(&challenge, allow_login).await?;
        let target = self.target.clone();
        let args = &target.args;
        let mut pairs = vec![
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", args.redirect_uri.as_str()),
            ("code_verifier", verifier.as_str()),
        ];
        if let Some(resource) = args.flow_resource.as_deref() {
            pairs.push(("resource", resource));
        }
        let response = self.send(Method::POST, &target.token_path, true, Some(form(&pairs))).await?;
        if response.status != 200 {
            return Err(format!("token: {}", response.describe()));
        }
        response.json()
    }

    async fn refresh(&mut self) -> Result<(), String> {
        let target = self.target.clone();
        let mut pairs = vec![("grant_type", "refresh_token"), ("refresh_token", self.token.as_str())];
        if let Some(resource) = target.args.flow_resource.as_deref() {
            pairs.push(("resource", resource));
        }
        let body = form(&pairs);
        let response = self.send(Method::POST, &target.token_path, true, Some(body)).await?;
        if response.status != 200 {
            return Err(format!("refresh: {}", response.describe()));
        }
        let next = response.json()?.get("refresh_token").and_then(Value::as_str).map(str::to_string);
        match next {
            Some(next) => {
                self.token = next;
                Ok(())
            }
            None => Err("refresh response without refresh_token".into()),
        }
    }

    async fn acquire_refresh_token(&mut self) -> Result<(), String> {
        let tokens = self.code_flow(true).await?;
        self.token = tokens
            .get("refresh_token")
            .and_then(Value::as_str)
            .ok_or("the code flow returned no refresh_token (offline_access?)")?
            .to_string();
        Ok(())
    }

    /// Prepares the worker for a scenario (not measured).
    async fn setup(&mut self, scenario: &str, shared_token: &str) -> Result<(), String> {
        match scenario {
            "code_flow" => self.code_flow(true).await.map(|_| ()),
            "refresh" => self.acquire_refresh_token().await,
            "introspection" => {
                self.token = shared_token.to_string();
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// One measured operation.
    async fn step(&mut self, scenario: &str) -> Result<(), String> {
        let target = self.target.clone();
        match scenario {
            "client_credentials" => self.client_credentials(target.args.resource.as_deref()).await,
            "introspection" => {
                let path = target.introspection_path.as_deref().ok_or("no introspection_endpoint")?;
                let body = form(&[("token", self.token.as_str()), ("token_type_hint", "access_token")]);
                let response = self.send(Method::POST, path, true, Some(body)).await?;
                if response.status != 200 || !response.body.starts_with(b"{") {
                    return Err(response.describe());
                }
                Ok(())
            }
            "jwks" => {
                let response = self.send(Method::GET, &target.jwks_path, false, None).await?;
                if response.ok() { Ok(()) } else { Err(response.describe()) }
            }
            "discovery" => {
                let response = self.send(Method::GET, "/.well-known/openid-configuration", false, None).await?;
                if response.ok() { Ok(()) } else { Err(response.describe()) }
            }
            "code_flow" => self.code_flow(false).await.map(|_| ()),
            "refresh" => match self.refresh().await {
                Ok(()) => Ok(()),
                Err(error) => {
                    // A lost rotation: start a new family so the worker goes on (counted as an error).
                    let _ = self.acquire_refresh_token().await;
                    Err(error)
                }
            },
            other => Err(format!("unknown scenario {other}")),
        }
    }
}

/// A token to introspect, checked to be active once before the load starts.
async fn introspection_token(target: &Arc<Target>) -> Result<String, String> {
    let mut worker = Worker::new(target.clone());
    let resource = if target.args.introspect_opaque { None } else { target.args.resource.as_deref() };
    let args = &target.args;
    let mut pairs = vec![("grant_type", "client_credentials"), ("scope", args.cc_scope.as_str())];
    if let Some(resource) = resource {
        pairs.push(("resource", resource));
    }
    let response = worker.send(Method::POST, &target.token_path, true, Some(form(&pairs))).await?;
    if response.status != 200 {
        return Err(format!("client_credentials: {}", response.describe()));
    }
    let token = response.json()?.get("access_token").and_then(Value::as_str).ok_or("no access_token")?.to_string();
    let path = target.introspection_path.as_deref().ok_or("no introspection_endpoint in discovery")?;
    let body = form(&[("token", token.as_str()), ("token_type_hint", "access_token")]);
    let answer = worker.send(Method::POST, path, true, Some(body)).await?;
    if answer.json()?.get("active") != Some(&Value::Bool(true)) {
        return Err(format!("introspection of a fresh token is not active: {}", answer.describe()));
    }
    Ok(token)
}

/// Process memory and CPU time from /proc (Linux).
#[derive(Clone, Copy, Default)]
struct ProcSample {
    rss_kb: u64,
    hwm_kb: u64,
    cpu_ticks: u64,
}

fn proc_sample(pid: &str) -> Option<ProcSample> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may contain spaces): utime is the 14th field overall.
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    Some(ProcSample { rss_kb: field("VmRSS:"), hwm_kb: field("VmHWM:"), cpu_ticks: ticks(11) + ticks(12) })
}

const TICKS_PER_SECOND: f64 = 100.0;

struct Outcome {
    latencies_us: Vec<u32>,
    errors: u64,
    first_error: Option<String>,
    requests: u64,
    reconnects: u64,
}

async fn measure(target: &Arc<Target>, scenario: &'static str) -> Result<Value, String> {
    let args = &target.args;
    let shared_token = if scenario == "introspection" { introspection_token(target).await? } else { String::new() };
    // One worker after another: the workers sign in as the same user, and concurrent password
    // attempts on one account are throttled (a login wait answers 429), as they should be.
    let mut workers = Vec::new();
    for _ in 0..args.connections {
        let mut worker = Worker::new(target.clone());
        worker.setup(scenario, &shared_token).await.map_err(|e| format!("{scenario} setup: {e}"))?;
        workers.push(worker);
    }

    let pid = args.pid.map(|p| p.to_string());
    let warmup = Duration::from_secs_f64(args.warmup.max(0.0));
    let duration = Duration::from_secs_f64(args.duration.max(0.1));
    let begin = Instant::now() + Duration::from_millis(20);
    let measure_from = begin + warmup;
    let deadline = measure_from + duration;

    let mut tasks = Vec::new();
    for mut worker in workers {
        worker.requests = 0;
        let connects_before = worker.conn.connects;
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep_until(begin.into()).await;
            let mut outcome = Outcome {
                latencies_us: Vec::with_capacity(1 << 14),
                errors: 0,
                first_error: None,
                requests: 0,
                reconnects: 0,
            };
            let mut requests_at_start = 0;
            let mut measuring = false;
            loop {
                let started = Instant::now();
                if started >= deadline {
                    break;
                }
                if !measuring && started >= measure_from {
                    measuring = true;
                    requests_at_start = worker.requests;
                }
                let result = worker.step(scenario).await;
                if !measuring {
                    continue;
                }
                match result {
                    Ok(()) => outcome.latencies_us.push(started.elapsed().as_micros().min(u32::MAX as u128) as u32),
                    Err(error) => {
                        outcome.errors += 1;
                        outcome.first_error.get_or_insert(error);
                    }
                }
            }
            outcome.requests = worker.requests - requests_at_start;
            outcome.reconnects = worker.conn.connects - connects_before;
            outcome
        }));
    }

    // Sample the server's RSS while the load runs.
    let sampler = pid.clone().map(|pid| {
        tokio::spawn(async move {
            let mut peak = 0;
            let mut cpu_at_start = None;
            let mut cpu_at_end = 0;
            loop {
                let now = Instant::now();
                if now >= deadline {
                    break;
                }
                if let Some(sample) = proc_sample(&pid) {
                    peak = peak.max(sample.rss_kb);
                    if now >= measure_from && cpu_at_start.is_none() {
                        cpu_at_start = Some(sample.cpu_ticks);
                    }
                    cpu_at_end = sample.cpu_ticks;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            (peak, cpu_at_end.saturating_sub(cpu_at_start.unwrap_or(cpu_at_end)))
        })
    });
    let self_pid = std::process::id().to_string();
    tokio::time::sleep_until(measure_from.into()).await;
    let self_cpu_start = proc_sample(&self_pid).map(|s| s.cpu_ticks).unwrap_or(0);

    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.map_err(|e| e.to_string())?);
    }
    let elapsed = Instant::now().saturating_duration_since(measure_from).as_secs_f64().max(duration.as_secs_f64());
    let self_cpu = proc_sample(&self_pid).map(|s| s.cpu_ticks).unwrap_or(0).saturating_sub(self_cpu_start);
    let (rss_peak_kb, server_cpu_ticks) = match sampler {
        Some(sampler) => sampler.await.map_err(|e| e.to_string())?,
        None => (0, 0),
    };
    let hwm_kb = pid.as_deref().and_then(proc_sample).map(|s| s.hwm_kb).unwrap_or(0);

    let mut latencies: Vec<u32> = outcomes.iter().flat_map(|o| o.latencies_us.iter().copied()).collect();
    latencies.sort_unstable();
    let errors: u64 = outcomes.iter().map(|o| o.errors).sum();
    let requests: u64 = outcomes.iter().map(|o| o.requests).sum();
    let reconnects: u64 = outcomes.iter().map(|o| o.reconnects).sum();
    let first_error = outcomes.iter().find_map(|o| o.first_error.clone());
    let ops = latencies.len() as u64;
    let ms = |us: u32| f64::from(us) / 1000.0;
    Ok(json!({
        "scenario": scenario,
        "ops": ops,
        "errors": errors,
        "first_error": first_error,
        "requests": requests,
        "reconnects": reconnects,
        "seconds": elapsed,
        "ops_per_sec": ops as f64 / elapsed,
        "requests_per_sec": requests as f64 / elapsed,
        "p50_ms": ms(percentile(&latencies, 50.0)),
        "p90_ms": ms(percentile(&latencies, 90.0)),
        "p99_ms": ms(percentile(&latencies, 99.0)),
        "max_ms": ms(latencies.last().copied().unwrap_or(0)),
        "rss_peak_kb": rss_peak_kb,
        "hwm_kb": hwm_kb,
        "server_cores": server_cpu_ticks as f64 / TICKS_PER_SECOND / elapsed,
        "loadgen_cores": self_cpu as f64 / TICKS_PER_SECOND / elapsed,
    }))
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn selected(spec: &str) -> Result<Vec<&'static str>, String> {
    if spec == "all" {
        return Ok(SCENARIOS.to_vec());
    }
    spec.split(',')
        .map(|name| {
            SCENARIOS
                .iter()
                .copied()
                .find(|s| *s == name.trim())
                .ok_or_else(|| format!("unknown scenario '{name}' (one of {}, or all)", SCENARIOS.join(", ")))
        })
        .collect()
}

async fn run(args: RunArgs) -> Result<(), String> {
    let scenarios = selected(&args.scenario)?;
    let target = Arc::new(discover(args.clone()).await?);
    let idle = args.pid.and_then(|pid| proc_sample(&pid.to_string()));
    println!(
        "{}: {} connections, {} s (+{} s warm-up) per scenario, server RSS before load {}",
        args.label,
        args.connections,
        args.duration,
        args.warmup,
        idle.map(|s| format!("{:.1} MB", s.rss_kb as f64 / 1024.0)).unwrap_or_else(|| "n/a".into())
    );
    println!(
        "{:<20} {:>10} {:>10} {:>8} {:>8} {:>8} {:>7} {:>9} {:>7} {:>7}",
        "scenario", "ops/s", "req/s", "p50 ms", "p99 ms", "max ms", "errors", "RSS MB", "srv cpu", "gen cpu"
    );
    let mut results = Vec::new();
    for scenario in scenarios {
        let result = match measure(&target, scenario).await {
            Ok(result) => result,
            Err(error) => {
                println!("{scenario:<20} failed: {error}");
                json!({ "scenario": scenario, "failed": error })
            }
        };
        if result.get("failed").is_none() {
            let f = |name: &str| result.get(name).and_then(Value::as_f64).unwrap_or(0.0);
            println!(
                "{:<20} {:>10.0} {:>10.0} {:>8.2} {:>8.2} {:>8.1} {:>7} {:>9.1} {:>7.2} {:>7.2}",
                scenario,
                f("ops_per_sec"),
                f("requests_per_sec"),
                f("p50_ms"),
                f("p99_ms"),
                f("max_ms"),
                f("errors"),
                f("rss_peak_kb") / 1024.0,
                f("server_cores"),
                f("loadgen_cores"),
            );
            if let Some(error) = result.get("first_error").and_then(Value::as_str) {
                println!("    first error: {error}");
            }
        }
        results.push(result);
    }
    let after = args.pid.and_then(|pid| proc_sample(&pid.to_string()));
    let output = json!({
        "label": args.label,
        "base": args.base,
        "connections": args.connections,
        "duration": args.duration,
        "warmup": args.warmup,
        "threads": args.threads,
        "idle_rss_kb": idle.map(|s| s.rss_kb),
        "rss_after_kb": after.map(|s| s.rss_kb),
        "hwm_kb": after.map(|s| s.hwm_kb),
        "results": results,
    });
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&output).unwrap_or_default())
            .map_err(|e| format!("--json {}: {e}", path.display()))?;
    }
    Ok(())
}
