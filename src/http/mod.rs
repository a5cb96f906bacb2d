//! The HTTP layer: routes, translation of requests into core calls and of outcomes into
//! responses. No protocol decisions are made here.

mod authorize;
mod context;
mod cookies;
mod csrf;
mod discovery;
mod error;
mod federation;
mod health;
mod logout;
mod middleware;
mod pages;
mod token;
mod userinfo;

use std::net::SocketAddr;
use std::time::Duration;

use poem::listener::{Acceptor, TcpAcceptor};
use poem::{Endpoint, EndpointExt, Route, Server, get};

use crate::state::SharedState;

pub use context::{client_ip, origin};
pub use middleware::request_id;

pub fn app(state: SharedState) -> impl Endpoint {
    let max_body = state.config.max_body_bytes;
    Route::new()
        .nest(
            crate::api::API_PREFIX,
            crate::api::endpoint(&state.config)
                .around(move |next, req| crate::api::problem::problems(next, req, max_body)),
        )
        .nest("/", crate::api::Docs::endpoint(state.docs.clone()))
        .at("/.well-known/openid-configuration", get(discovery::openid_configuration))
        .at("/.well-known/oauth-authorization-server", get(discovery::oauth_metadata))
        .at("/jwks.json", get(discovery::jwks))
        .at("/authorize", get(authorize::authorize_get).post(authorize::authorize_post))
        .at("/login", get(authorize::login_page).post(authorize::login_submit))
        .at("/login/:provider", get(federation::start))
        .at("/login/:provider/callback", get(federation::callback).post(federation::link_submit))
        .at("/consent", get(authorize::consent_page).post(authorize::consent_submit))
        .at("/token", poem::post(token::token))
        .at("/revoke", poem::post(token::revoke))
        .at("/introspect", poem::post(token::introspect))
        .at("/userinfo", get(userinfo::userinfo).post(userinfo::userinfo))
        .at("/logout", get(logout::end_session).post(logout::end_session))
        .at("/static/oxidp.css", get(pages::stylesheet))
        .at("/healthz", get(health::healthz))
        .at("/readyz", get(health::readyz))
        .at("/metrics", get(health::metrics))
        .catch_all_error(error::fallback)
        .with_if(!state.config.cors_origins.is_empty(), cors(&state.config.cors_origins))
        .around(middleware::request_context)
        .data(state)
}

/// Browsers on the configured origins may call the JSON API and the token, userinfo,
/// revocation and metadata endpoints (what single-page apps need). No cookies cross origins.
fn cors(origins: &[String]) -> poem::middleware::Cors {
    poem::middleware::Cors::new()
        .allow_origins(origins.iter().map(String::as_str))
        .allow_methods(["GET", "POST", "PATCH", "PUT", "DELETE"])
        .allow_headers(["authorization", "content-type", "x-api-key", "x-client-key", "x-request-id", "if-none-match"])
        .expose_headers(["x-request-id", "etag", "retry-after", "www-authenticate"])
        .allow_credentials(false)
        .max_age(600)
}

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
    Server::new_with_acceptor(bound.acceptor)
        .idle_timeout(Duration::from_secs(60))
        .run_with_graceful_shutdown(app(state), shutdown, Some(Duration::from_secs(10)))
        .await
}
