//! PKCE (RFC 7636, S256): verifier and challenge syntax, and the comparison.
//! Input: verifier, a newline, challenge.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oxidp::crypto::{b64url, sha256};
use oxidp::oauth::pkce;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (verifier, challenge) = text.split_once('\n').unwrap_or((text, ""));
    let valid_verifier = pkce::is_valid_verifier(verifier);
    assert_eq!(
        valid_verifier,
        (43..=128).contains(&verifier.len())
            && verifier.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
    );
    let _ = pkce::is_valid_challenge(challenge);
    let own = b64url(sha256(verifier));
    assert!(pkce::is_valid_challenge(&own));
    assert!(pkce::s256_matches(verifier, &own));
    assert_eq!(pkce::s256_matches(verifier, challenge), challenge == own, "{verifier:?} {challenge:?}");
});
