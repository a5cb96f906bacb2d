//! Configuration: `OXIDP_*` environment variables over an optional TOML file (`OXIDP_CONFIG`).

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
    /// Failed client authentications allowed per client_id per minute at the token endpoints.
    pub client_auth_failure_limit: i64,
    /// Token requests allowed per client per minute (0 = no limit).
    pub token_rate_limit: i64,
    pub max_body_bytes: usize,
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
            client_auth_failure_limit: 20,
            token_rate_limit: 0,
            max_body_bytes: 64 * 1024,
        }
    }
}

/// Keys whose environment value is a list: comma or whitespace separated.
const LIST_KEYS: [&str; 2] = ["trusted_proxies", "cors_origins"];

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
            let variable = if error.path.is_empty() {
                "configuration".to_string()
            } else {
                format!("OXIDP_{}", error.path.join("__").to_ascii_uppercase())
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
        if self.refresh_token_max_ttl < self.refresh_token_ttl {
            return Err(ConfigError::new("OXIDP_REFRESH_TOKEN_MAX_TTL", "must be at least OXIDP_REFRESH_TOKEN_TTL"));
        }
        if !(2048..=8192).contains(&self.rsa_bits) || !self.rsa_bits.is_multiple_of(8) {
            return Err(ConfigError::new("OXIDP_RSA_BITS", "must be a multiple of 8 between 2048 and 8192"));
        }
        if self.max_body_bytes < 1024 {
            return Err(ConfigError::new("OXIDP_MAX_BODY_BYTES", "must be at least 1024"));
        }
        Ok(())
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
}
