//! Checks of the settings that figment's types cannot express: URLs, ranges, combinations.

use super::validate_federation::validate_federation;
use super::{Config, ConfigError};

impl Config {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
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
            ("OXIDP_DEVICE_CODE_TTL", self.device_code_ttl),
            ("OXIDP_DEVICE_CODE_INTERVAL", self.device_code_interval),
            ("OXIDP_SESSION_TTL", self.session_ttl),
            ("OXIDP_SESSION_IDLE_TTL", self.session_idle_ttl),
            ("OXIDP_JWKS_MAX_AGE", self.jwks_max_age),
            ("OXIDP_KEY_REFRESH_INTERVAL", self.key_refresh_interval),
            ("OXIDP_LOGIN_ACCOUNT_LIMIT", self.login_account_limit),
            ("OXIDP_LOGIN_IP_LIMIT", self.login_ip_limit),
            ("OXIDP_LOGIN_LOCK_WINDOW", self.login_lock_window),
            ("OXIDP_CLIENT_AUTH_FAILURE_LIMIT", self.client_auth_failure_limit),
            ("OXIDP_STEP_UP_MAX_AGE", self.step_up_max_age),
            ("OXIDP_MAIL_IP_LIMIT", self.mail_ip_limit),
            ("OXIDP_MAIL_EMAIL_LIMIT", self.mail_email_limit),
            ("OXIDP_MAIL_LIMIT_WINDOW", self.mail_limit_window),
            ("OXIDP_PENDING_REQUESTS_PER_IP", self.pending_requests_per_ip),
            ("OXIDP_AUDIT_RETENTION", self.audit_retention),
            ("OXIDP_DELIVERY_MAX_ATTEMPTS", self.delivery_max_attempts),
            ("OXIDP_DELIVERY_BACKOFF", self.delivery_backoff),
            ("OXIDP_DELIVERY_BACKOFF_MAX", self.delivery_backoff_max),
            ("OXIDP_UNVERIFIED_ACCOUNT_TTL", self.unverified_account_ttl),
            ("OXIDP_REGISTRATION_RATE_LIMIT", self.registration_rate_limit),
            ("OXIDP_REGISTRATION_MAX_OPEN", self.registration_max_open),
            ("OXIDP_REGISTRATION_UNUSED_TTL", self.registration_unused_ttl),
            ("OXIDP_DPOP_IAT_LEEWAY", self.dpop_iat_leeway),
        ];
        for (name, value) in positive {
            if value <= 0 {
                return Err(ConfigError::new(name, "must be a positive number of seconds or attempts"));
            }
        }
        if self.kv_max_entries < 100 {
            return Err(ConfigError::new("OXIDP_KV_MAX_ENTRIES", "must be at least 100"));
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
}

#[cfg(test)]
// figment's `Jail` fixes the closures' error type.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;
    use figment::Jail;

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
    fn issuer_with_trailing_slash_is_refused() {
        Jail::expect_with(|jail| {
            jail.set_env("OXIDP_ISSUER", "https://id.example.com/");
            let error = Config::from_figment(Config::figment(None)).expect_err("must fail");
            assert_eq!(error.variable, "OXIDP_ISSUER");
            Ok(())
        });
    }
}
