//! The browser pages and the protocol endpoints: translation of requests into core calls and
//! of outcomes into responses. No protocol decisions are made here. The JSON API lives in
//! `api/`; both are assembled into one application in `server::routes`.

mod authorize;
mod device;
mod discovery;
mod error;
mod federation;
mod health;
mod logout;
mod pages;
mod registration;
mod token;
mod userinfo;

use poem::{Route, get};

pub use error::fallback;

/// The pages, protocol endpoints, health and metrics routes.
pub fn routes(route: Route) -> Route {
    route
        .at("/.well-known/openid-configuration", get(discovery::openid_configuration))
        .at("/.well-known/oauth-authorization-server", get(discovery::oauth_metadata))
        .at(crate::oidc::discovery::PROTECTED_RESOURCE_PATH, get(discovery::protected_resource_metadata))
        .at("/jwks.json", get(discovery::jwks))
        .at("/authorize", get(authorize::authorize_get).post(authorize::authorize_post))
        .at("/login", get(authorize::login_page).post(authorize::login_submit))
        .at("/login/:provider", get(federation::start))
        .at("/login/:provider/callback", get(federation::callback).post(federation::link_submit))
        .at("/consent", get(authorize::consent_page).post(authorize::consent_submit))
        .at("/token", poem::post(token::token))
        .at("/revoke", poem::post(token::revoke))
        .at("/introspect", poem::post(token::introspect))
        .at("/register", poem::post(registration::register))
        .at("/register/:client_id", get(registration::read).put(registration::update).delete(registration::delete))
        .at("/par", poem::post(token::par))
        .at("/device_authorization", poem::post(token::device_authorization))
        .at("/device", get(device::entry_page).post(device::entry_submit))
        .at("/device/confirm", get(device::confirm_page).post(device::confirm_submit))
        .at("/userinfo", get(userinfo::userinfo).post(userinfo::userinfo))
        .at("/logout", get(logout::end_session).post(logout::end_session))
        .at("/static/oxidp.css", get(pages::stylesheet))
        .at("/healthz", get(health::healthz))
        .at("/readyz", get(health::readyz))
        .at("/metrics", get(health::metrics))
}
