//! The `Cookie` header as the HTTP layer reads it (`http::context::cookie`, private to the
//! crate, so it is reached through the real endpoint): session lookup, CSRF cookie, on the
//! pages that read them. First byte picks the page, the rest is the header value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oxidp_fuzz::{assert_not_server_error, harness};
use poem::Request;
use poem::http::HeaderValue;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, cookie)) = data.split_first() else { return };
    let Ok(value) = HeaderValue::from_bytes(cookie) else { return };
    let harness = harness();
    let authorize = format!(
        "/authorize?response_type=code&client_id={}&redirect_uri=http%3A%2F%2F127.0.0.1%3A9999%2Fcallback\
         &code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256&prompt=none",
        harness.client_id
    );
    let (method, path) = match selector % 5 {
        0 => ("GET", "/login".to_string()),
        1 => ("GET", "/logout".to_string()),
        2 => ("POST", "/logout".to_string()),
        3 => ("GET", "/consent?request=x".to_string()),
        _ => ("GET", authorize),
    };
    let request = Request::builder()
        .method(method.parse().expect("method"))
        .uri_str(&path)
        .header("cookie", value)
        .content_type("application/x-www-form-urlencoded")
        .body("confirm=yes&csrf=x");
    let response = harness.call(request);
    assert_not_server_error(&response, &path);
});
