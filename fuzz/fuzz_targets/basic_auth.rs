//! `Authorization: Basic` client credentials (`http::token::basic_credentials`, private, so
//! through `/revoke`, which authenticates the client like `/token`): base64, UTF-8, the colon,
//! form-urlencoded id and secret, then the client lookup.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oxidp_fuzz::{assert_not_server_error, harness};
use poem::Request;
use poem::http::HeaderValue;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = HeaderValue::from_bytes(data) else { return };
    let harness = harness();
    let request = Request::builder()
        .method(poem::http::Method::POST)
        .uri_str("/revoke")
        .header("authorization", value)
        .content_type("application/x-www-form-urlencoded")
        .body("token=not-a-token");
    let response = harness.call(request);
    assert_not_server_error(&response, "Basic");
    assert!([200, 400, 401].contains(&response.status().as_u16()), "{}", response.status());
});
