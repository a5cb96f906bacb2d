//! User passwords: argon2id. Only for passwords people choose; generated secrets use keyed hashes.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

/// 19 MiB, 2 passes: the OWASP argon2id baseline, well under 50 ms here.
fn hasher() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

pub fn hash_password(password: &str) -> Result<String, String> {
    let salt = SaltString::generate(&mut OsRng);
    hasher().hash_password(password.as_bytes(), &salt).map(|hash| hash.to_string()).map_err(|e| e.to_string())
}

/// Verifies against `stored`, or against a fixed dummy hash when there is no account, so an
/// unknown email costs the same work as a wrong password.
pub fn verify_password(password: &str, stored: Option<&str>) -> bool {
    let candidate = stored.unwrap_or(DUMMY_HASH);
    let matches = PasswordHash::new(candidate)
        .map(|hash| hasher().verify_password(password.as_bytes(), &hash).is_ok())
        .unwrap_or(false);
    matches && stored.is_some()
}

/// argon2id hash of a random string nobody knows, with the same parameters as real hashes.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$0yA8cQv3Wo1oNXDGMnvONl0Dz1yENUCh6N0d8eynKk4";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_and_verify() {
        let hash = hash_password("correct horse battery").expect("hash");
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", Some(&hash)));
        assert!(!verify_password("wrong", Some(&hash)));
        assert!(!verify_password("anything", None));
    }

    #[test]
    fn dummy_hash_parses_with_real_parameters() {
        let parsed = PasswordHash::new(DUMMY_HASH).expect("dummy hash parses");
        assert_eq!(parsed.algorithm.as_str(), "argon2id");
        let real = hash_password("x").expect("hash");
        let real = PasswordHash::new(&real).expect("parse");
        assert_eq!(parsed.params.to_string(), real.params.to_string());
    }
}
