//! The authorization request: any query string at `GET /authorize`, through the whole check
//! pipeline (parameters, client, redirect URI, PKCE, scope, prompt, max_age, resource). The
//! input is appended to a valid request, so the fuzzer reaches every check, and also sent alone.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oxidp_fuzz::{assert_not_server_error, harness};
use poem::Request;
use poem::http::Uri;

fuzz_target!(|data: &[u8]| {
    let Ok(query) = std::str::from_utf8(data) else { return };
    let harness = harness();
    let valid = format!(
        "response_type=code&client_id={}&redirect_uri=http%3A%2F%2F127.0.0.1%3A9999%2Fcallback\
         &code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256&state=s",
        harness.client_id
    );
    for uri in [format!("/authorize?{query}"), format!("/authorize?{valid}&{query}")] {
        let Ok(uri) = uri.parse::<Uri>() else { return };
        let response = harness.call(Request::builder().uri(uri).finish());
        assert_not_server_error(&response, "authorize");
        if let Some(location) = response.headers().get("location").and_then(|l| l.to_str().ok()) {
            // Only this server's pages or the registered callback.
            let here = location.starts_with('/') && !location.starts_with("//");
            let registered = location.starts_with("http://127.0.0.1:9999/callback?");
            assert!(here || registered, "redirect to {location}");
        }
    }
});
