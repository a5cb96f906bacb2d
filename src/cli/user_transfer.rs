//! `oxidp user import FILE` and `oxidp user export`.

use std::io::{BufRead, IsTerminal, Write};

use clap::Args;
use serde_json::{Value, json};

use super::CliError;
use crate::admin::user_import::{ImportOptions, PersonRecord, import, record_from_csv};
use crate::audit::Initiator;
use crate::state::AppState;

#[derive(Args)]
pub struct ImportArgs {
    /// JSON Lines (`.jsonl`, `.json`) or CSV with a header (`.csv`; lists separated by `;`).
    pub file: std::path::PathBuf,
    /// Check every line and report, writing nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Also replace passwords the person changed since the last import.
    #[arg(long)]
    pub overwrite: bool,
}

#[derive(Args)]
pub struct ExportArgs {
    /// `jsonl` (default) or `csv`.
    #[arg(long, default_value = "jsonl")]
    pub format: String,
    /// Include password hashes (second-factor secrets are never exported).
    #[arg(long)]
    pub include_password_hashes: bool,
}

/// Each line's number and what it holds (or why it holds no person).
type Lines = Vec<(usize, Result<PersonRecord, String>)>;

fn read_lines(path: &std::path::Path) -> Result<Lines, CliError> {
    let file = std::fs::File::open(path).map_err(|e| CliError::Invalid(format!("FILE: {}: {e}", path.display())))?;
    let is_csv = path.extension().is_some_and(|ext| ext.eq_ignore_ascii_case("csv"));
    if is_csv {
        let mut reader = csv::ReaderBuilder::new().flexible(false).from_reader(file);
        let header = reader.headers().map_err(|e| CliError::Invalid(format!("FILE: the CSV header: {e}")))?.clone();
        let mut lines = Vec::new();
        for (index, row) in reader.records().enumerate() {
            let number = row.as_ref().ok().and_then(|r| r.position()).map_or(index + 2, |p| p.line() as usize);
            lines.push((number, row.map_err(|e| e.to_string()).and_then(|row| record_from_csv(&header, &row))));
        }
        return Ok(lines);
    }
    let mut lines = Vec::new();
    for (index, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| CliError::Failed(format!("reading {}: {e}", path.display())))?;
        if line.trim().is_empty() {
            continue;
        }
        let parsed = serde_json::from_str::<PersonRecord>(&line).map_err(|e| format!("not a valid person: {e}"));
        lines.push((index + 1, parsed));
    }
    Ok(lines)
}

/// Imports; prints the summary as JSON on stdout and each rejected line on stderr. Exit 1 when
/// any line was rejected (the others are in).
pub async fn run_import(state: &AppState, args: ImportArgs) -> Result<Value, CliError> {
    let lines = read_lines(&args.file)?;
    let total = lines.len();
    let terminal = std::io::stderr().is_terminal();
    let bar = terminal.then(|| indicatif::ProgressBar::new(total as u64));
    let mut done = 0usize;
    let progress = |_: usize| {
        done += 1;
        match &bar {
            Some(bar) => bar.set_position(done as u64),
            None if done.is_multiple_of(10_000) => eprintln!("imported {done} of {total} lines"),
            None => {}
        }
    };
    let options = ImportOptions { dry_run: args.dry_run, overwrite: args.overwrite };
    let report = import(state, &Initiator::cli(), lines, options, progress)
        .await
        .map_err(|e| CliError::Failed(format!("import stopped: {e}")))?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    for rejected in &report.rejected {
        eprintln!("{rejected}");
    }
    let summary = json!({
        "lines": total, "created": report.created, "updated": report.updated,
        "rejected": report.rejected.len(), "password_hashes": report.hashes, "dry_run": args.dry_run,
    });
    if report.rejected.is_empty() {
        Ok(summary)
    } else {
        println!("{summary}");
        Err(CliError::Failed(format!("{} line(s) rejected", report.rejected.len())))
    }
}

/// Writes every person to stdout; returns nothing to print after.
pub async fn run_export(state: &AppState, args: ExportArgs) -> Result<(), CliError> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let csv = match args.format.as_str() {
        "jsonl" => false,
        "csv" => true,
        other => return Err(CliError::Invalid(format!("--format: '{other}' is not jsonl or csv"))),
    };
    const COLUMNS: [&str; 8] =
        ["email", "name", "email_verified", "password_hash", "roles", "external_id", "identities", "status"];
    if csv {
        writeln!(out, "{}", COLUMNS.join(",")).map_err(|e| CliError::Failed(e.to_string()))?;
    }
    let write = |person: Value| -> std::io::Result<()> {
        if !csv {
            return writeln!(out, "{person}");
        }
        let text = |name: &str| match &person[name] {
            Value::Null => String::new(),
            Value::String(s) => s.clone(),
            Value::Array(items) => items
                .iter()
                .map(|item| match item {
                    Value::Object(i) => format!(
                        "{}:{}",
                        i.get("provider").and_then(Value::as_str).unwrap_or_default(),
                        i.get("subject").and_then(Value::as_str).unwrap_or_default()
                    ),
                    other => other.as_str().map(str::to_string).unwrap_or_else(|| other.to_string()),
                })
                .collect::<Vec<_>>()
                .join(";"),
            other => other.to_string(),
        };
        let fields: Vec<String> = COLUMNS.iter().map(|name| csv_field(&text(name))).collect();
        writeln!(out, "{}", fields.join(","))
    };
    crate::admin::user_export::export(state, args.include_password_hashes, write)
        .await
        .map_err(|e| CliError::Failed(e.to_string()))?;
    Ok(())
}

fn csv_field(value: &str) -> String {
    if value.contains([',', '"', '\n', '\r']) { format!("\"{}\"", value.replace('"', "\"\"")) } else { value.into() }
}
