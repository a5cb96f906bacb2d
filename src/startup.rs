//! Start-up: the core's context, then what every deployment needs registered in it.

use crate::clock::SharedClock;
use crate::config::Config;
use crate::state::{AppState, SharedState, StartError};

pub async fn start(config: Config, clock: SharedClock) -> Result<SharedState, StartError> {
    let state = AppState::open(config, clock).await?;
    crate::delivery::install_renderer(&crate::oidc::backchannel::LogoutTokens);
    crate::oauth::clients::install_source(Box::new(crate::registration::metadata_document::MetadataDocuments));
    crate::oauth::first_party::ensure_builtin_client(&state).await?;
    crate::admin::clients::demote_public_resource_servers(&state)
        .await
        .map_err(|error| StartError::Database(crate::store::StoreError::Corrupt(error.to_string())))?;
    if let crate::kv::Kv::Redis(redis) = &state.kv {
        redis.warn_unless_noeviction().await;
    }
    Ok(state)
}
