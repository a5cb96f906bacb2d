//! Upstream login, trusted token issuers and Authentik (SPEC §2, §7, §9): their settings,
//! defaults and derived values. Their checks are in `validate_federation`.

use serde::{Deserialize, Serialize};

use super::Config;
use super::lenient;

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
    /// DANGEROUS, default off: use emails the provider does not assert verified (or is not
    /// trusted for) for the new account, password resets and link offers. Anyone with an account
    /// there can then claim any address and pre-hijack the local account of that address.
    #[serde(default)]
    pub trust_unverified_email: bool,
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
    /// DANGEROUS, default off: as for upstreams, use emails that are not proven.
    #[serde(default)]
    pub trust_unverified_email: bool,
    #[serde(default)]
    pub timeout: Option<u64>,
    /// The JWT `typ` values accepted (default `at+jwt`): never the issuer's ID tokens unless
    /// listed here.
    #[serde(default, deserialize_with = "lenient::option_list")]
    pub token_types: Option<Vec<String>>,
}

impl TrustedIssuerConfig {
    /// Whether a token of this `typ` header is accepted (`application/` may be left out, RFC 7515 §4.1.9).
    pub fn accepts_type(&self, typ: Option<&str>) -> bool {
        let normal = |t: &str| t.trim().trim_start_matches("application/").to_ascii_lowercase();
        let Some(typ) = typ.map(normal) else { return false };
        match &self.token_types {
            Some(types) => types.iter().any(|t| normal(t) == typ),
            None => typ == "at+jwt",
        }
    }
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

#[cfg(test)]
// figment's `Jail` fixes the closures' error type.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;
    use figment::Jail;

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
}
