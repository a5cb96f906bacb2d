//! The configured trusted issuers (`OXIDP_TRUSTED_ISSUER__*`) with their cached keys, built once at start.

use std::sync::{Arc, Mutex};

use josekit::jwk::Jwk;

use crate::config::{Config, DEFAULT_UPSTREAM_TIMEOUT, TrustedIssuerConfig};
use crate::federation::outbound;

pub(super) struct KeySet {
    pub(super) keys: Vec<Jwk>,
    pub(super) userinfo_endpoint: Option<String>,
    pub(super) fetched_at: i64,
}

#[derive(Default)]
pub(super) struct KeyCache {
    pub(super) keys: Option<Arc<KeySet>>,
    /// When a fetch last started, successful or not.
    pub(super) last_attempt: Option<i64>,
}

pub(super) struct TrustedIssuer {
    pub(super) name: String,
    pub(super) config: TrustedIssuerConfig,
    pub(super) http: reqwest::Client,
    pub(super) cache: Mutex<KeyCache>,
}

/// The configured issuers, built once at start.
#[derive(Default)]
pub struct TrustedIssuers {
    pub(super) issuers: Vec<TrustedIssuer>,
}

impl TrustedIssuers {
    pub fn build(config: &Config) -> Result<TrustedIssuers, String> {
        let mut issuers = Vec::new();
        for (name, trusted) in &config.trusted_issuer {
            let http = outbound::client(trusted.timeout.unwrap_or(DEFAULT_UPSTREAM_TIMEOUT))
                .map_err(|e| format!("OXIDP_TRUSTED_ISSUER__{}: {e}", name.to_ascii_uppercase()))?;
            issuers.push(TrustedIssuer { name: name.clone(), config: trusted.clone(), http, cache: Mutex::default() });
        }
        Ok(TrustedIssuers { issuers })
    }

    pub fn is_empty(&self) -> bool {
        self.issuers.is_empty()
    }
}
