//! The configured upstream providers (`OXIDP_UPSTREAM__*`), built once at start.

use super::{github, oidc, outbound};
use crate::config::{Config, UpstreamKind};

// Built once at start and never moved: the size difference costs nothing.
#[allow(clippy::large_enum_variant)]
pub(super) enum Upstream {
    Oidc(oidc::OidcUpstream),
    Github(github::GithubUpstream),
}

pub struct Provider {
    pub name: String,
    pub label: String,
    pub trust_email: bool,
    /// `trust_unverified_email`: dangerous opt-in, see `linking`.
    pub trust_unverified_email: bool,
    pub(super) upstream: Upstream,
}

/// The configured upstream providers, built once at start.
#[derive(Default)]
pub struct Registry {
    /// In the configuration's (alphabetical) order: the login page's buttons follow it.
    providers: Vec<Provider>,
}

#[derive(Debug, thiserror::Error)]
#[error("{variable}: {message}")]
pub struct RegistryError {
    pub variable: String,
    pub message: String,
}

impl Registry {
    pub fn build(config: &Config) -> Result<Registry, RegistryError> {
        let mut providers = Vec::new();
        for (name, upstream) in &config.upstream {
            let error = |message: String| RegistryError {
                variable: format!("OXIDP_UPSTREAM__{}", name.to_ascii_uppercase()),
                message,
            };
            let http = outbound::client(upstream.timeout_seconds()).map_err(|e| error(e.to_string()))?;
            let redirect_uri = callback_url(config, name);
            let (built, default_label) = match upstream.kind {
                UpstreamKind::Oidc | UpstreamKind::Google => {
                    let google = upstream.kind == UpstreamKind::Google;
                    let oidc = oidc::OidcUpstream::new(name, upstream, &redirect_uri, http, google).map_err(error)?;
                    (Upstream::Oidc(oidc), if google { "Google".to_string() } else { title_case(name) })
                }
                UpstreamKind::Github => {
                    let github = github::GithubUpstream::new(name, upstream, &redirect_uri, http).map_err(error)?;
                    (Upstream::Github(github), "GitHub".to_string())
                }
            };
            providers.push(Provider {
                name: name.clone(),
                label: upstream.label.clone().unwrap_or(default_label),
                trust_email: upstream.trusts_email(),
                trust_unverified_email: upstream.trust_unverified_email,
                upstream: built,
            });
        }
        Ok(Registry { providers })
    }

    pub fn get(&self, name: &str) -> Option<&Provider> {
        self.providers.iter().find(|provider| provider.name == name)
    }

    pub fn providers(&self) -> impl Iterator<Item = &Provider> {
        self.providers.iter()
    }

    /// The provider names a browser can sign in with.
    pub fn names(&self) -> Vec<String> {
        self.providers.iter().map(|provider| provider.name.clone()).collect()
    }
}

fn title_case(name: &str) -> String {
    let mut chars = name.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The redirect URI to register at the upstream.
pub fn callback_url(config: &Config, provider: &str) -> String {
    format!("{}/login/{provider}/callback", config.issuer)
}
