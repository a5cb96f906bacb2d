//! `oxidp user import` and `oxidp user export` through the binary: every hash kind signs in
//! (and becomes argon2id), every bad-line reason is reported as `line N: reason` while the good
//! lines go in, re-imports update without undoing a password the person changed, and an export
//! imports back into an empty database unchanged.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::cli::Cli;
use crate::common::*;
use crate::on_both_backends;

on_both_backends!(import_reports_bad_lines_signs_in_every_hash_kind_and_round_trips);

/// PBKDF2-HMAC-SHA256("passwd", "salt", 1) (RFC 7914 §11, first 32 bytes).
const DERIVED: &str = "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc";

fn hex(text: &str) -> Vec<u8> {
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex")).collect()
}

fn write(cli: &Cli, name: &str, lines: &[String]) -> String {
    let path = cli.dir.path().join(name);
    std::fs::write(&path, lines.join("\n")).expect("write the file");
    path.display().to_string()
}

/// Signs in through the JSON API of a server on the CLI's database.
async fn can_sign_in(server: &TestServer, email: &str, password: &str) -> bool {
    let response = reqwest::Client::new()
        .post(server.url("/api/v1/auth/login"))
        .json(&json!({ "email": email, "password": password }))
        .send()
        .await
        .expect("login");
    let status = response.status();
    if status != 200 {
        eprintln!("login of {email}: {status} {}", response.text().await.unwrap_or_default());
    }
    status == 200
}

async fn import_reports_bad_lines_signs_in_every_hash_kind_and_round_trips(backend: Backend) {
    let cli = Cli::new(backend).await;
    let bcrypt = bcrypt::hash("bcrypt-Secret-1", 4).expect("bcrypt");
    let django = format!("pbkdf2_sha256$1$salt${}", STANDARD.encode(hex(DERIVED)));
    let argon2id = oxidp::passwords::hash_password("argon-Secret-3").expect("argon2");
    let lines = vec![
        json!({"email": "ada@example.com", "name": "Ada", "email_verified": true, "password_hash": bcrypt,
               "roles": ["admin"], "external_id": "old-1", "identities": [{"provider": "github", "subject": "123"}]})
        .to_string(),
        json!({"email": "bob@example.com", "password_hash": django, "external_id": "old-2"}).to_string(),
        json!({"email": "cy@example.com", "password_hash": argon2id}).to_string(),
        json!({"name": "No Email"}).to_string(),
        json!({"email": "md5@example.com", "password_hash": "md5$abc$def"}).to_string(),
        json!({"email": "owner@example.com", "roles": ["owner"]}).to_string(),
        "{not json".to_string(),
        json!({"email": "org@example.com", "organizations": [{"id": "x"}]}).to_string(),
        json!({"email": "not-an-email"}).to_string(),
    ];
    let file = write(&cli, "people.jsonl", &lines);

    // A dry run checks and writes nothing.
    let (code, stdout, stderr) = cli.output(&["user", "import", &file, "--dry-run"]);
    assert_eq!(code, Some(1), "rejected lines make exit 1: {stderr}");
    let summary: Value = serde_json::from_str(stdout.trim()).expect("summary JSON");
    assert_eq!((summary["created"].as_u64(), summary["rejected"].as_u64()), (Some(3), Some(6)), "{summary}");
    let (code, stdout, _) = cli.output(&["user", "export"]);
    assert_eq!((code, stdout.trim()), (Some(0), ""), "nothing written by the dry run");

    let (code, stdout, stderr) = cli.output(&["user", "import", &file]);
    assert_eq!(code, Some(1));
    let summary: Value = serde_json::from_str(stdout.trim()).expect("summary JSON");
    assert_eq!(summary["created"], 3, "{summary}");
    for (line, reason) in [
        (4, "email is required"),
        (5, "password_hash is not"),
        (6, "roles may only be"),
        (7, "not a valid person"),
        (8, "organizations and permissions"),
        (9, "not a valid email"),
    ] {
        assert!(stderr.contains(&format!("line {line}: {reason}")), "line {line}: {stderr}");
    }

    // Every hash kind signs in, and the hash becomes argon2id.
    let dir = tempfile::tempdir().expect("tempdir");
    let keys_dir = cli.dir.path().join("keys");
    let server = TestServer::start_on(cli.database_url().to_string(), dir, move |config| {
        // The CLI's keys and server secret, so the server can use the signing keys it made.
        config.keys_dir = keys_dir.display().to_string();
        config.secret_key = None;
    })
    .await;
    assert!(can_sign_in(&server, "ada@example.com", "bcrypt-Secret-1").await);
    assert!(can_sign_in(&server, "bob@example.com", "passwd").await);
    assert!(can_sign_in(&server, "cy@example.com", "argon-Secret-3").await);
    use oxidp::store::UserStore;
    let ada = server.state.db.user_by_email("ada@example.com").await.expect("db").expect("ada");
    assert!(ada.is_admin() && ada.email_verified);
    assert!(ada.password_hash.as_deref().is_some_and(|h| h.starts_with("$argon2id$")), "re-hashed at sign-in");

    // A re-import with a new hash keeps a password that changed since the last import (Ada's was
    // re-hashed at her sign-in) unless --overwrite; Cy's, as imported (argon2id needs no re-hash), is replaced.
    let new_bcrypt = bcrypt::hash("bcrypt-Newer-2", 4).expect("bcrypt");
    let changed = vec![
        json!({"email": "ada@example.com", "password_hash": new_bcrypt, "external_id": "old-1"}).to_string(),
        json!({"email": "cy@example.com", "password_hash": new_bcrypt, "name": "Cy"}).to_string(),
    ];
    let again = write(&cli, "again.jsonl", &changed);
    let (code, stdout, stderr) = cli.output(&["user", "import", &again]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(serde_json::from_str::<Value>(stdout.trim()).expect("summary")["updated"], 2);
    assert!(can_sign_in(&server, "ada@example.com", "bcrypt-Secret-1").await, "Ada's own password stays");
    assert!(can_sign_in(&server, "cy@example.com", "bcrypt-Newer-2").await, "Cy's imported one is replaced");
    let (code, _, stderr) = cli.output(&["user", "import", &again, "--overwrite"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(can_sign_in(&server, "ada@example.com", "bcrypt-Newer-2").await, "--overwrite replaces it");

    // CSV with a header and ;-separated lists.
    let csv = write(
        &cli,
        "people.csv",
        &[
            "email,name,roles,external_id,identities,password_hash".to_string(),
            format!(
                "dee@example.com,Dee,user,old-4,github:456;google:789,{}",
                bcrypt::hash("csv-Secret-4", 4).expect("h")
            ),
            "bad-address,Nobody,,,,".to_string(),
        ],
    );
    let (code, _, stderr) = cli.output(&["user", "import", &csv]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("line 3: not a valid email"), "{stderr}");
    assert!(can_sign_in(&server, "dee@example.com", "csv-Secret-4").await);

    // Export (with hashes) and import into an empty database: the same people, identities and hashes.
    let (code, exported, stderr) = cli.output(&["user", "export", "--include-password-hashes"]);
    assert_eq!(code, Some(0), "{stderr}");
    let people: Vec<Value> = exported.lines().map(|l| serde_json::from_str(l).expect("one person per line")).collect();
    assert_eq!(people.len(), 4);
    let dee = people.iter().find(|p| p["email"] == "dee@example.com").expect("dee");
    assert_eq!(dee["identities"].as_array().map(Vec::len), Some(2));
    assert_eq!(dee["external_id"], "old-4");
    let (_, without, _) = cli.output(&["user", "export"]);
    assert!(!without.contains("password_hash"), "hashes only when asked");
    let fresh = Cli::new(backend).await;
    let copied = write(&fresh, "export.jsonl", &exported.lines().map(str::to_string).collect::<Vec<_>>());
    let (code, _, stderr) = fresh.output(&["user", "import", &copied]);
    assert_eq!(code, Some(0), "an export imports back: {stderr}");
    let (_, round_trip, _) = fresh.output(&["user", "export", "--include-password-hashes"]);
    let strip = |text: &str| {
        let mut people: Vec<Value> = text
            .lines()
            .map(|l| {
                let mut p: Value = serde_json::from_str(l).expect("json");
                p.as_object_mut().expect("object").remove("id");
                p
            })
            .collect();
        people.sort_by_key(|p| p["email"].as_str().unwrap_or_default().to_string());
        people
    };
    assert_eq!(strip(&round_trip), strip(&exported), "export → import → export is the same");
    let (code, _, _) = cli.output(&["user", "export", "--format", "xml"]);
    assert_eq!(code, Some(2));
}
