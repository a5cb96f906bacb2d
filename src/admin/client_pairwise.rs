//! Pairwise subject identifiers chosen for a client (OIDC Core §8.1; issue #14 item 7): the
//! sector is the one host of its redirect URIs, the host of a validated `sector_identifier_uri`
//! (required when the redirect URIs span several hosts), or the client_id when every redirect
//! URI is a loopback address (native apps share no host). The sector never changes afterwards:
//! it would change every `sub` the client has seen.

use std::collections::BTreeSet;

use serde_json::Value;

use super::field::{FieldError, field};
use crate::outbound::{Limits, is_loopback_host};
use crate::state::AppState;
use crate::store::{ClientPairwise, ClientPairwiseStore, StoreResult};

#[derive(Debug, Clone, Default)]
pub struct PairwiseSpec {
    pub sector_identifier_uri: Option<String>,
}

/// `subject_type` and `sector_identifier_uri` as registered, into the choice.
pub fn pairwise_choice(
    subject_type: Option<&str>,
    sector_identifier_uri: Option<String>,
) -> Result<Option<PairwiseSpec>, FieldError> {
    match subject_type.unwrap_or("public") {
        "pairwise" => Ok(Some(PairwiseSpec { sector_identifier_uri })),
        "public" if sector_identifier_uri.is_none() => Ok(None),
        "public" => Err(field("sector_identifier_uri", "goes with subject_type pairwise")),
        other => Err(field("subject_type", format!("'{other}' is not public or pairwise"))),
    }
}

/// The client's sector, fetching and checking its `sector_identifier_uri` when it has one.
pub async fn sector(
    state: &AppState,
    client_id: &str,
    redirect_uris: &[String],
    sector_identifier_uri: Option<&str>,
) -> Result<String, FieldError> {
    let name = "sector_identifier_uri";
    if let Some(uri) = sector_identifier_uri {
        let parsed = url::Url::parse(uri).map_err(|_| field(name, "not a URL"))?;
        let host = parsed.host_str().filter(|_| parsed.scheme() == "https" || parsed.scheme() == "http");
        let host = host.ok_or_else(|| field(name, "must be an https URL"))?.to_string();
        // Fetched under the outgoing-request rule: it is the registering party's URL.
        let fetched = state.outbound.get_json(uri, Limits::default()).await.map_err(|e| field(name, e.to_string()))?;
        let listed: Vec<&str> = match &fetched.body {
            Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
            _ => return Err(field(name, "must answer a JSON array of redirect URIs")),
        };
        if let Some(missing) = redirect_uris.iter().find(|uri| !listed.contains(&uri.as_str())) {
            return Err(field(name, format!("does not list the redirect URI '{missing}'")));
        }
        return Ok(host);
    }
    let hosts: BTreeSet<String> = redirect_uris
        .iter()
        .filter_map(|uri| url::Url::parse(uri).ok())
        .filter(|url| url.host().is_some_and(|host| !is_loopback_host(&host)))
        .filter_map(|url| url.host_str().map(str::to_string))
        .collect();
    let mut hosts = hosts.into_iter();
    match (hosts.next(), hosts.next()) {
        (None, _) => Ok(client_id.to_string()),
        (Some(host), None) => Ok(host),
        _ => Err(field(name, "required for pairwise subjects when the redirect URIs span several hosts")),
    }
}

/// Records the sector of a new pairwise client.
pub async fn store(state: &AppState, client_id: &str, sector: String, spec: &PairwiseSpec) -> StoreResult<()> {
    let pairwise = ClientPairwise {
        client_id: client_id.into(),
        sector,
        sector_identifier_uri: spec.sector_identifier_uri.clone(),
    };
    state.db.set_client_pairwise(&pairwise).await
}

/// For an update of a pairwise client's redirect URIs: refused when the sector would change.
pub async fn keep_sector(state: &AppState, client_id: &str, redirect_uris: &[String]) -> Result<(), FieldError> {
    let current = state.db.client_pairwise(client_id).await.map_err(|e| field("redirect_uris", e.to_string()))?;
    let Some(current) = current else { return Ok(()) };
    let sector = sector(state, client_id, redirect_uris, current.sector_identifier_uri.as_deref()).await?;
    if sector != current.sector {
        return Err(field(
            "redirect_uris",
            "would change the client's pairwise sector (and every subject identifier it has seen)",
        ));
    }
    Ok(())
}
