//! `load report`: result files → a Markdown table (between markers in docs/PERFORMANCE.md and,
//! when it has the markers, the README) and an SVG bar chart. No tools beyond this binary.

use std::fmt::Write as _;
use std::path::PathBuf;

use clap::Args;
use serde_json::Value;

use crate::SCENARIOS;

pub const BEGIN: &str = "<!-- bench:begin -->";
pub const END: &str = "<!-- bench:end -->";

#[derive(Args)]
pub struct ReportArgs {
    /// oxidp on SQLite: `--json` files of the load generator (repeat; results are merged,
    /// the idle RSS is the first file's).
    #[arg(long, required = true)]
    sqlite: Vec<PathBuf>,
    /// oxidp on PostgreSQL.
    #[arg(long)]
    postgres: Vec<PathBuf>,
    /// The peer (panva/oidc-provider) under the same load.
    #[arg(long)]
    peer: Vec<PathBuf>,
    /// Peer name and version for the table.
    #[arg(long, default_value = "oidc-provider")]
    peer_name: String,
    /// `openssl speed rsa2048` single-core RSA-2048 signs per second, measured in the same run.
    #[arg(long)]
    rsa_sign: Option<f64>,
    /// `load sign-rates --json` output: oxidp's one-thread sign/verify rates per algorithm.
    #[arg(long)]
    signing: Option<PathBuf>,
    /// `openssl speed -multi 1` sign/s for ecdsap256 and ed25519, same run.
    #[arg(long)]
    openssl_es256: Option<f64>,
    #[arg(long)]
    openssl_eddsa: Option<f64>,
    /// One line describing the machine.
    #[arg(long, default_value = "")]
    machine: String,
    /// When the run happened.
    #[arg(long, default_value = "")]
    date: String,
    /// The command that produced it.
    #[arg(long, default_value = "scripts/bench/run.sh")]
    command: String,
    /// Markdown file whose text between the bench markers is replaced (created when missing).
    #[arg(long)]
    out: PathBuf,
    /// Also replace the text between the markers here, only if the file has them.
    #[arg(long)]
    readme: Option<PathBuf>,
    #[arg(long)]
    svg: Option<PathBuf>,
}

struct Run {
    label: String,
    data: Value,
}

impl Run {
    fn load(path: &PathBuf) -> Result<Run, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let data: Value = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        let label = data.get("label").and_then(Value::as_str).unwrap_or("?").to_string();
        Ok(Run { label, data })
    }

    /// Several runs of one server (one file per scenario) as one: results appended, the
    /// first file's idle RSS, the highest VmHWM.
    fn merge(paths: &[PathBuf]) -> Result<Option<Run>, String> {
        let mut merged: Option<Run> = None;
        for path in paths {
            let run = Run::load(path)?;
            match merged.as_mut() {
                None => merged = Some(run),
                Some(first) => {
                    let results = run.data.get("results").and_then(Value::as_array).cloned().unwrap_or_default();
                    if let Some(Value::Array(all)) = first.data.get_mut("results") {
                        all.extend(results);
                    }
                    let hwm = run.top("hwm_kb").unwrap_or(0.0).max(first.top("hwm_kb").unwrap_or(0.0));
                    first.data["hwm_kb"] = Value::from(hwm);
                }
            }
        }
        Ok(merged)
    }

    fn result(&self, scenario: &str) -> Option<&Value> {
        self.data
            .get("results")?
            .as_array()?
            .iter()
            .find(|r| r.get("scenario").and_then(Value::as_str) == Some(scenario) && r.get("failed").is_none())
    }

    fn num(&self, scenario: &str, field: &str) -> Option<f64> {
        self.result(scenario)?.get(field)?.as_f64()
    }

    fn top(&self, field: &str) -> Option<f64> {
        self.data.get(field)?.as_f64()
    }
}

/// (minimum ratio to the RSA limit, minimum ratio to the peer) per scenario, from the issue.
fn targets(scenario: &str) -> (Option<f64>, Option<f64>) {
    match scenario {
        "client_credentials" => (Some(1.0), Some(1.3)),
        "code_flow" => (Some(0.4), None),
        "introspection" => (None, Some(4.0)),
        "jwks" | "discovery" => (None, Some(3.0)),
        _ => (None, None),
    }
}

const P99_TARGET_MS: f64 = 10.0;
const IDLE_RSS_TARGET_MB: f64 = 40.0;
const LOAD_RSS_TARGET_MB: f64 = 150.0;

fn fmt_rate(value: Option<f64>) -> String {
    value.map(|v| format!("{v:.0}")).unwrap_or_else(|| "—".into())
}

fn fmt_ms(value: Option<f64>) -> String {
    value.map(|v| format!("{v:.2}")).unwrap_or_else(|| "—".into())
}

fn fmt_ratio(value: Option<f64>) -> String {
    value.map(|v| format!("{v:.2}×")).unwrap_or_else(|| "—".into())
}

fn table(run: &Run, peer: Option<&Run>, rsa: Option<f64>, peer_name: &str) -> (String, Vec<String>) {
    let mut out = String::new();
    let mut misses = Vec::new();
    let connections = run.top("connections").unwrap_or(0.0);
    out.push_str(&format!(
        "| scenario | oxidp ops/s | p50 ms | p99 ms | errors | peak RSS MB | {peer_name} ops/s | {peer_name} p99 ms | oxidp / peer | oxidp / RSA limit | target | met |\n"
    ));
    out.push_str("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |\n");
    for scenario in SCENARIOS {
        let ops = run.num(scenario, "ops_per_sec");
        let p99 = run.num(scenario, "p99_ms");
        let peer_ops = peer.and_then(|p| p.num(scenario, "ops_per_sec"));
        let to_peer = ops.zip(peer_ops).map(|(a, b)| a / b);
        let to_limit = ops.zip(rsa).map(|(a, b)| a / b);
        let (limit_target, peer_target) = targets(scenario);
        let mut target = Vec::new();
        let mut met = Vec::new();
        if let Some(t) = limit_target {
            target.push(format!("≥ {t}× limit"));
            match to_limit {
                Some(r) if r >= t => {}
                Some(r) => met.push(format!("limit {r:.2}×")),
                None => met.push("limit not measured".into()),
            }
        }
        if let Some(t) = peer_target {
            target.push(format!("≥ {t}× peer"));
            match to_peer {
                Some(r) if r >= t => {}
                Some(r) => met.push(format!("peer {r:.2}×")),
                None => met.push("peer not measured".into()),
            }
        }
        if connections == 16.0 {
            target.push(format!("p99 < {P99_TARGET_MS} ms"));
            match p99 {
                Some(p) if p < P99_TARGET_MS => {}
                Some(p) => met.push(format!("p99 {p:.1} ms")),
                None => met.push("no result".into()),
            }
        }
        let errors = run.num(scenario, "errors");
        if errors.is_some_and(|e| e > 0.0) {
            met.push("errors".into());
        }
        let verdict = if ops.is_none() {
            "failed".to_string()
        } else if met.is_empty() {
            "yes".to_string()
        } else {
            format!("**no** ({})", met.join(", "))
        };
        if ops.is_none() || !met.is_empty() {
            misses.push(format!("{} {scenario}: {verdict}", run.label));
        }
        let _ = writeln!(
            out,
            "| {scenario} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            fmt_rate(ops),
            fmt_ms(run.num(scenario, "p50_ms")),
            fmt_ms(p99),
            errors.map(|e| format!("{e:.0}")).unwrap_or_else(|| "—".into()),
            run.num(scenario, "rss_peak_kb").map(|k| format!("{:.1}", k / 1024.0)).unwrap_or_else(|| "—".into()),
            fmt_rate(peer_ops),
            fmt_ms(peer.and_then(|p| p.num(scenario, "p99_ms"))),
            fmt_ratio(to_peer),
            fmt_ratio(to_limit),
            if target.is_empty() { "—".into() } else { target.join(", ") },
            verdict,
        );
    }
    let idle = run.top("idle_rss_kb").map(|k| k / 1024.0);
    let peak = SCENARIOS
        .iter()
        .filter_map(|s| run.num(s, "rss_peak_kb"))
        .chain(run.top("hwm_kb"))
        .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))))
        .map(|k| k / 1024.0);
    let check = |value: Option<f64>, limit: f64| match value {
        Some(v) if v <= limit => "yes".to_string(),
        Some(_) => "**no**".to_string(),
        None => "not measured".to_string(),
    };
    let _ = writeln!(
        out,
        "\nServer RSS: idle {} MB (target ≤ {IDLE_RSS_TARGET_MB} MB: {}), peak under load (VmHWM) {} MB (target ≤ {LOAD_RSS_TARGET_MB} MB: {}).",
        idle.map(|v| format!("{v:.1}")).unwrap_or_else(|| "—".into()),
        check(idle, IDLE_RSS_TARGET_MB),
        peak.map(|v| format!("{v:.1}")).unwrap_or_else(|| "—".into()),
        check(peak, LOAD_RSS_TARGET_MB),
    );
    if !matches!(check(idle, IDLE_RSS_TARGET_MB).as_str(), "yes") {
        misses.push(format!("{} idle RSS", run.label));
    }
    if !matches!(check(peak, LOAD_RSS_TARGET_MB).as_str(), "yes") {
        misses.push(format!("{} RSS under load", run.label));
    }
    if let Some(peer) = peer {
        let _ = writeln!(
            out,
            "{peer_name} RSS: idle {} MB, peak {} MB.",
            peer.top("idle_rss_kb").map(|k| format!("{:.1}", k / 1024.0)).unwrap_or_else(|| "—".into()),
            peer.top("hwm_kb").map(|k| format!("{:.1}", k / 1024.0)).unwrap_or_else(|| "—".into()),
        );
    }
    (out, misses)
}

/// Operations per second of server CPU time: less sensitive than ops/s to what else the
/// machine runs, and comparable with `openssl speed`'s one-core rate.
fn efficiency(run: &Run, peer: Option<&Run>, rsa: Option<f64>, peer_name: &str) -> String {
    let mut out = String::from("| scenario | oxidp server cores | oxidp ops per core-s | load generator cores | ");
    let _ = writeln!(
        out,
        "{peer_name} cores | {peer_name} ops per core-s | oxidp / peer per core | oxidp per core / RSA limit |"
    );
    out.push_str("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
    let per_core = |run: &Run, scenario: &str| {
        let cores = run.num(scenario, "server_cores").filter(|c| *c > 0.0)?;
        Some(run.num(scenario, "ops_per_sec")? / cores)
    };
    let cores = |run: Option<&Run>, scenario: &str, field: &str| {
        run.and_then(|r| r.num(scenario, field)).map(|c| format!("{c:.2}")).unwrap_or_else(|| "—".into())
    };
    for scenario in SCENARIOS {
        let ours = per_core(run, scenario);
        let theirs = peer.and_then(|p| per_core(p, scenario));
        let _ = writeln!(
            out,
            "| {scenario} | {} | {} | {} | {} | {} | {} | {} |",
            cores(Some(run), scenario, "server_cores"),
            fmt_rate(ours),
            cores(Some(run), scenario, "loadgen_cores"),
            cores(peer, scenario, "server_cores"),
            fmt_rate(theirs),
            fmt_ratio(ours.zip(theirs).map(|(a, b)| a / b)),
            fmt_ratio(ours.zip(rsa).map(|(a, b)| a / b)),
        );
    }
    out
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// Horizontal bars on a log scale, one group per scenario, a dashed line at the RSA limit.
fn svg(runs: &[(&str, &Run, &str)], rsa: Option<f64>, title: &str) -> String {
    let left = 150.0;
    let width = 820.0;
    let plot = width - left - 90.0;
    let bar = 13.0;
    let group = bar * runs.len() as f64 + 12.0;
    let top = 48.0;
    let height = top + group * SCENARIOS.len() as f64 + 40.0;
    let values: Vec<f64> = runs
        .iter()
        .flat_map(|(_, run, _)| SCENARIOS.iter().filter_map(|s| run.num(s, "ops_per_sec")))
        .chain(rsa)
        .filter(|v| *v > 0.0)
        .collect();
    let max = values.iter().copied().fold(10.0_f64, f64::max);
    let min = values.iter().copied().fold(max, f64::min);
    let first = min.log10().floor().clamp(0.0, 6.0) as i32;
    let last = (max.log10().ceil() as i32).max(first + 1);
    let span = f64::from(last - first);
    let x = |value: f64| left + plot * ((value.max(1.0).log10() - f64::from(first)) / span).max(0.0);
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(out, r#"<text x="10" y="18" font-size="13" font-weight="bold">{}</text>"#, escape(title));
    let mut legend_x = left;
    for (name, _, color) in runs {
        let _ = writeln!(
            out,
            r#"<rect x="{legend_x}" y="28" width="10" height="10" fill="{color}"/><text x="{}" y="37">{}</text>"#,
            legend_x + 14.0,
            escape(name)
        );
        legend_x += 24.0 + 7.0 * name.len() as f64;
    }
    for decade in first..=last {
        let value = 10f64.powi(decade);
        let gx = x(value);
        let _ = writeln!(
            out,
            r##"<line x1="{gx:.1}" y1="{top}" x2="{gx:.1}" y2="{:.1}" stroke="#ddd"/><text x="{gx:.1}" y="{:.1}" text-anchor="middle" fill="#666">{}</text>"##,
            height - 30.0,
            height - 18.0,
            if value >= 1000.0 { format!("{}k", value / 1000.0) } else { format!("{value}") }
        );
    }
    for (index, scenario) in SCENARIOS.iter().enumerate() {
        let gy = top + group * index as f64;
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{scenario}</text>"#,
            left - 8.0,
            gy + group / 2.0
        );
        for (row, (_, run, color)) in runs.iter().enumerate() {
            let y = gy + bar * row as f64 + 4.0;
            match run.num(scenario, "ops_per_sec") {
                Some(value) => {
                    let w = (x(value) - left).max(1.0);
                    let _ = writeln!(
                        out,
                        r#"<rect x="{left}" y="{y:.1}" width="{w:.1}" height="{:.1}" fill="{color}"/><text x="{:.1}" y="{:.1}">{value:.0}/s</text>"#,
                        bar - 2.0,
                        left + w + 4.0,
                        y + bar - 3.5
                    );
                }
                None => {
                    let _ = writeln!(
                        out,
                        r##"<text x="{:.1}" y="{:.1}" fill="#999">n/a</text>"##,
                        left + 4.0,
                        y + bar - 3.5
                    );
                }
            }
        }
    }
    if let Some(rsa) = rsa {
        let lx = x(rsa);
        let _ = writeln!(
            out,
            r##"<line x1="{lx:.1}" y1="{:.1}" x2="{lx:.1}" y2="{:.1}" stroke="#c00" stroke-dasharray="4 3"/><text x="{lx:.1}" y="{:.1}" fill="#c00" text-anchor="middle">RSA-2048 sign/s, 1 core: {rsa:.0}</text>"##,
            top - 4.0,
            height - 30.0,
            height - 4.0
        );
    }
    out.push_str("</svg>\n");
    out
}

fn replace_between_markers(text: &str, body: &str) -> Option<String> {
    let start = text.find(BEGIN)?;
    let end = text[start..].find(END)? + start;
    Some(format!("{}{BEGIN}\n{body}{}", &text[..start], &text[end..]))
}

pub fn run(args: &ReportArgs) -> Result<(), String> {
    let sqlite = Run::merge(&args.sqlite)?.ok_or("no --sqlite results")?;
    let postgres = Run::merge(&args.postgres)?;
    let peer = Run::merge(&args.peer)?;
    let mut body = String::new();
    let _ = writeln!(body, "Latest run: {} on {}.\n", args.date, args.machine);
    let _ = writeln!(body, "Command: `{}`\n", args.command);
    let connections = sqlite.top("connections").unwrap_or(0.0);
    let duration = sqlite.top("duration").unwrap_or(0.0);
    let _ = writeln!(
        body,
        "Load: {connections:.0} keep-alive connections, {duration:.0} s measured per scenario after {:.0} s warm-up, load generator on the same machine. \
         One op is one request, except code_flow (GET /authorize with a session → 302 with code → POST /token with PKCE: two requests).",
        sqlite.top("warmup").unwrap_or(0.0)
    );
    match args.rsa_sign {
        Some(rsa) => {
            let _ = writeln!(
                body,
                "RSA limit: `openssl speed -seconds 3 -multi 1 rsa2048` = **{rsa:.0} sign/s** (one core, same run).\n"
            );
        }
        None => body.push_str("RSA limit: not measured in this run.\n\n"),
    }
    let mut misses = Vec::new();
    let mut sections = vec![("SQLite", &sqlite)];
    if let Some(postgres) = &postgres {
        sections.push(("PostgreSQL", postgres));
    }
    for (name, run) in &sections {
        let (text, miss) = table(run, peer.as_ref(), args.rsa_sign, &args.peer_name);
        let _ = writeln!(body, "#### oxidp on {name}\n\n{text}");
        let _ = writeln!(
            body,
            "CPU time per operation (from /proc/PID/stat over the measured seconds):\n\n{}",
            efficiency(run, peer.as_ref(), args.rsa_sign, &args.peer_name)
        );
        misses.extend(miss);
    }
    if let Some(path) = &args.signing {
        body.push_str(&signing_table(path, args)?);
    }
    if misses.is_empty() {
        body.push_str("All targets met.\n");
    } else {
        let _ = writeln!(body, "Targets missed: {}.", misses.join("; "));
    }
    if args.svg.is_some() {
        body.push_str("\n![requests per second, log scale](performance.svg)\n");
    }
    body.push('\n');

    let existing = std::fs::read_to_string(&args.out).unwrap_or_default();
    let text = replace_between_markers(&existing, &body)
        .unwrap_or_else(|| format!("# Performance\n\n{BEGIN}\n{body}{END}\n{existing}"));
    std::fs::write(&args.out, text).map_err(|e| format!("{}: {e}", args.out.display()))?;
    println!("wrote {}", args.out.display());
    let readme_text = args.readme.as_ref().and_then(|readme| std::fs::read_to_string(readme).ok());
    let readme_body = body.replace("(performance.svg)", "(docs/performance.svg)");
    if let (Some(readme), Some(text)) =
        (&args.readme, readme_text.as_deref().and_then(|text| replace_between_markers(text, &readme_body)))
    {
        std::fs::write(readme, text).map_err(|e| format!("{}: {e}", readme.display()))?;
        println!("updated {}", readme.display());
    }
    if let Some(path) = &args.svg {
        let mut runs = vec![("oxidp (SQLite)", &sqlite, "#1f6feb")];
        if let Some(postgres) = &postgres {
            runs.push(("oxidp (PostgreSQL)", postgres, "#8250df"));
        }
        if let Some(peer) = &peer {
            runs.push((args.peer_name.as_str(), peer, "#bf8700"));
        }
        let title = format!("operations/s, {connections:.0} connections, {} — {}", args.machine, args.date);
        std::fs::write(path, svg(&runs, args.rsa_sign, &title)).map_err(|e| format!("{}: {e}", path.display()))?;
        println!("wrote {}", path.display());
    }
    println!("\n{body}");
    Ok(())
}

/// Signing rates per algorithm: oxidp's key manager on one thread beside `openssl speed` on one core.
fn signing_table(path: &PathBuf, args: &ReportArgs) -> Result<String, String> {
    let run = Run::load(path)?;
    let mut text = String::from(
        "Signing algorithms (`load sign-rates`: oxidp's key manager signing a typical access token on one thread, \
         beside `openssl speed -multi 1` for the same algorithm):\n\n\
         | alg | oxidp sign/s | oxidp verify/s | openssl sign/s | oxidp / openssl | token bytes |\n\
         | --- | ---: | ---: | ---: | ---: | ---: |\n",
    );
    let empty = Vec::new();
    for rate in run.data["algorithms"].as_array().unwrap_or(&empty) {
        let alg = rate["alg"].as_str().unwrap_or("?");
        let sign = rate["sign_per_s"].as_f64();
        let limit = match alg {
            "RS256" => args.rsa_sign,
            "ES256" => args.openssl_es256,
            "EdDSA" => args.openssl_eddsa,
            _ => None,
        };
        let number = |value: Option<f64>| value.map_or("—".to_string(), |v| format!("{v:.0}"));
        let _ = writeln!(
            text,
            "| {alg} | {} | {} | {} | {} | {} |",
            number(sign),
            number(rate["verify_per_s"].as_f64()),
            number(limit),
            fmt_ratio(sign.zip(limit).map(|(a, b)| a / b)),
            number(rate["token_bytes"].as_f64()),
        );
    }
    text.push('\n');
    Ok(text)
}
