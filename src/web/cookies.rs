//! The one cookie policy (SPEC §8): `HttpOnly`, `SameSite=Lax`, `Secure` exactly when the
//! issuer is https. Sessions, CSRF, authorization and federation cookies all go through here.
//!
//! On an https issuer every name takes the `__Host-` prefix (issue #12 item 7): the browser
//! then accepts the cookie only from this exact host, over https, for path `/`, so a sibling
//! subdomain or a plain-http page cannot plant or overwrite it.

use poem::Request;

use super::request::cookie;
use crate::state::AppState;

pub const SESSION: &str = "oxidp_session";
pub const CSRF: &str = "oxidp_csrf";
/// Binds pending authorization requests to the browser that started them.
pub const AUTHORIZE: &str = "oxidp_authorize";

/// The name the browser stores cookie `base` under.
pub fn name(state: &AppState, base: &str) -> String {
    if state.config.issuer_is_https() { format!("__Host-{base}") } else { base.to_string() }
}

/// The value of cookie `base` in the request.
pub fn get(state: &AppState, req: &Request, base: &str) -> Option<String> {
    cookie(req, &name(state, base))
}

pub fn set(state: &AppState, base: &str, value: &str, max_age: Option<i64>) -> String {
    let secure = if state.config.issuer_is_https() { "; Secure" } else { "" };
    let max_age = max_age.map(|seconds| format!("; Max-Age={seconds}")).unwrap_or_default();
    format!("{}={value}; Path=/; HttpOnly; SameSite=Lax{secure}{max_age}", name(state, base))
}

pub fn clear(state: &AppState, base: &str) -> String {
    set(state, base, "", Some(0))
}
