//! `oxidp user export`: every person as one JSON object per line (the shape `user import`
//! reads), password hashes only when asked, second-factor secrets never.

use serde_json::{Value, json};

use crate::state::AppState;
use crate::store::{StoreResult, UserImportStore};

const PAGE: i64 = 1000;

/// Calls `write` with each person in id order.
pub async fn export(
    state: &AppState,
    include_password_hashes: bool,
    mut write: impl FnMut(Value) -> std::io::Result<()>,
) -> StoreResult<u64> {
    let mut after = String::new();
    let mut written = 0;
    loop {
        let page = state.db.export_page(&after, PAGE).await?;
        let Some(last) = page.last() else { return Ok(written) };
        after = last.id.clone();
        for row in page {
            let identities: Vec<Value> = state
                .db
                .identities_of(&row.id)
                .await?
                .into_iter()
                .map(|(provider, subject)| json!({ "provider": provider, "subject": subject }))
                .collect();
            let mut person = json!({
                "id": row.id,
                "email": row.email,
                "name": row.name,
                "email_verified": row.email_verified,
                "roles": [row.role],
                "status": row.status,
                "external_id": row.external_id,
                "identities": identities,
            });
            if include_password_hashes {
                person["password_hash"] = json!(row.password_hash);
            }
            write(person).map_err(|e| crate::store::StoreError::Corrupt(format!("cannot write: {e}")))?;
            written += 1;
        }
    }
}
