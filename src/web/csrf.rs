//! CSRF for the HTML forms: a random browser cookie, and per-form tokens that are an HMAC of
//! it (signed double-submit). A cross-site page can neither read the cookie nor forge the HMAC.

use poem::Request;
use poem::Response;
use poem::http::HeaderValue;
use poem::http::header::SET_COOKIE;

use super::cookies;
use crate::crypto::random_token;
use crate::state::AppState;

pub struct CsrfCookie {
    value: String,
    is_new: bool,
}

/// The browser's CSRF cookie, created when it has none.
pub fn ensure(state: &AppState, req: &Request) -> CsrfCookie {
    match cookies::get(state, req, cookies::CSRF) {
        Some(value) => CsrfCookie { value, is_new: false },
        None => CsrfCookie { value: random_token(32), is_new: true },
    }
}

impl CsrfCookie {
    pub fn token(&self, state: &AppState, form: &str) -> String {
        state.secret.csrf_token(&self.value, form)
    }

    /// Adds the Set-Cookie header when the cookie was created for this response.
    pub fn attach(&self, state: &AppState, mut response: Response) -> Response {
        let cookie = self.is_new.then(|| HeaderValue::from_str(&cookies::set(state, cookies::CSRF, &self.value, None)));
        if let Some(Ok(value)) = cookie {
            response.headers_mut().append(SET_COOKIE, value);
        }
        response
    }
}

pub fn verify(state: &AppState, req: &Request, form: &str, token: Option<&str>) -> bool {
    match (cookies::get(state, req, cookies::CSRF), token) {
        (Some(browser), Some(token)) => state.secret.verify_csrf_token(&browser, form, token),
        _ => false,
    }
}
