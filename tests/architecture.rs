//! The layering rule of the README's "Design" section, checked on the source text: the core
//! (everything outside the outer layer) never names the outer layer, and the two halves of the
//! outer layer that face the network (`http/`, the pages and protocol endpoints, and `api/`,
//! the JSON API) never name each other. Route assembly (`server/`) may name both.
//!
//! Paths are found in `use` statements and inline alike (`crate::http::x`, `use crate::{api,
//! ..}`, `super::super::cli`), with comments and string literals left out.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The outer layer: poem, clap and the process; everything else is the core.
const OUTER: [&str; 6] = ["http", "api", "web", "cli", "server", "main"];

/// What a module may not name, by the top-level module it sits in.
fn forbidden(top: &str) -> &'static [&'static str] {
    match top {
        "http" => &["api", "cli", "server"],
        "api" => &["http", "cli", "server"],
        "web" => &["http", "api", "cli", "server"],
        "cli" | "server" | "main" | "lib" => &[],
        _ => &["http", "api", "web", "cli", "server"],
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            out.push(path);
        }
    }
}

/// The module path of a file below `src/`: `src/oauth/grants/mod.rs` is `[oauth, grants]`.
fn module_path(relative: &Path) -> Vec<String> {
    let mut parts: Vec<String> = relative.iter().map(|part| part.to_string_lossy().into_owned()).collect();
    let file = parts.pop().unwrap_or_default();
    let stem = file.trim_end_matches(".rs");
    if stem != "mod" && stem != "lib" {
        parts.push(stem.to_string());
    }
    parts
}

/// The source without comments and string literals (their contents are not paths).
fn code_only(source: &str) -> String {
    let mut out = String::with_capacity(source.len());
    let mut chars = source.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '/' if chars.peek() == Some(&'/') => {
                for next in chars.by_ref() {
                    if next == '\n' {
                        out.push('\n');
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut previous = ' ';
                for next in chars.by_ref() {
                    if previous == '*' && next == '/' {
                        break;
                    }
                    previous = next;
                }
            }
            '"' => {
                let mut escaped = false;
                for next in chars.by_ref() {
                    if next == '"' && !escaped {
                        break;
                    }
                    escaped = next == '\\' && !escaped;
                }
                out.push_str("\"\"");
            }
            _ => out.push(c),
        }
    }
    out
}

/// The top-level modules a file names: through `crate::`, and through `super::` chains that
/// climb to the crate root.
fn named_top_modules(code: &str, module: &[String]) -> BTreeSet<String> {
    let compact: String = code.split_whitespace().collect::<Vec<_>>().join(" ").replace(" :: ", "::");
    let compact = compact.replace(":: ", "::").replace(" ::", "::");
    let mut named = BTreeSet::new();
    let bytes = compact.as_bytes();
    let mut at = 0;
    while at < compact.len() {
        let rest = &compact[at..];
        let starts_word = at == 0 || !(bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_');
        if starts_word && rest.starts_with("crate::") {
            names_after(&rest["crate::".len()..], &mut named);
            at += "crate::".len();
            continue;
        }
        if starts_word && rest.starts_with("super::") {
            let mut depth = 0;
            let mut tail = rest;
            while let Some(next) = tail.strip_prefix("super::") {
                depth += 1;
                tail = next;
            }
            // Fewer steps stay inside the file's own top-level module.
            if depth >= module.len() {
                names_after(tail, &mut named);
            }
            at += rest.len() - tail.len();
            continue;
        }
        at += rest.chars().next().map_or(1, char::len_utf8);
    }
    named
}

/// The first segment after `crate::`, or each first segment of a `{a, b::c}` group.
fn names_after(tail: &str, named: &mut BTreeSet<String>) {
    if let Some(group) = tail.strip_prefix('{') {
        let mut depth = 0;
        let mut item = String::new();
        for c in group.chars() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => break,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    first_segment(&item, named);
                    item.clear();
                    continue;
                }
                _ => {}
            }
            item.push(c);
        }
        first_segment(&item, named);
    } else {
        first_segment(tail, named);
    }
}

fn first_segment(path: &str, named: &mut BTreeSet<String>) {
    let name: String = path.trim().chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
    if !name.is_empty() && name != "self" {
        named.insert(name);
    }
}

/// Every `file: names X` that breaks the rule.
fn violations(src: &Path) -> (Vec<String>, usize) {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    files.sort();
    let mut found = Vec::new();
    for file in &files {
        let relative = file.strip_prefix(src).expect("below src");
        let module = module_path(relative);
        let top = module.first().map_or("lib", String::as_str);
        let code = code_only(&std::fs::read_to_string(file).expect("read file"));
        for name in named_top_modules(&code, &module) {
            if forbidden(top).contains(&name.as_str()) {
                found.push(format!("{} names crate::{name}", relative.display()));
            }
        }
    }
    (found, files.len())
}

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

#[test]
fn the_core_never_names_the_outer_layer_and_http_and_api_never_name_each_other() {
    let (found, scanned) = violations(&src_dir());
    assert!(scanned > 80, "only {scanned} files under src/: is this the right folder?");
    assert!(found.is_empty(), "arrows that point up or across:\n{}", found.join("\n"));
}

#[test]
fn every_outer_module_exists() {
    for module in OUTER {
        let dir = src_dir().join(module);
        let file = src_dir().join(format!("{module}.rs"));
        assert!(dir.is_dir() || file.is_file(), "src/{module} is gone: update OUTER and the README's Design section");
    }
}

/// The checker itself: an upward path is found in every form it can take.
#[test]
fn upward_paths_are_found_in_every_form() {
    let oauth_grant = vec!["oauth".to_string(), "grants".to_string()];
    let cases = [
        ("use crate::http::error;", "http"),
        ("use crate::{store, api::problem};", "api"),
        ("fn f() { crate :: cli :: run(); }", "cli"),
        ("use super::super::server;", "server"),
        ("let x = crate::web::origin(state, req);", "web"),
    ];
    for (code, name) in cases {
        let named = named_top_modules(&code_only(code), &oauth_grant);
        assert!(named.contains(name), "{code}: {named:?}");
    }
    let quiet = "// crate::http::x\n/* crate::api */ let s = \"crate::cli\"; use super::pkce;";
    let named = named_top_modules(&code_only(quiet), &oauth_grant);
    assert!(named.is_empty(), "comments, strings and sibling paths are not arrows: {named:?}");
    assert!(forbidden("oauth").contains(&"http") && forbidden("http").contains(&"api"));
}
