//! Configuration: `OXIDP_*` environment variables over an optional TOML file (`OXIDP_CONFIG`).

use std::collections::BTreeMap;
use std::net::SocketAddr;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// A configuration problem; the CLI exits with code 2 and prints it.
#[derive(Debug, thiserror::Error)]
#[error("{variable}: {message}")]
pub struct ConfigError {
    pub variable: String,
    pub message: String,
}

impl ConfigError {
    pub fn new(variable: impl Into<String>, message: impl Into<String>) -> Self {
        Self { variable: variable.into(), message: message.into() }
    }
}

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
    /// Failed client authentications allowed per client_id per minute at the token endpoints.
    pub client_auth_failure_limit: i64,
    /// Token requests allowed per client per minute (0 = no limit).
    pub token_rate_limit: i64,
    pub max_body_bytes: usize,
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
            token_rate_limit: 0,
            max_body_bytes: 64 * 1024,
            upstream: BTreeMap::new(),
            trusted_issuer: BTreeMap::new(),
            authentik: None,
        }
    }
}

/// Keys whose environment value is a list: comma or whitespace separated.
const LIST_KEYS: [&str; 3] = ["trusted_proxies", "cors_origins", "signing_algs"];

impl Config {
    /// Loads defaults, then the TOML file named by `OXIDP_CONFIG`, then `OXIDP_*` variables.
    pub fn load() -> Result<Self, ConfigError> {
        Self::from_figment(Self::figment(std::env::var("OXIDP_CONFIG").ok().as_deref()))
    }

    fn figment(toml_path: Option<&str>) -> Figment {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = toml_path {
            figment = figment.merge(Toml::file_exact(path));
        }
        let env = Env::prefixed("OXIDP_")
            .ignore(&["CONFIG", "LOG"])
            .split("__")
            .map(|key| key.as_str().to_ascii_lowercase().into());
        figment.merge(ListEnv(env))
    }

    fn from_figment(figment: Figment) -> Result<Self, ConfigError> {
        let config: Config = figment.extract().map_err(|error| {
            let mut path = error.path.clone();
            // A missing nested setting (`OXIDP_UPSTREAM__X__KIND`) is named in full.
            if let figment::error::Kind::MissingField(field) = &error.kind {
                path.push(field.to_string());
            }
            let variable = if path.is_empty() {
                "configuration".to_string()
            } else {
                format!("OXIDP_{}", path.join("__").to_ascii_uppercase())
            };
            ConfigError::new(variable, error.kind.to_string())
        })?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let issuer =
            url::Url::parse(&self.issuer).map_err(|e| ConfigError::new("OXIDP_ISSUER", format!("not a URL: {e}")))?;
        if !matches!(issuer.scheme(), "http" | "https")
            || issuer.query().is_some()
            || issuer.fragment().is_some()
            || self.issuer.ends_with('/')
        {
            return Err(ConfigError::new(
                "OXIDP_ISSUER",
                "must be an http(s) URL without query, fragment or trailing slash",
            ));
        }
        if !(self.database_url.starts_with("sqlite:")
            || self.database_url.starts_with("postgres://")
            || self.database_url.starts_with("postgresql://"))
        {
            return Err(ConfigError::new("OXIDP_DATABASE_URL", "must start with sqlite: or postgres://"));
        }
        let positive = [
            ("OXIDP_ACCESS_TOKEN_TTL", self.access_token_ttl),
            ("OXIDP_ID_TOKEN_TTL", self.id_token_ttl),
            ("OXIDP_REFRESH_TOKEN_TTL", self.refresh_token_ttl),
            ("OXIDP_REFRESH_TOKEN_MAX_TTL", self.refresh_token_max_ttl),
            ("OXIDP_CODE_TTL", self.code_ttl),
            ("OXIDP_SESSION_TTL", self.session_ttl),
            ("OXIDP_SESSION_IDLE_TTL", self.session_idle_ttl),
            ("OXIDP_JWKS_MAX_AGE", self.jwks_max_age),
            ("OXIDP_KEY_REFRESH_INTERVAL", self.key_refresh_interval),
            ("OXIDP_LOGIN_ACCOUNT_LIMIT", self.login_account_limit),
            ("OXIDP_LOGIN_IP_LIMIT", self.login_ip_limit),
            ("OXIDP_LOGIN_LOCK_WINDOW", self.login_lock_window),
            ("OXIDP_CLIENT_AUTH_FAILURE_LIMIT", self.client_auth_failure_limit),
        ];
        for (name, value) in positive {
            if value <= 0 {
                return Err(ConfigError::new(name, "must be a positive number of seconds or attempts"));
            }
        }
        if self.refresh_reuse_grace < 0 || self.token_rate_limit < 0 {
            let name =
                if self.refresh_reuse_grace < 0 { "OXIDP_REFRESH_REUSE_GRACE" } else { "OXIDP_TOKEN_RATE_LIMIT" };
            return Err(ConfigError::new(name, "must not be negative"));
        }
        if self.login_free_failures < 0 || self.login_delay < 0 {
            let name = if self.login_free_failures < 0 { "OXIDP_LOGIN_FREE_FAILURES" } else { "OXIDP_LOGIN_DELAY" };
            return Err(ConfigError::new(name, "must not be negative"));
        }
        // The waits lead up to the lock; a wait as long as the lock window would be a lock.
        if self.login_delay > 0 && !(self.login_delay..self.login_lock_window).contains(&self.login_max_delay) {
            return Err(ConfigError::new(
                "OXIDP_LOGIN_MAX_DELAY",
                "must be at least OXIDP_LOGIN_DELAY and less than OXIDP_LOGIN_LOCK_WINDOW",
            ));
        }
        if self.refresh_token_max_ttl < self.refresh_token_ttl {
            return Err(ConfigError::new("OXIDP_REFRESH_TOKEN_MAX_TTL", "must be at least OXIDP_REFRESH_TOKEN_TTL"));
        }
        if !(2048..=8192).contains(&self.rsa_bits) || !self.rsa_bits.is_multiple_of(8) {
            return Err(ConfigError::new("OXIDP_RSA_BITS", "must be a multiple of 8 between 2048 and 8192"));
        }
        if let Some(unknown) = self.signing_algs.iter().find(|alg| !crate::keys::SUPPORTED_ALGS.contains(&alg.as_str()))
        {
            return Err(ConfigError::new(
                "OXIDP_SIGNING_ALGS",
                format!("{unknown} is not one of {}", crate::keys::SUPPORTED_ALGS.join(", ")),
            ));
        }
        if !self.signing_algs.iter().any(|alg| alg == crate::keys::DEFAULT_ALG) {
            return Err(ConfigError::new("OXIDP_SIGNING_ALGS", "must include RS256 (the default algorithm)"));
        }
        if self.max_body_bytes < 1024 {
            return Err(ConfigError::new("OXIDP_MAX_BODY_BYTES", "must be at least 1024"));
        }
        validate_federation(self)
    }

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

// Upstream login, trusted token issuers and Authentik (SPEC §2, §7, §9).

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UpstreamKind {
    /// Any OpenID Connect issuer (discovery from `issuer`), e.g. Authentik.
    Oidc,
    /// Google: OpenID Connect at `https://accounts.google.com` unless `issuer` says otherwise.
    Google,
    /// GitHub (or GitHub Enterprise): OAuth 2 with PKCE, then its user and emails API.
    Github,
}

pub const GOOGLE_ISSUER: &str = "https://accounts.google.com";
pub const GITHUB_AUTH_URL: &str = "https://github.com/login/oauth/authorize";
pub const GITHUB_TOKEN_URL: &str = "https://github.com/login/oauth/access_token";
pub const GITHUB_API_URL: &str = "https://api.github.com";
/// Seconds an outgoing request to an upstream may take, unless configured.
pub const DEFAULT_UPSTREAM_TIMEOUT: u64 = 10;

/// One upstream login provider, `OXIDP_UPSTREAM__<NAME>__*`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    pub kind: UpstreamKind,
    /// Kept verbatim: Authentik's issuers end with a slash, and `iss` is compared exactly.
    #[serde(default, deserialize_with = "lenient::option_string")]
    pub issuer: Option<String>,
    #[serde(deserialize_with = "lenient::string")]
    pub client_id: String,
    #[serde(default, deserialize_with = "lenient::option_string")]
    pub client_secret: Option<String>,
    /// Space- or comma-separated in the environment.
    #[serde(default, deserialize_with = "lenient::option_list")]
    pub scopes: Option<Vec<String>>,
    /// Whether the provider's verified emails may link to existing accounts (default: on for
    /// google and github, off for oidc).
    #[serde(default)]
    pub trust_email: Option<bool>,
    /// GitHub only: authorization, token and API URLs (GitHub Enterprise).
    #[serde(default, deserialize_with = "lenient::option_string")]
    pub auth_url: Option<String>,
    #[serde(default, deserialize_with = "lenient::option_string")]
    pub token_url: Option<String>,
    #[serde(default, deserialize_with = "lenient::option_string")]
    pub api_url: Option<String>,
    /// The login button's text (default: Google, GitHub or the name).
    #[serde(default, deserialize_with = "lenient::option_string")]
    pub label: Option<String>,
    /// Seconds an upstream request may take (default 10).
    #[serde(default)]
    pub timeout: Option<u64>,
}

impl UpstreamConfig {
    pub fn trusts_email(&self) -> bool {
        self.trust_email.unwrap_or(self.kind != UpstreamKind::Oidc)
    }

    /// The OIDC issuer (Google's by default); none for GitHub.
    pub fn issuer_url(&self) -> Option<&str> {
        match self.kind {
            UpstreamKind::Google => Some(self.issuer.as_deref().unwrap_or(GOOGLE_ISSUER)),
            UpstreamKind::Oidc => self.issuer.as_deref(),
            UpstreamKind::Github => None,
        }
    }

    pub fn scope_list(&self) -> Vec<String> {
        match &self.scopes {
            Some(scopes) => scopes.clone(),
            None => match self.kind {
                UpstreamKind::Github => vec!["read:user".into(), "user:email".into()],
                _ => vec!["openid".into(), "email".into(), "profile".into()],
            },
        }
    }

    pub fn timeout_seconds(&self) -> u64 {
        self.timeout.unwrap_or(DEFAULT_UPSTREAM_TIMEOUT)
    }
}

/// An issuer whose JWT access tokens the account API accepts, `OXIDP_TRUSTED_ISSUER__<NAME>__*`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustedIssuerConfig {
    /// Compared exactly with the tokens' `iss`.
    #[serde(deserialize_with = "lenient::string")]
    pub issuer: String,
    /// Required: a token must name it in `aud`.
    #[serde(deserialize_with = "lenient::string")]
    pub audience: String,
    /// Default: the `jwks_uri` of the issuer's discovery document.
    #[serde(default, deserialize_with = "lenient::option_string")]
    pub jwks_url: Option<String>,
    /// Whether its verified emails may link to existing accounts (default off).
    #[serde(default)]
    pub trust_email: Option<bool>,
    #[serde(default)]
    pub timeout: Option<u64>,
}

/// Authentik's admin API, `OXIDP_AUTHENTIK__*`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthentikConfig {
    /// e.g. `https://authentik.example.com` (the API is under `/api/v3/`).
    #[serde(default, deserialize_with = "lenient::option_string")]
    pub base_url: Option<String>,
    /// An Authentik API token allowed to view, add and change users.
    #[serde(default, deserialize_with = "lenient::option_string")]
    pub token: Option<String>,
    /// The upstream provider name of Authentik identities (default `authentik`).
    #[serde(default, deserialize_with = "lenient::option_string")]
    pub provider: Option<String>,
    #[serde(default)]
    pub timeout: Option<u64>,
}

pub const DEFAULT_AUTHENTIK_PROVIDER: &str = "authentik";

impl Config {
    /// The provider that internal routes name when a request names none.
    pub fn authentik_provider(&self) -> &str {
        self.authentik.as_ref().and_then(|a| a.provider.as_deref()).unwrap_or(DEFAULT_AUTHENTIK_PROVIDER)
    }
}

fn variable(prefix: &str, name: &str, field: &str) -> String {
    format!("OXIDP_{prefix}__{}__{}", name.to_ascii_uppercase(), field.to_ascii_uppercase())
}

fn is_loopback_host(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// An https URL (plain http only on loopback, for local tests), without fragment or credentials.
fn check_outgoing_url(name: &str, value: &str) -> Result<url::Url, ConfigError> {
    let url = url::Url::parse(value).map_err(|e| ConfigError::new(name, format!("not a URL: {e}")))?;
    let scheme_ok = url.scheme() == "https" || (url.scheme() == "http" && is_loopback_host(&url));
    if !scheme_ok || url.fragment().is_some() || !url.username().is_empty() || url.password().is_some() {
        return Err(ConfigError::new(
            name,
            "must be an https URL (http only on 127.0.0.1, [::1] or localhost), without fragment or credentials",
        ));
    }
    Ok(url)
}

fn check_name(name: &str, prefix: &str) -> Result<(), ConfigError> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if valid {
        Ok(())
    } else {
        Err(ConfigError::new(
            format!("OXIDP_{prefix}__{}", name.to_ascii_uppercase()),
            "the name must be 1 to 64 of a-z, 0-9, _ and -",
        ))
    }
}

fn required(name: String, value: Option<&str>) -> Result<(), ConfigError> {
    match value {
        Some(value) if !value.trim().is_empty() => Ok(()),
        _ => Err(ConfigError::new(name, "is required")),
    }
}

fn check_timeout(name: String, timeout: Option<u64>) -> Result<(), ConfigError> {
    match timeout {
        Some(seconds) if !(1..=300).contains(&seconds) => Err(ConfigError::new(name, "must be 1 to 300 seconds")),
        _ => Ok(()),
    }
}

fn validate_federation(config: &Config) -> Result<(), ConfigError> {
    for (name, upstream) in &config.upstream {
        check_name(name, "UPSTREAM")?;
        let var = |field: &str| variable("UPSTREAM", name, field);
        required(var("client_id"), Some(&upstream.client_id))?;
        match upstream.kind {
            UpstreamKind::Oidc | UpstreamKind::Google => {
                if upstream.kind == UpstreamKind::Oidc {
                    required(var("issuer"), upstream.issuer.as_deref())?;
                } else {
                    required(var("client_secret"), upstream.client_secret.as_deref())?;
                }
                let issuer = check_outgoing_url(&var("issuer"), upstream.issuer_url().unwrap_or_default())?;
                if issuer.query().is_some() {
                    return Err(ConfigError::new(var("issuer"), "must not have a query"));
                }
                for (field, value) in [
                    ("auth_url", &upstream.auth_url),
                    ("token_url", &upstream.token_url),
                    ("api_url", &upstream.api_url),
                ] {
                    if value.is_some() {
                        return Err(ConfigError::new(var(field), "applies to kind github only (OIDC uses discovery)"));
                    }
                }
                if !upstream.scope_list().iter().any(|scope| scope == "openid") {
                    return Err(ConfigError::new(var("scopes"), "must include openid"));
                }
            }
            UpstreamKind::Github => {
                required(var("client_secret"), upstream.client_secret.as_deref())?;
                if upstream.issuer.is_some() {
                    return Err(ConfigError::new(var("issuer"), "does not apply to kind github (use the URLs)"));
                }
                for (field, value) in [
                    ("auth_url", &upstream.auth_url),
                    ("token_url", &upstream.token_url),
                    ("api_url", &upstream.api_url),
                ] {
                    if let Some(value) = value {
                        check_outgoing_url(&var(field), value)?;
                    }
                }
            }
        }
        check_timeout(var("timeout"), upstream.timeout)?;
    }
    for (name, trusted) in &config.trusted_issuer {
        check_name(name, "TRUSTED_ISSUER")?;
        let var = |field: &str| variable("TRUSTED_ISSUER", name, field);
        required(var("issuer"), Some(&trusted.issuer))?;
        check_outgoing_url(&var("issuer"), &trusted.issuer)?;
        required(var("audience"), Some(&trusted.audience))?;
        if let Some(jwks_url) = &trusted.jwks_url {
            check_outgoing_url(&var("jwks_url"), jwks_url)?;
        }
        if trusted.issuer == config.issuer {
            return Err(ConfigError::new(var("issuer"), "must not be oxidp's own issuer"));
        }
        // Identities are keyed by the configured name: one name, one issuer.
        if let Some(issuer) = config.upstream.get(name).and_then(UpstreamConfig::issuer_url)
            && issuer != trusted.issuer
        {
            return Err(ConfigError::new(
                var("issuer"),
                format!("differs from OXIDP_UPSTREAM__{}__ISSUER of the same name", name.to_ascii_uppercase()),
            ));
        }
        check_timeout(var("timeout"), trusted.timeout)?;
    }
    if let Some(authentik) = &config.authentik {
        match (&authentik.base_url, &authentik.token) {
            (Some(base_url), Some(_)) => {
                check_outgoing_url("OXIDP_AUTHENTIK__BASE_URL", base_url)?;
                required("OXIDP_AUTHENTIK__TOKEN".into(), authentik.token.as_deref())?;
            }
            (None, None) => {}
            (Some(_), None) => return Err(ConfigError::new("OXIDP_AUTHENTIK__TOKEN", "is required with BASE_URL")),
            (None, Some(_)) => return Err(ConfigError::new("OXIDP_AUTHENTIK__BASE_URL", "is required with TOKEN")),
        }
        if let Some(provider) = &authentik.provider {
            let valid = !provider.is_empty()
                && provider.len() <= 128
                && provider.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.:*-".contains(&b));
            if !valid {
                return Err(ConfigError::new("OXIDP_AUTHENTIK__PROVIDER", "1 to 128 of A-Z a-z 0-9 _ . : * -"));
            }
        }
        check_timeout("OXIDP_AUTHENTIK__TIMEOUT".into(), authentik.timeout)?;
    }
    Ok(())
}

/// Environment values arrive typed (`12345` is a number, `true` a boolean): text settings
/// accept any scalar as its text, and lists accept one space- or comma-separated string.
mod lenient {
    use serde::{Deserialize, Deserializer};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Scalar {
        Text(String),
        Unsigned(u64),
        Signed(i64),
        Float(f64),
        Flag(bool),
    }

    impl Scalar {
        fn text(self) -> String {
            match self {
                Scalar::Text(text) => text,
                Scalar::Unsigned(n) => n.to_string(),
                Scalar::Signed(n) => n.to_string(),
                Scalar::Float(n) => n.to_string(),
                Scalar::Flag(b) => b.to_string(),
            }
        }
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum List {
        Items(Vec<Scalar>),
        One(Scalar),
    }

    pub fn string<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
        Scalar::deserialize(deserializer).map(Scalar::text)
    }

    pub fn option_string<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
        Ok(Option::<Scalar>::deserialize(deserializer)?.map(Scalar::text))
    }

    pub fn option_list<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Vec<String>>, D::Error> {
        Ok(Option::<List>::deserialize(deserializer)?.map(|list| match list {
            List::Items(items) => items.into_iter().map(Scalar::text).collect(),
            List::One(text) => text
                .text()
                .split(|c: char| c == ',' || c.is_whitespace())
                .filter(|item| !item.is_empty())
                .map(str::to_string)
                .collect(),
        }))
    }
}

/// Wraps the environment provider so list-valued keys accept `a,b c` as well as TOML arrays.
struct ListEnv(Env);

impl figment::Provider for ListEnv {
    fn metadata(&self) -> figment::Metadata {
        self.0.metadata()
    }

    fn data(&self) -> Result<figment::value::Map<figment::Profile, figment::value::Dict>, figment::Error> {
        let mut data = self.0.data()?;
        for dict in data.values_mut() {
            for key in LIST_KEYS {
                if let Some(figment::value::Value::String(tag, text)) = dict.get(key).cloned() {
                    let items = text
                        .split(|c: char| c == ',' || c.is_whitespace())
                        .filter(|item| !item.is_empty())
                        .map(|item| figment::value::Value::String(tag, item.to_string()))
                        .collect();
                    dict.insert(key.to_string(), figment::value::Value::Array(tag, items));
                }
            }
        }
        Ok(data)
    }
}

#[cfg(test)]
// figment's `Jail` fixes the closures' error type.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;
    use figment::Jail;

    #[test]
    fn defaults_start_with_nothing_configured() {
        Jail::expect_with(|_| {
            let config = Config::from_figment(Config::figment(None)).expect("defaults are valid");
            assert_eq!(config.issuer, "http://127.0.0.1:8080");
            assert_eq!(config.access_token_ttl, 900);
            assert_eq!(config.refresh_reuse_grace, 5);
            Ok(())
        });
    }

    #[test]
    fn bad_value_names_the_variable() {
        Jail::expect_with(|jail| {
            jail.set_env("OXIDP_ACCESS_TOKEN_TTL", "soon");
            let error = Config::from_figment(Config::figment(None)).expect_err("must fail");
            assert_eq!(error.variable, "OXIDP_ACCESS_TOKEN_TTL");
            jail.set_env("OXIDP_ACCESS_TOKEN_TTL", "-1");
            let error = Config::from_figment(Config::figment(None)).expect_err("must fail");
            assert_eq!(error.variable, "OXIDP_ACCESS_TOKEN_TTL");
            Ok(())
        });
    }

    #[test]
    fn signing_algorithms_are_checked() {
        Jail::expect_with(|jail| {
            jail.set_env("OXIDP_SIGNING_ALGS", "RS256 ES256");
            let config = Config::from_figment(Config::figment(None)).expect("two algorithms");
            assert_eq!(config.signing_algs, ["RS256", "ES256"]);
            for (value, says) in [("RS256,HS256", "HS256 is not one of"), ("ES256,EdDSA", "must include RS256")] {
                jail.set_env("OXIDP_SIGNING_ALGS", value);
                let error = Config::from_figment(Config::figment(None)).expect_err("must fail");
                assert_eq!(error.variable, "OXIDP_SIGNING_ALGS");
                assert!(error.message.contains(says), "{value}: {}", error.message);
            }
            Ok(())
        });
    }

    #[test]
    fn login_waits_are_configurable_and_stay_below_the_lock() {
        Jail::expect_with(|jail| {
            jail.set_env("OXIDP_LOGIN_FREE_FAILURES", "4");
            jail.set_env("OXIDP_LOGIN_DELAY", "3");
            jail.set_env("OXIDP_LOGIN_MAX_DELAY", "120");
            let config = Config::from_figment(Config::figment(None)).expect("valid");
            assert_eq!((config.login_free_failures, config.login_delay, config.login_max_delay), (4, 3, 120));
            jail.set_env("OXIDP_LOGIN_MAX_DELAY", "900");
            let error = Config::from_figment(Config::figment(None)).expect_err("as long as the lock window");
            assert_eq!(error.variable, "OXIDP_LOGIN_MAX_DELAY");
            jail.set_env("OXIDP_LOGIN_MAX_DELAY", "2");
            let error = Config::from_figment(Config::figment(None)).expect_err("below the first wait");
            assert_eq!(error.variable, "OXIDP_LOGIN_MAX_DELAY");
            jail.set_env("OXIDP_LOGIN_DELAY", "0");
            Config::from_figment(Config::figment(None)).expect("no waits: the maximum does not matter");
            jail.set_env("OXIDP_LOGIN_FREE_FAILURES", "-1");
            let error = Config::from_figment(Config::figment(None)).expect_err("negative");
            assert_eq!(error.variable, "OXIDP_LOGIN_FREE_FAILURES");
            Ok(())
        });
    }

    #[test]
    fn lists_and_toml_file() {
        Jail::expect_with(|jail| {
            jail.create_file("oxidp.toml", "issuer = \"https://id.example.com\"\ncode_ttl = 30\n")?;
            jail.set_env("OXIDP_TRUSTED_PROXIES", "10.0.0.0/8, 192.168.1.1/32");
            jail.set_env("OXIDP_CODE_TTL", "45");
            let config = Config::from_figment(Config::figment(Some("oxidp.toml"))).expect("valid");
            assert_eq!(config.issuer, "https://id.example.com");
            assert_eq!(config.code_ttl, 45, "environment wins over the file");
            assert_eq!(config.trusted_proxies.len(), 2);
            Ok(())
        });
    }

    #[test]
    fn issuer_with_trailing_slash_is_refused() {
        Jail::expect_with(|jail| {
            jail.set_env("OXIDP_ISSUER", "https://id.example.com/");
            let error = Config::from_figment(Config::figment(None)).expect_err("must fail");
            assert_eq!(error.variable, "OXIDP_ISSUER");
            Ok(())
        });
    }

    #[test]
    fn upstreams_trusted_issuers_and_authentik_from_the_environment() {
        Jail::expect_with(|jail| {
            jail.set_env("OXIDP_UPSTREAM__AUTHENTIK__KIND", "oidc");
            jail.set_env("OXIDP_UPSTREAM__AUTHENTIK__ISSUER", "https://auth.example.com/application/o/oxidp/");
            jail.set_env("OXIDP_UPSTREAM__AUTHENTIK__CLIENT_ID", "12345");
            jail.set_env("OXIDP_UPSTREAM__AUTHENTIK__SCOPES", "openid email, profile");
            jail.set_env("OXIDP_UPSTREAM__GITHUB__KIND", "github");
            jail.set_env("OXIDP_UPSTREAM__GITHUB__CLIENT_ID", "Iv1.abc");
            jail.set_env("OXIDP_UPSTREAM__GITHUB__CLIENT_SECRET", "s3cret");
            jail.set_env("OXIDP_TRUSTED_ISSUER__AUTHENTIK__ISSUER", "https://auth.example.com/application/o/oxidp/");
            jail.set_env("OXIDP_TRUSTED_ISSUER__AUTHENTIK__AUDIENCE", "oxidp");
            jail.set_env("OXIDP_AUTHENTIK__BASE_URL", "https://auth.example.com");
            jail.set_env("OXIDP_AUTHENTIK__TOKEN", "token");
            let config = Config::from_figment(Config::figment(None)).expect("valid");
            let authentik = &config.upstream["authentik"];
            assert_eq!(authentik.issuer.as_deref(), Some("https://auth.example.com/application/o/oxidp/"));
            assert_eq!(authentik.client_id, "12345", "a numeric value is kept as text");
            assert_eq!(authentik.scope_list(), ["openid", "email", "profile"]);
            assert!(!authentik.trusts_email(), "generic issuers are not trusted for email by default");
            assert!(config.upstream["github"].trusts_email());
            assert_eq!(config.trusted_issuer["authentik"].audience, "oxidp");
            assert_eq!(config.authentik_provider(), "authentik");
            Ok(())
        });
    }

    #[test]
    fn federation_mistakes_name_the_variable() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (
                &[("OXIDP_UPSTREAM__CORP__KIND", "oidc"), ("OXIDP_UPSTREAM__CORP__CLIENT_ID", "x")],
                "OXIDP_UPSTREAM__CORP__ISSUER",
            ),
            (
                &[
                    ("OXIDP_UPSTREAM__CORP__KIND", "oidc"),
                    ("OXIDP_UPSTREAM__CORP__CLIENT_ID", "x"),
                    ("OXIDP_UPSTREAM__CORP__ISSUER", "http://idp.example.com"),
                ],
                "OXIDP_UPSTREAM__CORP__ISSUER",
            ),
            (
                &[("OXIDP_UPSTREAM__GH__KIND", "github"), ("OXIDP_UPSTREAM__GH__CLIENT_ID", "x")],
                "OXIDP_UPSTREAM__GH__CLIENT_SECRET",
            ),
            (
                &[("OXIDP_UPSTREAM__GH__KIND", "gitlab"), ("OXIDP_UPSTREAM__GH__CLIENT_ID", "x")],
                "OXIDP_UPSTREAM__GH__KIND",
            ),
            (
                &[("OXIDP_TRUSTED_ISSUER__CORP__ISSUER", "https://idp.example.com")],
                "OXIDP_TRUSTED_ISSUER__CORP__AUDIENCE",
            ),
            (&[("OXIDP_AUTHENTIK__BASE_URL", "https://auth.example.com")], "OXIDP_AUTHENTIK__TOKEN"),
        ];
        for (variables, expected) in cases {
            Jail::expect_with(|jail| {
                for (key, value) in *variables {
                    jail.set_env(key, value);
                }
                let error = Config::from_figment(Config::figment(None)).expect_err("must fail");
                assert_eq!(error.variable, *expected, "{error}");
                Ok(())
            });
        }
    }

    #[test]
    fn loopback_http_issuers_are_allowed_for_tests() {
        Jail::expect_with(|jail| {
            jail.set_env("OXIDP_UPSTREAM__A__KIND", "oidc");
            jail.set_env("OXIDP_UPSTREAM__A__ISSUER", "http://127.0.0.1:4000");
            jail.set_env("OXIDP_UPSTREAM__A__CLIENT_ID", "client");
            Config::from_figment(Config::figment(None)).expect("loopback http is fine");
            Ok(())
        });
    }
}
