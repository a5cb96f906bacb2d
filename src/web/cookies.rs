//! The one cookie policy (SPEC §8): `HttpOnly`, `SameSite=Lax`, `Secure` exactly when the
//! issuer is https. Sessions, CSRF and federation cookies all go through here.

use crate::state::AppState;

pub const SESSION: &str = "oxidp_session";
pub const CSRF: &str = "oxidp_csrf";

pub fn set(state: &AppState, name: &str, value: &str, max_age: Option<i64>) -> String {
    let secure = if state.config.issuer_is_https() { "; Secure" } else { "" };
    let max_age = max_age.map(|seconds| format!("; Max-Age={seconds}")).unwrap_or_default();
    format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax{secure}{max_age}")
}

pub fn clear(state: &AppState, name: &str) -> String {
    set(state, name, "", Some(0))
}
