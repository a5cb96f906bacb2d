//! The DNS resolver of the outbound clients: it resolves the name and keeps only the addresses
//! the policy allows, so the address checked is the address connected to (no rebinding between
//! a check and the connection).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use super::address::{OutboundPolicy, is_explicitly_allowed, is_forbidden};

/// Which addresses a client may connect to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `https`: anything not forbidden.
    Public,
    /// Plain `http`: only what the deployment allowed explicitly (allow list, loopback switch).
    ExplicitOnly,
}

impl Mode {
    pub fn permits(self, ip: IpAddr, policy: &OutboundPolicy) -> bool {
        match self {
            Mode::Public => !is_forbidden(ip, policy),
            Mode::ExplicitOnly => is_explicitly_allowed(ip, policy),
        }
    }
}

/// The error the resolver answers when every address of a name was refused; found again in
/// reqwest's error chain to tell "forbidden" from "unreachable".
#[derive(Debug, thiserror::Error)]
#[error("'{host}' resolves only to addresses oxidp may not connect to")]
pub struct ForbiddenName {
    pub host: String,
    /// Plain `http` to a public address: the scheme, not the address, is what is wrong.
    pub needs_https: bool,
}

pub struct FilteringResolver {
    pub policy: Arc<OutboundPolicy>,
    pub mode: Mode,
}

impl Resolve for FilteringResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        let mode = self.mode;
        let host = name.as_str().to_string();
        Box::pin(async move {
            let resolved: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let needs_https = resolved.iter().any(|addr| !is_forbidden(addr.ip(), &policy));
            let permitted: Vec<SocketAddr> =
                resolved.into_iter().filter(|addr| mode.permits(addr.ip(), &policy)).collect();
            if permitted.is_empty() {
                let error = ForbiddenName { host, needs_https: needs_https && mode == Mode::ExplicitOnly };
                return Err(Box::new(error) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(permitted.into_iter()) as Addrs)
        })
    }
}
