//! API keys as presented (`oxk_` + 43 base62 characters): `apikeys::authenticate` (the format
//! check, the lookup by prefix, the keyed-hash comparison) and the `X-API-Key` header through
//! the account API. There is no pure parsing function to call on its own (see the report).
#![no_main]

use libfuzzer_sys::fuzz_target;
use oxidp::apikeys::{ApiKeyError, authenticate};
use oxidp_fuzz::{assert_not_server_error, harness};
use poem::Request;
use poem::http::HeaderValue;

fuzz_target!(|data: &[u8]| {
    let harness = harness();
    if let Ok(text) = std::str::from_utf8(data) {
        match harness.block_on(authenticate(&harness.state, text)) {
            Ok(_) => assert_eq!(text, harness.api_key, "only the real key authenticates"),
            Err(ApiKeyError::Unauthenticated) => assert_ne!(text, harness.api_key),
            Err(other) => panic!("{text:?}: {other}"),
        }
    }
    if let Ok(value) = HeaderValue::from_bytes(data) {
        let request = Request::builder().uri_str("/api/v1/users/me").header("x-api-key", value).finish();
        let response = harness.call(request);
        assert_not_server_error(&response, "X-API-Key");
        if data != harness.api_key.as_bytes() {
            assert_eq!(response.status(), 401, "{:?}", String::from_utf8_lossy(data));
        }
    }
});
