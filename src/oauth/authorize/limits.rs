//! How many authorization requests one source address may leave pending (issue 12 item 6). A
//! pending request is stored for 30 minutes before anyone signs in, so without a cap one
//! address could fill the key-value store. Counted per address (per /64 for IPv6, which a
//! single host usually holds whole) over the pending lifetime; beyond the cap `/authorize`
//! answers 429 with `Retry-After` (an error page: nothing is stored, nothing is redirected).

use std::net::IpAddr;

use super::{AuthorizationRequest, AuthorizeError, pending};
use crate::state::AppState;

/// Saves `request` as pending, counted against `source` when it came from a fresh `/authorize`
/// (a request resumed after sign-in or consent was counted when it started).
pub(super) async fn save_pending(
    state: &AppState,
    source: Option<&str>,
    request: &AuthorizationRequest,
) -> Result<String, AuthorizeError> {
    if let Some(source) = source {
        count(state, source).await?;
    }
    pending::save(state, request).await
}

/// Counts one more stored request from `source`; past the cap, [`AuthorizeError::TooManyPending`].
/// Requests pushed by public clients (`/par`, which anyone may call with their client_id) count
/// here too.
pub(super) async fn count(state: &AppState, source: &str) -> Result<(), AuthorizeError> {
    let key = format!("authorize-pending:ip:{}", address_group(source));
    let count = state.kv.increment(&key, pending::PENDING_TTL).await?;
    if count > state.config.pending_requests_per_ip {
        let (_, retry_after) = state.kv.counter(&key).await?;
        return Err(AuthorizeError::TooManyPending { retry_after: retry_after.max(1) });
    }
    Ok(())
}

/// The address as counted: IPv6 by its /64 prefix, anything unparsable as given.
fn address_group(source: &str) -> String {
    match source.parse::<IpAddr>() {
        Ok(IpAddr::V6(ip)) if ip.to_ipv4_mapped().is_none() => {
            let segments = ip.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", segments[0], segments[1], segments[2], segments[3])
        }
        Ok(ip) => ip.to_canonical().to_string(),
        Err(_) => source.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::address_group;

    #[test]
    fn ipv6_addresses_count_by_their_64_prefix() {
        assert_eq!(address_group("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
        assert_eq!(address_group("2001:db8:1:2:bbbb::9"), "2001:db8:1:2::/64");
        assert_eq!(address_group("192.0.2.7"), "192.0.2.7");
        assert_eq!(address_group("::ffff:192.0.2.7"), "192.0.2.7");
        assert_eq!(address_group("unknown"), "unknown");
    }
}
