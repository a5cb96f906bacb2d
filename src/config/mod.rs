//! Configuration: `OXIDP_*` environment variables over an optional TOML file (`OXIDP_CONFIG`).
//!
//! This file holds the settings and their defaults; loading, checking and the federation
//! sections live in the submodules, and everything public is re-exported here.

mod error;
mod federation;
mod lenient;
mod load;
mod service_links;
mod validate;
mod validate_federation;

use std::collections::BTreeMap;
use std::net::SocketAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

pub use error::ConfigError;
pub use federation::{
    AuthentikConfig, DEFAULT_AUTHENTIK_PROVIDER, DEFAULT_UPSTREAM_TIMEOUT, GITHUB_API_URL, GITHUB_AUTH_URL,
    GITHUB_TOKEN_URL, GOOGLE_ISSUER, TrustedIssuerConfig, UpstreamConfig, UpstreamKind,
};
pub use service_links::in_environment as service_links_in_environment;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Registration {
    Open,
    Closed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Switch {
    On,
    Off,
}

/// Who may use `POST /register` (RFC 7591).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DynamicRegistration {
    Off,
    /// With an initial access token (`oxidp registration-token create`).
    Token,
    /// Anyone, limited per source address and in number; unused registrations expire.
    Open,
}

/// Which targets a client allowed the token-exchange grant may name as `audience` (RFC 8693).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TokenExchangeAudiences {
    /// Only those its exchange policy lists.
    Policy,
    /// Any registered client's id.
    RegisteredClients,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// Every setting with its default; field names are the variable names without `OXIDP_`, in lower case.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub bind: SocketAddr,
    pub issuer: String,
    pub database_url: String,
    pub redis_url: Option<String>,
    /// Prefix of every Redis key; instances of one deployment share it.
    pub redis_key_prefix: String,
    pub keys_dir: String,
    pub secret_key: Option<String>,
    pub access_token_ttl: i64,
    pub id_token_ttl: i64,
    pub refresh_token_ttl: i64,
    pub refresh_token_max_ttl: i64,
    pub code_ttl: i64,
    /// RFC 8628: how long a device code and its user code live.
    pub device_code_ttl: i64,
    /// RFC 8628: the minimum seconds between two polls of one device code (grows by 5 on `slow_down`).
    pub device_code_interval: i64,
    pub session_ttl: i64,
    pub session_idle_ttl: i64,
    pub refresh_reuse_grace: i64,
    /// How long relying parties may cache the JWKS (`Cache-Control: max-age`).
    pub jwks_max_age: i64,
    /// How often each instance reloads signing keys from the database.
    pub key_refresh_interval: i64,
    pub rsa_bits: u32,
    /// Algorithms with a signing key: RS256 always (access tokens, and ID tokens by default);
    /// ES256 and EdDSA for clients that ask for them (`id_token_signed_response_alg`).
    pub signing_algs: Vec<String>,
    pub registration: Registration,
    pub password_login_api: Switch,
    pub internal_secret: Option<String>,
    pub trusted_proxies: Vec<IpNet>,
    pub cors_origins: Vec<String>,
    pub smtp_url: Option<String>,
    pub mail_dir: String,
    pub log_format: LogFormat,
    /// Failed password checks allowed per account within `login_lock_window` before a temporary lock.
    pub login_account_limit: i64,
    /// Failed password checks allowed per client IP within `login_lock_window`.
    pub login_ip_limit: i64,
    pub login_lock_window: i64,
    /// Failed password checks per account without any wait; each further one makes the next
    /// attempt wait `login_delay` seconds, doubling every time, at most `login_max_delay`.
    pub login_free_failures: i64,
    /// The first wait in seconds (0: no waits, only the lock).
    pub login_delay: i64,
    pub login_max_delay: i64,
    /// Failed client authentications allowed per client and source address per minute at the
    /// token endpoints (a correct credential is never refused).
    pub client_auth_failure_limit: i64,
    /// How recent a sign-in must be for a credential to mint an administrator's credential (seconds).
    pub step_up_max_age: i64,
    /// Token requests allowed per client per minute (0 = no limit).
    pub token_rate_limit: i64,
    /// Slow password hashes or verifications running at once (0: one per core).
    pub password_hash_concurrency: usize,
    /// Callers that may wait for a password-hash slot; beyond them the answer is 503 at once.
    pub password_hash_queue: usize,
    /// Milliseconds a caller waits for a slot before 503.
    pub password_hash_max_wait_ms: u64,
    /// Registrations, password-reset requests and verification mails allowed per source address,
    /// each kind counted apart, within `mail_limit_window` seconds.
    pub mail_ip_limit: i64,
    /// The same per email address.
    pub mail_email_limit: i64,
    pub mail_limit_window: i64,
    pub max_body_bytes: usize,
    /// Authorization requests a source address (an IPv6 /64) may leave pending for the login or
    /// consent page within their 30-minute lifetime; beyond it `/authorize` answers 429.
    pub pending_requests_per_ip: i64,
    /// Entries the in-process key-value store holds (without Redis). Expired entries go first;
    /// when it is still full, new pending requests and single-use values are refused with 503.
    /// Counters and throttles get a tenth more room, and nothing live is ever evicted.
    pub kv_max_entries: usize,
    /// RFC 9126 §5 globally: every client must push its authorization requests to `/par`.
    pub require_par: bool,
    /// RFC 9449 §8: DPoP proofs must carry a server nonce (`DPoP-Nonce`).
    pub dpop_nonces: Switch,
    /// Seconds a DPoP proof's `iat` may lie before or after now.
    pub dpop_iat_leeway: i64,
    /// Seconds audit rows are kept; housekeeping deletes older ones.
    pub audit_retention: i64,
    /// Seconds a self-registered account may stay without verifying its email; housekeeping
    /// then deletes it. Accounts made by the CLI, an administrator, an import or an upstream
    /// login are never deleted this way.
    pub unverified_account_ttl: i64,
    pub dynamic_registration: DynamicRegistration,
    /// `OXIDP_TOKEN_EXCHANGE_AUDIENCES`: `policy` (default) or `registered-clients`.
    pub token_exchange_audiences: TokenExchangeAudiences,
    /// Open registrations a source address may make per hour.
    pub registration_rate_limit: i64,
    /// Openly registered clients that may exist at once.
    pub registration_max_open: i64,
    /// Seconds an openly registered client may stay unused (no grant, no consent) before
    /// housekeeping deletes it.
    pub registration_unused_ttl: i64,
    /// Whether a `client_id` that is an https URL is resolved from the document it names.
    pub client_id_metadata_documents: Switch,
    /// When not empty, the only hosts whose client ID metadata documents are accepted.
    pub client_id_metadata_hosts: Vec<String>,
    /// Networks that URLs supplied by unauthenticated or dynamically registered parties may
    /// reach although they are private or special (and over plain `http`); see `crate::outbound`.
    pub outbound_allow_cidrs: Vec<IpNet>,
    /// Such URLs may point at loopback (127.0.0.0/8, ::1), over `http` too: tests, development.
    pub outbound_allow_loopback: bool,
    /// Attempts of one outgoing delivery (back-channel logout tokens) before it is given up and audited.
    pub delivery_max_attempts: i64,
    /// Seconds before the second attempt; each later wait doubles, up to `delivery_backoff_max`.
    pub delivery_backoff: i64,
    pub delivery_backoff_max: i64,
    /// Upstream login providers by name (`OXIDP_UPSTREAM__<NAME>__…`); names are lower case.
    pub upstream: BTreeMap<String, UpstreamConfig>,
    /// Issuers whose JWT access tokens the account API accepts (`OXIDP_TRUSTED_ISSUER__<NAME>__…`).
    pub trusted_issuer: BTreeMap<String, TrustedIssuerConfig>,
    /// Authentik's admin API (`OXIDP_AUTHENTIK__…`), for the internal ensure route.
    pub authentik: Option<AuthentikConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            issuer: "http://127.0.0.1:8080".into(),
            database_url: "sqlite://data/oxidp.db?mode=rwc".into(),
            redis_url: None,
            redis_key_prefix: "oxidp:".into(),
            keys_dir: "keys".into(),
            secret_key: None,
            access_token_ttl: 900,
            id_token_ttl: 900,
            refresh_token_ttl: 2_592_000,
            refresh_token_max_ttl: 7_776_000,
            code_ttl: 60,
            device_code_ttl: 600,
            device_code_interval: 5,
            session_ttl: 86_400,
            session_idle_ttl: 3_600,
            refresh_reuse_grace: 5,
            jwks_max_age: 300,
            key_refresh_interval: 30,
            rsa_bits: 2048,
            signing_algs: crate::keys::SUPPORTED_ALGS.iter().map(|alg| alg.to_string()).collect(),
            registration: Registration::Open,
            password_login_api: Switch::On,
            internal_secret: None,
            trusted_proxies: Vec::new(),
            cors_origins: Vec::new(),
            smtp_url: None,
            mail_dir: "data/mail".into(),
            log_format: LogFormat::Text,
            login_account_limit: 5,
            login_ip_limit: 30,
            login_lock_window: 900,
            login_free_failures: 2,
            login_delay: 1,
            login_max_delay: 60,
            client_auth_failure_limit: 20,
            step_up_max_age: 600,
            token_rate_limit: 0,
            password_hash_concurrency: 0,
            password_hash_queue: 16,
            password_hash_max_wait_ms: 1000,
            mail_ip_limit: 10,
            mail_email_limit: 3,
            mail_limit_window: 3600,
            max_body_bytes: 64 * 1024,
            pending_requests_per_ip: 100,
            kv_max_entries: 100_000,
            require_par: false,
            dpop_nonces: Switch::Off,
            dpop_iat_leeway: 60,
            audit_retention: 7_776_000,
            unverified_account_ttl: 604_800,
            dynamic_registration: DynamicRegistration::Off,
            token_exchange_audiences: TokenExchangeAudiences::Policy,
            registration_rate_limit: 10,
            registration_max_open: 1000,
            registration_unused_ttl: 86_400,
            client_id_metadata_documents: Switch::Off,
            client_id_metadata_hosts: Vec::new(),
            outbound_allow_cidrs: Vec::new(),
            outbound_allow_loopback: false,
            delivery_max_attempts: 8,
            delivery_backoff: 2,
            delivery_backoff_max: 3_600,
            upstream: BTreeMap::new(),
            trusted_issuer: BTreeMap::new(),
            authentik: None,
        }
    }
}

impl Config {
    pub fn issuer_is_https(&self) -> bool {
        self.issuer.starts_with("https://")
    }

    /// The audience that oxidp's own JSON API requires.
    pub fn api_audience(&self) -> String {
        format!("{}/api", self.issuer)
    }

    pub fn is_postgres(&self) -> bool {
        !self.database_url.starts_with("sqlite:")
    }
}
