//! Scope strings (RFC 6749 §3.3): `scope::parse` and its round trip through `join`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oxidp::oauth::scope;

fn is_scope_char(b: u8) -> bool {
    b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b)
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match scope::parse(text) {
        Ok(parsed) => {
            for (index, token) in parsed.iter().enumerate() {
                assert!(!token.is_empty() && token.bytes().all(is_scope_char), "{token:?}");
                assert!(!parsed[..index].contains(token), "duplicate {token:?}");
            }
            assert_eq!(scope::parse(&scope::join(&parsed)).expect("joined scopes parse"), parsed);
        }
        Err(_) => assert!(text.split(' ').any(|token| !token.bytes().all(is_scope_char)), "{text:?} refused"),
    }
});
