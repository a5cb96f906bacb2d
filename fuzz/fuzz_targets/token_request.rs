//! The token request: any form body at `POST /token`, as the registered confidential client
//! (so the grant code runs) and without credentials.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oxidp_fuzz::{assert_not_server_error, harness};
use poem::Request;

fuzz_target!(|data: &[u8]| {
    let harness = harness();
    for authenticated in [true, false] {
        let mut builder = Request::builder()
            .method(poem::http::Method::POST)
            .uri_str("/token")
            .content_type("application/x-www-form-urlencoded");
        if authenticated {
            use base64::Engine;
            let credentials = format!("{}:{}", harness.client_id, harness.client_secret);
            let encoded = base64::engine::general_purpose::STANDARD.encode(credentials);
            builder = builder.header("authorization", format!("Basic {encoded}"));
        }
        let response = harness.call(builder.body(data.to_vec()));
        assert_not_server_error(&response, "token");
        let status = response.status().as_u16();
        assert!([200, 400, 401].contains(&status), "{status}");
    }
});
