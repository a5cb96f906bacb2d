//! Client ID metadata documents (draft-ietf-oauth-client-id-metadata-document; issue #14 item 2):
//! with `OXIDP_CLIENT_ID_METADATA_DOCUMENTS=on`, a `client_id` that is an https URL (an http
//! loopback URL only where the outgoing-request rule allows loopback) names the JSON document
//! that describes the client. It is fetched under that rule (bounded size and time, no
//! redirects), must carry `client_id` equal to the URL, and describes a public client or a
//! `private_key_jwt` client with a `jwks_uri`. It becomes a client row (so consents and grants
//! refer to it), read like any other until its HTTP cache lifetime (kept between 5 minutes and
//! 24 hours) ends, then fetched again. A document that cannot be fetched or is invalid makes an
//! unknown client: the authorization endpoint shows its error page, never a redirect.

use std::sync::Arc;

use reqwest::header::CACHE_CONTROL;

use super::metadata::ClientMetadata;
use crate::admin::clients::{self, ClientChange, ClientError, ClientSpec};
use crate::audit::{Initiator, Origin};
use crate::config::{DynamicRegistration, Switch};
use crate::oauth::clients::{ClientSource, Lookup, cached};
use crate::outbound::{Limits, is_loopback_host};
use crate::state::AppState;
use crate::store::{Client, ClientMetadataDocumentStore, StoreError, StoreResult};

/// [`Client::registered_via`](crate::store::Client::registered_via) of these clients.
pub const VIA: &str = "client_id_metadata_document";

const MIN_LIFETIME: i64 = 300;
const MAX_LIFETIME: i64 = 86_400;
const MAX_DOCUMENT: usize = 16 * 1024;

pub struct MetadataDocuments;

impl ClientSource for MetadataDocuments {
    fn answers_for(&self, state: &AppState, id: &str) -> bool {
        state.config.client_id_metadata_documents == Switch::On && is_document_url(state, id)
    }

    fn find<'a>(&'a self, state: &'a AppState, id: &'a str) -> Lookup<'a> {
        Box::pin(resolve(state, id))
    }
}

/// An https URL with a path, no fragment, no credentials, no dot segments, on an allowed host.
fn is_document_url(state: &AppState, id: &str) -> bool {
    let Ok(url) = url::Url::parse(id) else { return false };
    let Some(host) = url.host() else { return false };
    let scheme_ok = url.scheme() == "https"
        || (url.scheme() == "http" && state.config.outbound_allow_loopback && is_loopback_host(&host));
    let allowed = &state.config.client_id_metadata_hosts;
    let host_ok = allowed.is_empty() || url.host_str().is_some_and(|h| allowed.iter().any(|a| a == h));
    scheme_ok
        && host_ok
        && url.path() != "/"
        && url.fragment().is_none()
        && url.username().is_empty()
        && url.password().is_none()
        && !id.contains("/./")
        && !id.contains("/../")
}

async fn resolve(state: &AppState, url: &str) -> StoreResult<Option<Arc<Client>>> {
    let now = state.now();
    let expiry = state.db.document_expiry(url).await?;
    if expiry.is_some_and(|expires_at| expires_at > now) {
        return cached(state, url).await;
    }
    let (spec, lifetime) = match fetch(state, url).await {
        Ok(fetched) => fetched,
        Err(reason) => {
            tracing::warn!(client_id = %url, %reason, "client ID metadata document refused");
            return Ok(None);
        }
    };
    let by = Initiator::new(crate::audit::Actor::System, Origin { via: Some(VIA), ..Origin::default() });
    let stored = match expiry {
        None => clients::register_as(state, &by, url.to_string(), spec).await.map(|_| ()),
        Some(_) => clients::update(state, &by, url, ClientChange::from_client_metadata(spec)).await.map(|_| ()),
    };
    match stored {
        Ok(()) => {}
        // Another instance made it first: theirs is as good.
        Err(ClientError::Internal(_)) if expiry.is_none() && cached(state, url).await?.is_some() => {}
        Err(ClientError::Invalid(field)) => {
            tracing::warn!(client_id = %url, field = field.field, reason = %field.message, "client ID metadata document refused");
            return Ok(None);
        }
        Err(ClientError::Unavailable) => return Err(StoreError::Unavailable("client registration".into())),
        Err(other) => return Err(StoreError::Corrupt(other.to_string())),
    }
    state.db.set_document_expiry(url, now, now + lifetime).await?;
    cached(state, url).await
}

/// The document as a client, and how long it holds.
async fn fetch(state: &AppState, url: &str) -> Result<(ClientSpec, i64), String> {
    let limits = Limits { max_bytes: MAX_DOCUMENT, ..Limits::default() };
    let fetched = state.outbound.get_json(url, limits).await.map_err(|e| e.to_string())?;
    if fetched.body.get("client_id").and_then(|v| v.as_str()) != Some(url) {
        return Err("the document's client_id is not its URL".into());
    }
    let metadata: ClientMetadata = serde_json::from_value(fetched.body).map_err(|e| e.to_string())?;
    let method = metadata.token_endpoint_auth_method.clone().unwrap_or_else(|| "none".into());
    match method.as_str() {
        "none" => {}
        "private_key_jwt" if metadata.jwks_uri.is_some() && metadata.jwks.is_none() => {}
        _ => return Err("a metadata document describes a public client or private_key_jwt with a jwks_uri".into()),
    }
    let metadata = ClientMetadata { token_endpoint_auth_method: Some(method), ..metadata };
    let (mut spec, _) = metadata.into_spec(DynamicRegistration::Open).map_err(|e| e.to_string())?;
    spec.registered_via = Some(VIA.into());
    let lifetime = lifetime(fetched.headers.get(CACHE_CONTROL).and_then(|v| v.to_str().ok()));
    Ok((spec, lifetime))
}

/// `max-age` from Cache-Control, kept between 5 minutes and 24 hours (`no-store` and friends
/// count as the minimum: the document is still needed for the request at hand).
fn lifetime(cache_control: Option<&str>) -> i64 {
    let max_age = cache_control.and_then(|value| {
        value
            .split(',')
            .find_map(|directive| directive.trim().strip_prefix("max-age=").and_then(|n| n.parse::<i64>().ok()))
    });
    max_age.unwrap_or(MIN_LIFETIME).clamp(MIN_LIFETIME, MAX_LIFETIME)
}

#[cfg(test)]
mod tests {
    use super::lifetime;

    #[test]
    fn the_cache_lifetime_stays_between_five_minutes_and_a_day() {
        assert_eq!(lifetime(None), 300);
        assert_eq!(lifetime(Some("max-age=60")), 300);
        assert_eq!(lifetime(Some("public, max-age=3600")), 3600);
        assert_eq!(lifetime(Some("max-age=9999999")), 86_400);
        assert_eq!(lifetime(Some("no-store")), 300);
    }
}
