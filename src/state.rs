//! Everything a request needs, built once at start and shared: the core's context.
//!
//! Only handles live here (database, key-value store, keys, caches, the configured upstreams),
//! each from a module that does not itself need this context, so the arrows from the core to
//! this file never come back. `crate::startup` builds it and registers what every deployment
//! needs.

use std::path::Path;
use std::sync::Arc;

use crate::clock::SharedClock;
use crate::config::Config;
use crate::crypto::{SecretError, ServerSecret};
use crate::keys::{KeyError, KeyManager};
use crate::kv::{Kv, MemoryKv, RedisKv};
use crate::store::{Db, GrantStore, StoreError};

pub struct AppState {
    pub config: Config,
    pub db: Db,
    pub kv: Kv,
    /// Browser sessions: in Redis when configured, else in the database.
    pub sessions: crate::session::store::Sessions,
    pub keys: KeyManager,
    pub secret: ServerSecret,
    pub clock: SharedClock,
    pub mailer: crate::mail::Mailer,
    /// The one gate of every slow password hash or check (19 MiB each), so a burst of logins or
    /// registrations cannot exhaust memory or CPU.
    pub password_gate: crate::passwords::PasswordGate,
    /// Discovery documents serialised once: they change only with the configuration.
    pub openid_configuration: String,
    pub oauth_metadata: String,
    /// RFC 9728 metadata of oxidp's own API (`/.well-known/oauth-protected-resource/api`).
    pub protected_resource_metadata: String,
    /// Upstream login providers (`OXIDP_UPSTREAM__*`), with their cached discovery and keys.
    pub federation: crate::federation::registry::Registry,
    /// Issuers whose access tokens the account API accepts (`OXIDP_TRUSTED_ISSUER__*`).
    pub trusted_issuers: crate::trusted_issuers::registry::TrustedIssuers,
    /// Outgoing requests to URLs that untrusted parties supplied (`OXIDP_OUTBOUND_*`).
    pub outbound: crate::outbound::Outbound,
    /// Authentik's admin API, when configured (`OXIDP_AUTHENTIK__*`).
    pub authentik: Option<crate::authentik::client::AuthentikClient>,
    /// Clients read on every token request; see `crate::oauth::clients`.
    pub client_cache: crate::cache::StampedCache<std::sync::Arc<crate::store::Client>>,
    /// Set on a single instance (no Redis); see `crate::oauth::revoked`.
    pub revoked_client_tokens: Option<crate::oauth::revoked::RevokedClientTokens>,
    /// Access tokens already verified; see `crate::cache::VerifiedTokens`.
    pub verified_tokens: crate::cache::VerifiedTokens<crate::oauth::validated_token::ValidatedAccessToken>,
    /// Wakes (or stops) this instance's delivery worker; see `crate::delivery`.
    pub delivery: crate::delivery::queue::Queue,
}

pub type SharedState = Arc<AppState>;

/// The key-value entry whose change tells every instance that a client changed.
pub const CLIENTS_STAMP_KEY: &str = "stamp:clients";

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error("OXIDP_DATABASE_URL: {0}")]
    Database(#[from] StoreError),
    #[error("signing keys: {0}")]
    Keys(#[from] KeyError),
    #[error(transparent)]
    Mail(#[from] crate::mail::MailError),
    #[error("OXIDP_REDIS_URL: {0}")]
    Redis(String),
    #[error("{0}")]
    Federation(String),
    #[error("outgoing HTTP client: {0}")]
    Outbound(#[from] crate::outbound::OutboundError),
}

impl AppState {
    /// Opens the database (migrating it), loads the secret and the signing keys. Use
    /// `crate::startup::start`, which also registers the built-in client.
    pub async fn open(config: Config, clock: SharedClock) -> Result<SharedState, StartError> {
        crate::observability::install();
        let secret = ServerSecret::load_or_generate(config.secret_key.as_deref(), Path::new(&config.keys_dir))?;
        let db = Db::connect(&config.database_url).await?;
        db.migrate().await?;
        let keys = KeyManager::new(
            db.clone(),
            secret.clone(),
            clock.clone(),
            config.rsa_bits,
            config.signing_algs.clone(),
            config.jwks_max_age + config.key_refresh_interval,
            config.access_token_ttl.max(config.id_token_ttl),
        );
        keys.bootstrap().await?;
        let kv = match &config.redis_url {
            Some(url) => Kv::Redis(Arc::new(
                RedisKv::connect(url, &config.redis_key_prefix, clock.clone())
                    .await
                    .map_err(|e| StartError::Redis(e.to_string()))?,
            )),
            None => Kv::Memory(MemoryKv::new(clock.clone(), config.kv_max_entries)),
        };
        let revoked_client_tokens = match &kv {
            Kv::Memory(_) => {
                Some(crate::oauth::revoked::RevokedClientTokens::new(db.revoked_client_tokens(clock.now()).await?))
            }
            Kv::Redis(_) => None,
        };
        let sessions = crate::session::store::Sessions::for_deployment(&kv, &db, config.session_idle_ttl);
        let openid_configuration = crate::oidc::discovery::openid_configuration(&config).to_string();
        let oauth_metadata = crate::oidc::discovery::oauth_metadata(&config).to_string();
        let protected_resource_metadata = crate::oidc::discovery::protected_resource_metadata(&config).to_string();
        let mailer = crate::mail::Mailer::from_config(config.smtp_url.as_deref(), &config.mail_dir, &config.issuer)?;
        let federation =
            crate::federation::registry::Registry::build(&config).map_err(|e| StartError::Federation(e.to_string()))?;
        let trusted_issuers =
            crate::trusted_issuers::registry::TrustedIssuers::build(&config).map_err(StartError::Federation)?;
        let authentik =
            crate::authentik::client::AuthentikClient::from_config(&config).map_err(StartError::Federation)?;
        let outbound = crate::outbound::Outbound::from_config(&config)?;
        let password_gate = crate::passwords::PasswordGate::new(
            match config.password_hash_concurrency {
                0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
                n => n,
            },
            config.password_hash_queue,
            std::time::Duration::from_millis(config.password_hash_max_wait_ms),
        );
        let state = Arc::new(AppState {
            config,
            db,
            kv,
            sessions,
            keys,
            secret,
            clock,
            mailer,
            password_gate,
            openid_configuration,
            oauth_metadata,
            protected_resource_metadata,
            federation,
            trusted_issuers,
            outbound,
            authentik,
            client_cache: crate::cache::StampedCache::new(CLIENTS_STAMP_KEY, 4096),
            revoked_client_tokens,
            verified_tokens: crate::cache::VerifiedTokens::new(16_384),
            delivery: crate::delivery::queue::Queue::default(),
        });
        Ok(state)
    }

    pub fn now(&self) -> i64 {
        self.clock.now()
    }
}
