//! Outgoing requests to URLs that an unauthenticated or dynamically registered party supplied
//! (metadata documents, `jwks_uri`, `sector_identifier_uri`, `backchannel_logout_uri`): one
//! rule for all of them (issue #14 rule 3).
//!
//! - `https` only; plain `http` only towards addresses the deployment allowed explicitly
//!   (`OXIDP_OUTBOUND_ALLOW_CIDRS`, or loopback with `OXIDP_OUTBOUND_ALLOW_LOOPBACK=true`);
//! - never to a private, loopback, link-local or otherwise special address unless allowed, as
//!   checked on the addresses actually connected to: the client's resolver drops forbidden
//!   addresses, and an IP-literal URL is checked before any connection; no proxy is used;
//! - no redirects followed; bounded response size and total time.
//!
//! URLs set by administrators do not go through here: they may point at private networks.

pub mod address;
mod resolver;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

pub use address::{OutboundPolicy, canonical, is_explicitly_allowed, is_forbidden, is_loopback_host, is_loopback_ip};
use reqwest::header::{ACCEPT, HeaderMap};
use resolver::{FilteringResolver, ForbiddenName, Mode};
use url::Url;

/// The most a response body may have unless a caller says otherwise.
pub const DEFAULT_MAX_BYTES: usize = 64 * 1024;
/// The most a whole request (connection, answer, body) may take unless a caller says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// The most a connection may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Bounds of one request.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_bytes: usize,
    pub timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_bytes: DEFAULT_MAX_BYTES, timeout: DEFAULT_TIMEOUT }
    }
}

/// A successful (2xx) answer.
#[derive(Debug, Clone)]
pub struct Fetched<T = Vec<u8>> {
    pub status: u16,
    /// For HTTP caching (`Cache-Control`, `Expires`, `ETag`) and content types.
    pub headers: HeaderMap,
    pub body: T,
}

/// Why an outgoing request failed. Callers map these to their protocol's errors.
#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    #[error("not an absolute http(s) URL: {0}")]
    InvalidUrl(String),
    #[error("only https URLs may be fetched")]
    NotHttps,
    /// The host is, or resolves only to, an address oxidp may not connect to.
    #[error("'{0}' is a private, loopback, link-local or otherwise special address")]
    Forbidden(String),
    #[error("the request took too long")]
    Timeout,
    #[error("the response is larger than {0} bytes")]
    TooLarge(usize),
    /// A non-2xx answer other than a redirect.
    #[error("the server answered HTTP {0}")]
    Status(u16),
    /// A 3xx answer: redirects are never followed.
    #[error("the server answered with a redirect (HTTP {0}), which is not followed")]
    Redirect(u16),
    #[error("the response is not valid JSON: {0}")]
    InvalidJson(String),
    #[error("the server could not be reached: {0}")]
    Unreachable(String),
}

impl OutboundError {
    /// A short label for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            OutboundError::InvalidUrl(_) => "invalid_url",
            OutboundError::NotHttps => "not_https",
            OutboundError::Forbidden(_) => "forbidden_address",
            OutboundError::Timeout => "timeout",
            OutboundError::TooLarge(_) => "too_large",
            OutboundError::Status(_) => "status",
            OutboundError::Redirect(_) => "redirect",
            OutboundError::InvalidJson(_) => "invalid_json",
            OutboundError::Unreachable(_) => "unreachable",
        }
    }
}

/// The one handle for untrusted outgoing requests; built once at start, cheap to clone.
#[derive(Clone)]
pub struct Outbound {
    policy: Arc<OutboundPolicy>,
    /// For `https` URLs: every address but the forbidden ones.
    public: reqwest::Client,
    /// For plain `http` URLs: only explicitly allowed addresses.
    explicit: reqwest::Client,
}

impl Outbound {
    pub fn new(policy: OutboundPolicy) -> Result<Outbound, OutboundError> {
        let policy = Arc::new(policy);
        Ok(Outbound { public: client(&policy, Mode::Public)?, explicit: client(&policy, Mode::ExplicitOnly)?, policy })
    }

    pub fn from_config(config: &crate::config::Config) -> Result<Outbound, OutboundError> {
        Outbound::new(OutboundPolicy {
            allow_cidrs: config.outbound_allow_cidrs.clone(),
            allow_loopback: config.outbound_allow_loopback,
        })
    }

    pub fn policy(&self) -> &OutboundPolicy {
        &self.policy
    }

    /// Checks a URL without fetching it: what can be known before resolving its host (scheme,
    /// and for an IP literal the address). Useful when a URL is registered.
    pub fn check_url(&self, url: &str) -> Result<Url, OutboundError> {
        self.route(url).map(|(url, _)| url)
    }

    /// GET a URL, accepting any content type.
    pub async fn get(&self, url: &str, limits: Limits) -> Result<Fetched, OutboundError> {
        self.send(url, limits, |client, url| client.get(url)).await
    }

    /// GET a JSON document (`Accept: application/json`); the body must parse as JSON.
    pub async fn get_json(&self, url: &str, limits: Limits) -> Result<Fetched<serde_json::Value>, OutboundError> {
        let fetched = self.send(url, limits, |client, url| client.get(url).header(ACCEPT, "application/json")).await?;
        let body = serde_json::from_slice(&fetched.body).map_err(|e| OutboundError::InvalidJson(e.to_string()))?;
        Ok(Fetched { status: fetched.status, headers: fetched.headers, body })
    }

    /// POST `application/x-www-form-urlencoded` (e.g. a back-channel logout token).
    pub async fn post_form(&self, url: &str, form: &[(&str, &str)], limits: Limits) -> Result<Fetched, OutboundError> {
        let body = form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
        self.send(url, limits, move |client, url| {
            client.post(url).header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded").body(body)
        })
        .await
    }

    /// The client a URL may use, or why it may not be fetched at all.
    fn route(&self, text: &str) -> Result<(Url, Mode), OutboundError> {
        let url = Url::parse(text).map_err(|e| OutboundError::InvalidUrl(e.to_string()))?;
        let mode = match url.scheme() {
            "https" => Mode::Public,
            "http" => Mode::ExplicitOnly,
            _ => return Err(OutboundError::NotHttps),
        };
        let literal = match url.host() {
            Some(url::Host::Ipv4(v4)) => Some(IpAddr::V4(v4)),
            Some(url::Host::Ipv6(v6)) => Some(IpAddr::V6(v6)),
            Some(url::Host::Domain(_)) => None,
            None => return Err(OutboundError::InvalidUrl("no host".into())),
        };
        if !url.username().is_empty() || url.password().is_some() {
            return Err(OutboundError::InvalidUrl("credentials in the URL".into()));
        }
        if let Some(ip) = literal
            && !mode.permits(ip, &self.policy)
        {
            return Err(if mode == Mode::ExplicitOnly && !is_forbidden(ip, &self.policy) {
                OutboundError::NotHttps
            } else {
                OutboundError::Forbidden(ip.to_string())
            });
        }
        Ok((url, mode))
    }

    async fn send(
        &self,
        url: &str,
        limits: Limits,
        build: impl FnOnce(&reqwest::Client, Url) -> reqwest::RequestBuilder,
    ) -> Result<Fetched, OutboundError> {
        let result = match self.route(url) {
            Ok((url, mode)) => {
                let client = match mode {
                    Mode::Public => &self.public,
                    Mode::ExplicitOnly => &self.explicit,
                };
                let request = build(client, url).timeout(limits.timeout);
                match tokio::time::timeout(limits.timeout, exchange(request, limits.max_bytes)).await {
                    Ok(result) => result,
                    Err(_) => Err(OutboundError::Timeout),
                }
            }
            Err(error) => Err(error),
        };
        if let Err(error) = &result {
            refused(error);
        }
        result
    }
}

fn client(policy: &Arc<OutboundPolicy>, mode: Mode) -> Result<reqwest::Client, OutboundError> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(DEFAULT_TIMEOUT)
        .dns_resolver(Arc::new(FilteringResolver { policy: policy.clone(), mode }))
        .user_agent(concat!("oxidp/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| OutboundError::Unreachable(e.to_string()))
}

async fn exchange(request: reqwest::RequestBuilder, max_bytes: usize) -> Result<Fetched, OutboundError> {
    let mut response = request.send().await.map_err(transport)?;
    let status = response.status();
    if status.is_redirection() {
        return Err(OutboundError::Redirect(status.as_u16()));
    }
    if !status.is_success() {
        return Err(OutboundError::Status(status.as_u16()));
    }
    if response.content_length().is_some_and(|length| length > max_bytes as u64) {
        return Err(OutboundError::TooLarge(max_bytes));
    }
    let headers = std::mem::take(response.headers_mut());
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(transport)? {
        if body.len() + chunk.len() > max_bytes {
            return Err(OutboundError::TooLarge(max_bytes));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Fetched { status: status.as_u16(), headers, body })
}

/// Tells a refusal by the resolver from a network failure.
fn transport(error: reqwest::Error) -> OutboundError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&error);
    while let Some(current) = source {
        if let Some(forbidden) = current.downcast_ref::<ForbiddenName>() {
            if forbidden.needs_https {
                return OutboundError::NotHttps;
            }
            return OutboundError::Forbidden(forbidden.host.clone());
        }
        source = current.source();
    }
    if error.is_timeout() {
        return OutboundError::Timeout;
    }
    OutboundError::Unreachable(error.to_string())
}

fn refused(error: &OutboundError) {
    let reason = error.kind();
    if matches!(error, OutboundError::Forbidden(_) | OutboundError::NotHttps) {
        tracing::warn!(reason, %error, "outgoing request refused");
    }
    metrics::counter!("oxidp_outbound_failures_total", "reason" => reason).increment(1);
}
