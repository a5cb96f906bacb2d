//! What handlers read from a request besides its parameters: client IP, cookies, body.

use std::net::IpAddr;

use poem::Request;

use crate::oauth::params::Params;
use crate::state::AppState;

/// The connecting peer, or the right-most untrusted `X-Forwarded-For` hop when the peer
/// is a trusted proxy (SPEC §8).
pub fn client_ip(state: &AppState, req: &Request) -> String {
    // Bound to `[::]`, IPv4 clients arrive IPv4-mapped (`::ffff:a.b.c.d`): they are their IPv4
    // address for trusted proxies, allowlists, throttles and the audit log alike.
    let peer = req.remote_addr().as_socket_addr().map(|addr| addr.ip().to_canonical());
    let Some(peer) = peer else { return "unknown".into() };
    let trusted = |ip: &IpAddr| state.config.trusted_proxies.iter().any(|net| net.contains(ip));
    if !trusted(&peer) {
        return peer.to_string();
    }
    let forwarded =
        req.headers().get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok()).collect::<Vec<_>>().join(",");
    forwarded
        .split(',')
        .rev()
        .filter_map(|hop| hop.trim().parse::<IpAddr>().ok().map(|ip| ip.to_canonical()))
        .find(|ip| !trusted(ip))
        .unwrap_or(peer)
        .to_string()
}

/// Where a request came from, for the audit log.
pub fn origin(state: &AppState, req: &Request) -> crate::audit::Origin {
    crate::audit::Origin {
        ip: Some(client_ip(state, req)),
        user_agent: user_agent(req),
        request_id: super::middleware::request_id(req),
        via: None,
    }
}

/// `actor`, acting through this request.
pub fn initiator(state: &AppState, req: &Request, actor: crate::audit::Actor) -> crate::audit::Initiator {
    crate::audit::Initiator::new(actor, origin(state, req))
}

pub fn cookie(req: &Request, name: &str) -> Option<String> {
    req.headers()
        .get_all(poem::http::header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_string())
        .filter(|value| !value.is_empty() && value.len() <= 256)
}

pub fn user_agent(req: &Request) -> Option<String> {
    req.headers().get(poem::http::header::USER_AGENT).and_then(|v| v.to_str().ok()).map(str::to_string)
}

pub fn query_params(req: &Request) -> Option<Params> {
    Params::parse(req.uri().query().unwrap_or("").as_bytes())
}

pub fn is_form(req: &Request) -> bool {
    req.headers()
        .get(poem::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"))
}

pub enum BodyError {
    TooLarge,
    Unreadable,
    NotForm,
    BadEncoding,
}

/// Reads a form body within the configured size limit.
pub async fn form_params(state: &AppState, req: &Request, body: poem::Body) -> Result<Params, BodyError> {
    if !is_form(req) {
        return Err(BodyError::NotForm);
    }
    let limit = state.config.max_body_bytes;
    let bytes = body.into_bytes_limit(limit).await.map_err(|error| match error {
        poem::error::ReadBodyError::PayloadTooLarge => BodyError::TooLarge,
        _ => BodyError::Unreadable,
    })?;
    Params::parse(&bytes).ok_or(BodyError::BadEncoding)
}
