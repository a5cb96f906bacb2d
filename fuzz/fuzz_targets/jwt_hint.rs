//! `id_token_hint` and Bearer JWT parsing: the very functions `/logout` and the access-token
//! checks call (`oidc::logout::validate` → `KeyManager::verify` → josekit, then our claim
//! checks; `access_token::parse_signed`), with the harness's real key set.
//!
//! Two kinds of input: any bytes as a compact JWT (header and signature parsing; a fuzzer never
//! forges an RS256 signature, so none may be accepted), and a JSON object of claims that the
//! harness signs with oxidp's own key as an ID token and as an access token (our claim checks
//! behind a valid signature, which random bytes would never reach).
#![no_main]

use libfuzzer_sys::fuzz_target;
use oxidp::oauth::access_token::parse_signed;
use oxidp::oauth::params::Params;
use oxidp::oidc::logout::validate;
use oxidp_fuzz::{ISSUER, harness};
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let harness = harness();
    let state = &harness.state;
    if let Ok(text) = std::str::from_utf8(data) {
        let params = Params::from_pairs([("id_token_hint", text)]);
        let hint = harness.block_on(validate(state, &params));
        assert!(!matches!(hint, Ok(ref request) if request.hinted), "unsigned input accepted as a hint: {text:?}");
        assert!(parse_signed(state, text).is_err(), "unsigned input accepted as an access token: {text:?}");
    }
    if let Ok(Value::Object(claims)) = serde_json::from_slice::<Value>(data) {
        let issuer_is_ours = claims.get("iss").and_then(Value::as_str) == Some(ISSUER);
        for typ in ["JWT", "at+jwt"] {
            let token = state.keys.sign(typ, &claims).expect("sign");
            let params = Params::from_pairs([("id_token_hint", token.as_str())]);
            match harness.block_on(validate(state, &params)) {
                Ok(request) if request.hinted => {
                    assert_eq!(typ, "JWT", "an access token passed as an ID token hint");
                    assert!(issuer_is_ours, "a hint from another issuer: {claims:?}");
                }
                _ => {}
            }
            if let Ok(access) = parse_signed(state, &token) {
                assert_eq!(typ, "at+jwt", "an ID token passed as an access token");
                assert!(issuer_is_ours, "an access token from another issuer: {claims:?}");
                assert_eq!(Some(access.subject.as_str()), claims.get("sub").and_then(Value::as_str));
            }
        }
    }
});
