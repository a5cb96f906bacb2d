//! Signing-key administration shared by `oxidp keys` and the admin API: rotation of one
//! algorithm's timeline and import of an operator's key, each audited.

use serde_json::json;

use crate::audit::Initiator;
use crate::keys::{KeyError, NewKey};
use crate::state::AppState;

#[derive(Debug, thiserror::Error)]
pub enum KeyAdminError {
    /// `alg` is not one of the algorithms this deployment signs with.
    #[error("'{alg}' is not one of OXIDP_SIGNING_ALGS ({offered})")]
    UnknownAlg { alg: String, offered: String },
    /// The imported material is not a usable private key.
    #[error("{0}")]
    Material(String),
    #[error("service unavailable")]
    Unavailable,
    #[error("internal error: {0}")]
    Internal(String),
}

crate::store::from_store_error!(KeyAdminError);

impl From<KeyError> for KeyAdminError {
    fn from(error: KeyError) -> Self {
        match error {
            KeyError::Material(message) => KeyAdminError::Material(message),
            KeyError::Store(store) => store.into(),
            other => KeyAdminError::Internal(other.to_string()),
        }
    }
}

/// A new key for `alg`'s timeline, published now and signing after the JWKS cache lifetime.
pub async fn rotate(state: &AppState, by: &Initiator, alg: &str) -> Result<NewKey, KeyAdminError> {
    if !state.config.signing_algs.iter().any(|offered| offered == alg) {
        return Err(KeyAdminError::UnknownAlg { alg: alg.to_string(), offered: state.config.signing_algs.join(", ") });
    }
    let key = state.keys.rotate_alg(alg).await?;
    by.record(
        state,
        "key.rotate",
        ("signing_key", &key.kid),
        json!({ "alg": key.alg, "activates_at": key.activates_at }),
    )
    .await?;
    Ok(key)
}

/// An operator's RSA private key (PEM), with the same delayed activation as a rotation.
pub async fn import(state: &AppState, by: &Initiator, pem: &[u8]) -> Result<NewKey, KeyAdminError> {
    let key = state.keys.import_pem(pem).await?;
    by.record(
        state,
        "key.import",
        ("signing_key", &key.kid),
        json!({ "alg": key.alg, "activates_at": key.activates_at }),
    )
    .await?;
    Ok(key)
}
