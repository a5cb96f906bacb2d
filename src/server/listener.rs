//! Binding and serving with a graceful stop.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use poem::Server;
use poem::listener::{Acceptor, TcpAcceptor};

use crate::api::Docs;
use crate::state::SharedState;

/// A bound listener; binding first lets callers (and tests) learn the port before serving.
pub struct Bound {
    acceptor: TcpAcceptor,
    pub local_addr: SocketAddr,
}

pub fn bind(addr: SocketAddr) -> std::io::Result<Bound> {
    let listener = std::net::TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    let local_addr = listener.local_addr()?;
    let acceptor = TcpAcceptor::from_std(listener)?;
    let _ = acceptor.local_addr();
    Ok(Bound { acceptor, local_addr })
}

/// Serves until `shutdown` resolves, then lets in-flight requests finish (up to 10 s).
pub async fn serve(state: SharedState, bound: Bound, shutdown: impl Future<Output = ()>) -> std::io::Result<()> {
    let docs = Arc::new(Docs::build(&state.config).await);
    crate::delivery::spawn_worker(state.clone());
    Server::new_with_acceptor(bound.acceptor)
        .idle_timeout(Duration::from_secs(60))
        .run_with_graceful_shutdown(super::app(state, docs), shutdown, Some(Duration::from_secs(10)))
        .await
}
