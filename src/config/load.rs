//! Where settings come from: defaults, then the TOML file, then `OXIDP_*` variables.

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};

use super::{Config, ConfigError};

/// Keys whose environment value is a list: comma or whitespace separated.
const LIST_KEYS: [&str; 5] =
    ["trusted_proxies", "cors_origins", "signing_algs", "outbound_allow_cidrs", "client_id_metadata_hosts"];

impl Config {
    /// Loads defaults, then the TOML file named by `OXIDP_CONFIG`, then `OXIDP_*` variables
    /// other than Kubernetes service links.
    pub fn load() -> Result<Self, ConfigError> {
        Self::from_figment(Self::figment(std::env::var("OXIDP_CONFIG").ok().as_deref()))
    }

    pub(super) fn figment(toml_path: Option<&str>) -> Figment {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = toml_path {
            figment = figment.merge(Toml::file_exact(path));
        }
        // Kubernetes service links (`OXIDP_SERVICE_HOST=10.0.0.1`, ...) are not settings.
        let links: Vec<String> = super::service_links::in_environment()
            .into_iter()
            .filter_map(|name| name.strip_prefix("OXIDP_").map(str::to_string))
            .collect();
        let env = Env::prefixed("OXIDP_")
            .filter(move |key| !links.iter().any(|link| link == key.as_str()))
            .ignore(&["CONFIG", "LOG"])
            .split("__")
            .map(|key| key.as_str().to_ascii_lowercase().into());
        figment.merge(ListEnv(env))
    }

    pub(super) fn from_figment(figment: Figment) -> Result<Self, ConfigError> {
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
            assert!(config.outbound_allow_cidrs.is_empty() && !config.outbound_allow_loopback, "defaults");
            Ok(())
        });
    }

    #[test]
    fn dpop_settings() {
        Jail::expect_with(|jail| {
            let config = Config::from_figment(Config::figment(None)).expect("defaults");
            assert_eq!((config.dpop_nonces, config.dpop_iat_leeway), (crate::config::Switch::Off, 60));
            jail.set_env("OXIDP_DPOP_NONCES", "on");
            jail.set_env("OXIDP_DPOP_IAT_LEEWAY", "30");
            let config = Config::from_figment(Config::figment(None)).expect("valid");
            assert_eq!((config.dpop_nonces, config.dpop_iat_leeway), (crate::config::Switch::On, 30));
            jail.set_env("OXIDP_DPOP_IAT_LEEWAY", "0");
            let error = Config::from_figment(Config::figment(None)).expect_err("must fail");
            assert_eq!(error.variable, "OXIDP_DPOP_IAT_LEEWAY");
            Ok(())
        });
    }

    #[test]
    fn outbound_settings() {
        Jail::expect_with(|jail| {
            jail.set_env("OXIDP_OUTBOUND_ALLOW_CIDRS", "10.20.0.0/16, fd00::/8");
            jail.set_env("OXIDP_OUTBOUND_ALLOW_LOOPBACK", "true");
            let config = Config::from_figment(Config::figment(None)).expect("valid");
            assert_eq!(config.outbound_allow_cidrs.len(), 2);
            assert!(config.outbound_allow_loopback);
            jail.set_env("OXIDP_OUTBOUND_ALLOW_CIDRS", "not-a-network");
            let error = Config::from_figment(Config::figment(None)).expect_err("must fail");
            assert!(error.variable.starts_with("OXIDP_OUTBOUND_ALLOW_CIDRS"), "{}", error.variable);
            Ok(())
        });
    }

    #[test]
    fn kubernetes_service_links_are_ignored_and_typos_are_not() {
        Jail::expect_with(|jail| {
            for (name, value) in [
                ("OXIDP_SERVICE_HOST", "10.96.0.20"),
                ("OXIDP_SERVICE_PORT", "80"),
                ("OXIDP_SERVICE_PORT_HTTP", "80"),
                ("OXIDP_PORT", "tcp://10.96.0.20:80"),
                ("OXIDP_PORT_80_TCP", "tcp://10.96.0.20:80"),
                ("OXIDP_PORT_80_TCP_PROTO", "tcp"),
                ("OXIDP_PORT_80_TCP_PORT", "80"),
                ("OXIDP_PORT_80_TCP_ADDR", "10.96.0.20"),
                ("OXIDP_METRICS_SERVICE_HOST", "10.96.0.21"),
                ("OXIDP_METRICS_PORT_9100_TCP_ADDR", "10.96.0.21"),
            ] {
                jail.set_env(name, value);
            }
            jail.set_env("OXIDP_CODE_TTL", "45");
            let config = Config::from_figment(Config::figment(None)).expect("service links are not settings");
            assert_eq!(config.code_ttl, 45);
            jail.set_env("OXIDP_PORT", "8080");
            let error = Config::from_figment(Config::figment(None)).expect_err("OXIDP_PORT=8080 is a typo");
            assert!(error.to_string().contains("port"), "{error}");
            Ok(())
        });
    }
}
