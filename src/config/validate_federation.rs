//! Checks of the upstream, trusted issuer and Authentik sections; every error names the
//! variable to fix (`OXIDP_UPSTREAM__<NAME>__<FIELD>`).

use super::{Config, ConfigError, UpstreamConfig, UpstreamKind};

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

pub(super) fn validate_federation(config: &Config) -> Result<(), ConfigError> {
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

#[cfg(test)]
// figment's `Jail` fixes the closures' error type.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;
    use figment::Jail;

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
