//! Secrets at rest and in logs (issue #8, item 5): every secret oxidp hands out — client and
//! API-client secrets, API keys, codes, access/refresh/ID tokens, verification and reset codes,
//! session and CSRF cookies, passwords — is issued through the real flows, then looked for in a
//! dump of every column of every table (it must be there only as a keyed hash), and in what
//! the real `oxidp serve` binary logs at debug level while serving those flows.
//!
//! The database and Redis dumps and the key files: at_rest.rs; the real binary's logs: in_logs.rs.

pub(crate) mod at_rest;
mod in_logs;

use base64::Engine;
use sha2::Digest;

const ALICE: &str = "alice@example.com";
const ROOT: &str = "root@example.com";
const BOB: &str = "bob@example.com";
const BOB_PASSWORD: &str = "a passphrase of his own 77";
const NEW_PASSWORD: &str = "a brand new passphrase 42";

/// The ways a stored secret could still be recognised: as it is, as plain (unkeyed) SHA-256
/// in hex or base64url, in standard base64, or URL-encoded.
fn forms_of(secret: &str) -> Vec<String> {
    let digest = sha2::Sha256::digest(secret.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    let mut forms = vec![
        secret.to_string(),
        hex,
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest),
        base64::engine::general_purpose::STANDARD.encode(secret.as_bytes()),
    ];
    let encoded: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
    if encoded != secret {
        forms.push(encoded);
    }
    forms
}

/// Panics naming the first secret found in `haystack` (in any of its forms).
fn assert_absent(haystack: &str, secrets: &[(String, String)], place: &str) {
    for (what, secret) in secrets {
        for form in forms_of(secret) {
            if let Some(at) = haystack.find(&form) {
                let start = haystack[..at].char_indices().rev().nth(80).map_or(0, |(i, _)| i);
                let context = &haystack[start..(at + form.len() + 80).min(haystack.len())];
                panic!("{place} holds the {what} ({form:?}): …{context}…");
            }
        }
    }
}
