//! A client's token-exchange policy (RFC 8693; issue #15 item 3), set by an administrator
//! through the CLI or the admin API: the targets it may ask for and whether it may delegate.

use serde_json::json;

use super::clients::{ClientError, existing};
use super::field::field;
use crate::audit::Initiator;
use crate::oauth::grants::token_exchange::GRANT_TYPE;
use crate::state::AppState;
use crate::store::{ClientStore, ExchangePolicy, TokenExchangeStore};

/// The policy of a client (the empty one when none was set).
pub async fn policy(state: &AppState, client_id: &str) -> Result<ExchangePolicy, ClientError> {
    existing(state, client_id).await?;
    Ok(state.db.exchange_policy(client_id).await?.unwrap_or_default())
}

/// Replaces the policy. Audiences must be registered clients, resources absolute URLs without
/// a fragment, and the client must be allowed the grant.
pub async fn set_policy(
    state: &AppState,
    by: &Initiator,
    client_id: &str,
    policy: ExchangePolicy,
) -> Result<ExchangePolicy, ClientError> {
    let client = existing(state, client_id).await?;
    if !client.allows_grant(GRANT_TYPE) {
        return Err(ClientError::Invalid(field("grant_types", format!("the client is not allowed {GRANT_TYPE}"))));
    }
    for audience in &policy.audiences {
        if state.db.client_by_id(audience).await?.is_some() {
            continue;
        }
        return Err(ClientError::Invalid(field("audiences", format!("'{audience}' is not a registered client"))));
    }
    for resource in &policy.resources {
        let url = url::Url::parse(resource).map_err(|e| field("resources", format!("'{resource}': {e}")));
        if url.map_err(ClientError::Invalid)?.fragment().is_some() {
            return Err(ClientError::Invalid(field("resources", format!("'{resource}' must not contain a fragment"))));
        }
    }
    state.db.set_exchange_policy(client_id, &policy).await?;
    let details = json!({
        "audiences": policy.audiences, "resources": policy.resources, "delegation": policy.delegation,
    });
    by.record(state, "client.token_exchange_policy", ("client", client_id), details).await?;
    Ok(policy)
}
