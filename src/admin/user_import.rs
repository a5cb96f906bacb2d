//! `oxidp user import`: people from the system oxidp replaces, one per line (JSON Lines, or CSV
//! with a header where lists are separated by `;`). Each line is checked on its own; a bad one
//! is reported as `line N: reason` and the others still go in. People are matched by
//! `external_id`, else by email, so a re-import updates rather than duplicates; a password the
//! person changed since the last import is kept unless `overwrite`. Password hashes must be of
//! a kind the password gate verifies (`crate::passwords::legacy`); they become argon2id at the
//! person's first sign-in. One audit entry per run.

use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::account::policy::check_email;
use crate::audit::Initiator;
use crate::passwords::legacy;
use crate::state::AppState;
use crate::store::users::normalize_email;
use crate::store::{ImportFields, NewUser, StoreError, UserImportStore, UserStore};

/// One person as the file describes them.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PersonRecord {
    pub email: Option<String>,
    pub name: Option<String>,
    pub email_verified: Option<bool>,
    pub password_hash: Option<String>,
    pub roles: Option<Vec<String>>,
    pub external_id: Option<String>,
    #[serde(default)]
    pub identities: Vec<IdentityRecord>,
    pub organizations: Option<serde_json::Value>,
    pub permissions: Option<serde_json::Value>,
    /// Written by `user export`; oxidp's own id and the account status are not imported.
    pub id: Option<String>,
    pub status: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityRecord {
    pub provider: String,
    pub subject: String,
}

#[derive(Debug, Default, Clone, Copy)]
pub struct ImportOptions {
    pub dry_run: bool,
    pub overwrite: bool,
}

#[derive(Debug, Default, serde::Serialize)]
pub struct ImportReport {
    pub created: u64,
    pub updated: u64,
    pub rejected: Vec<String>,
    /// Password hashes of each kind in the accepted lines.
    pub hashes: std::collections::BTreeMap<&'static str, u64>,
}

/// What happened to one line.
enum Outcome {
    Created,
    Updated,
}

/// Imports the lines; `line` numbers count from 1 as the file's lines do (a CSV header is line 1).
pub async fn import(
    state: &AppState,
    by: &Initiator,
    lines: impl IntoIterator<Item = (usize, Result<PersonRecord, String>)>,
    options: ImportOptions,
    mut progress: impl FnMut(usize),
) -> Result<ImportReport, StoreError> {
    let mut report = ImportReport::default();
    for (number, parsed) in lines {
        progress(number);
        let record = match parsed {
            Ok(record) => record,
            Err(reason) => {
                report.rejected.push(format!("line {number}: {reason}"));
                continue;
            }
        };
        let kind = record.password_hash.as_deref().and_then(legacy::kind);
        match one(state, &record, options).await {
            Ok(outcome) => {
                match outcome {
                    Outcome::Created => report.created += 1,
                    Outcome::Updated => report.updated += 1,
                }
                if let Some(kind) = kind {
                    *report.hashes.entry(kind.name()).or_default() += 1;
                }
            }
            Err(Rejected::Line(reason)) => report.rejected.push(format!("line {number}: {reason}")),
            Err(Rejected::Store(error)) => return Err(error),
        }
    }
    if !options.dry_run {
        let details = json!({
            "created": report.created, "updated": report.updated, "rejected": report.rejected.len(),
            "overwrite": options.overwrite,
        });
        by.record(state, "user.import", ("users", "import"), details).await?;
    }
    Ok(report)
}

enum Rejected {
    Line(String),
    Store(StoreError),
}

impl From<StoreError> for Rejected {
    fn from(error: StoreError) -> Self {
        Rejected::Store(error)
    }
}

fn digest(hash: &str) -> String {
    Sha256::digest(hash.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

async fn one(state: &AppState, record: &PersonRecord, options: ImportOptions) -> Result<Outcome, Rejected> {
    let reject = |reason: &str| Rejected::Line(reason.to_string());
    let email = record.email.as_deref().ok_or_else(|| reject("email is required"))?;
    let email = check_email(email).map_err(reject)?;
    if record.organizations.is_some() || record.permissions.is_some() {
        return Err(reject("organizations and permissions are not imported yet: grant them through the admin API"));
    }
    if let Some(hash) = &record.password_hash
        && legacy::kind(hash).is_none()
    {
        return Err(reject(
            "password_hash is not an argon2id/argon2i, bcrypt ($2a$/$2b$/$2y$) or PBKDF2-SHA256 (Django, passlib) hash",
        ));
    }
    let role = match record.roles.as_deref() {
        None => None,
        Some(roles) if roles.iter().all(|r| r == "admin" || r == "user") => {
            Some(if roles.iter().any(|r| r == "admin") { "admin" } else { "user" })
        }
        Some(_) => return Err(reject("roles may only be admin and user")),
    };
    if record.external_id.as_deref().is_some_and(|id| id.is_empty() || id.len() > 255) {
        return Err(reject("external_id must be 1 to 255 characters"));
    }
    if record.identities.iter().any(|i| i.provider.is_empty() || i.subject.is_empty() || i.subject.len() > 255) {
        return Err(reject("each identity needs a provider and a subject"));
    }
    let normalized = normalize_email(&email);
    let found = state.db.import_match(record.external_id.as_deref(), &normalized).await?;
    if let Some(found) = &found
        && found.email_normalized.as_deref() != Some(normalized.as_str())
    {
        return Err(reject("external_id belongs to a person with another email"));
    }
    if options.dry_run {
        return Ok(if found.is_some() { Outcome::Updated } else { Outcome::Created });
    }
    let now = state.now();
    let hash_digest = record.password_hash.as_deref().map(digest);
    let (id, outcome) = match found {
        None => {
            let new = NewUser {
                email: Some(email.clone()),
                email_verified: record.email_verified.unwrap_or(false),
                password_hash: record.password_hash.clone(),
                name: record.name.clone(),
                role: role.unwrap_or("user").to_string(),
            };
            let user = match state.db.create_user(new, now).await {
                Err(StoreError::Conflict) => return Err(reject("the email or external_id is already taken")),
                other => other?,
            };
            let fields = ImportFields {
                external_id: record.external_id.as_deref(),
                password: record.password_hash.as_deref().zip(hash_digest.as_deref()),
                ..ImportFields::default()
            };
            state.db.import_update(&user.id, &fields, now).await?;
            (user.id, Outcome::Created)
        }
        Some(found) => {
            // The person's own password (changed since the last import) is kept.
            let unchanged = match (&found.password_hash, &found.imported_hash_digest) {
                (None, _) => true,
                (Some(current), Some(remembered)) => digest(current) == *remembered,
                (Some(_), None) => false,
            };
            let password =
                record.password_hash.as_deref().zip(hash_digest.as_deref()).filter(|_| unchanged || options.overwrite);
            let fields = ImportFields {
                name: record.name.as_deref(),
                email_verified: record.email_verified,
                role,
                external_id: record.external_id.as_deref(),
                password,
            };
            match state.db.import_update(&found.id, &fields, now).await {
                Err(StoreError::Conflict) => return Err(reject("the external_id is already taken")),
                other => other?,
            }
            (found.id, Outcome::Updated)
        }
    };
    for identity in &record.identities {
        state.db.insert_identity_if_absent(&id, &identity.provider, &identity.subject, now).await?;
    }
    Ok(outcome)
}

/// A CSV line (with the file's header) as a record: lists are `;`-separated, identities as
/// `provider:subject`.
pub fn record_from_csv(header: &csv::StringRecord, row: &csv::StringRecord) -> Result<PersonRecord, String> {
    let mut record = PersonRecord::default();
    for (name, value) in header.iter().zip(row.iter()) {
        let value = value.trim();
        if value.is_empty() {
            continue;
        }
        let list = || value.split(';').map(|v| v.trim().to_string()).filter(|v| !v.is_empty()).collect::<Vec<_>>();
        match name.trim() {
            "email" => record.email = Some(value.into()),
            "name" => record.name = Some(value.into()),
            "email_verified" => {
                record.email_verified =
                    Some(value.parse::<bool>().map_err(|_| "email_verified must be true or false".to_string())?)
            }
            "password_hash" => record.password_hash = Some(value.into()),
            "roles" => record.roles = Some(list()),
            "external_id" => record.external_id = Some(value.into()),
            "identities" => {
                for item in list() {
                    let (provider, subject) =
                        item.split_once(':').ok_or_else(|| format!("identity '{item}' is not provider:subject"))?;
                    record.identities.push(IdentityRecord { provider: provider.into(), subject: subject.into() });
                }
            }
            "organizations" => record.organizations = Some(serde_json::Value::String(value.into())),
            "permissions" => record.permissions = Some(serde_json::Value::String(value.into())),
            "id" | "status" => {}
            other => return Err(format!("unknown column '{other}'")),
        }
    }
    Ok(record)
}
