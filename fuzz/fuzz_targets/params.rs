//! `Params::parse`: every query string and form body (authorize, token, revoke, introspect,
//! login, consent, logout) goes through it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oxidp::oauth::params::{MAX_PARAM_LEN, Params};

fuzz_target!(|data: &[u8]| {
    let Some(params) = Params::parse(data) else { return };
    let pairs: Vec<(String, String)> = params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    for (key, value) in &pairs {
        // An empty value reads as absent (RFC 6749 §3.1); any other reads back as parsed.
        let expected = (!value.is_empty()).then_some(value.as_str());
        assert_eq!(params.get(key), expected, "{key:?}");
        // The first occurrence wins: a key never holds two values.
        assert_eq!(pairs.iter().filter(|(k, _)| k == key).count(), 1);
    }
    if let Some(name) = params.first_repeated() {
        assert!(params.is_repeated(name));
        assert!(pairs.iter().any(|(k, _)| k == name), "a repeated key keeps its first value");
    }
    if let Some(name) = params.first_oversized() {
        assert!(pairs.iter().any(|(k, v)| k == name && v.len() > MAX_PARAM_LEN));
    } else {
        assert!(pairs.iter().all(|(_, v)| v.len() <= MAX_PARAM_LEN));
    }
});
