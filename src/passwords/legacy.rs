//! Password hashes brought in by `oxidp user import` from the systems oxidp replaces, verified
//! at the person's first sign-in (through the gate) and then replaced by argon2id:
//! - argon2id and argon2i PHC strings (other parameters than ours count as legacy),
//! - bcrypt `$2a$`, `$2b$`, `$2y$` (only the first 72 bytes of a password count, as in bcrypt),
//! - PBKDF2-SHA256 as Django writes it (`pbkdf2_sha256$iterations$salt$base64`) and as passlib
//!   does (`$pbkdf2-sha256$iterations$ab64-salt$ab64-hash`).

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The kinds of hash oxidp can verify; `None` for anything else (refused at import).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashKind {
    Argon2,
    Bcrypt,
    DjangoPbkdf2,
    PasslibPbkdf2,
}

impl HashKind {
    pub fn name(self) -> &'static str {
        match self {
            HashKind::Argon2 => "argon2",
            HashKind::Bcrypt => "bcrypt",
            HashKind::DjangoPbkdf2 => "pbkdf2_sha256 (Django)",
            HashKind::PasslibPbkdf2 => "pbkdf2-sha256 (passlib)",
        }
    }
}

/// What kind of hash `stored` is, when oxidp can verify it and it is well formed.
pub fn kind(stored: &str) -> Option<HashKind> {
    if stored.starts_with("$argon2id$") || stored.starts_with("$argon2i$") {
        return argon2::password_hash::PasswordHash::new(stored).ok().map(|_| HashKind::Argon2);
    }
    if ["$2a$", "$2b$", "$2y$"].iter().any(|prefix| stored.starts_with(prefix)) {
        return bcrypt_parts_ok(stored).then_some(HashKind::Bcrypt);
    }
    if stored.starts_with("pbkdf2_sha256$") {
        return django(stored).map(|_| HashKind::DjangoPbkdf2);
    }
    if stored.starts_with("$pbkdf2-sha256$") {
        return passlib(stored).map(|_| HashKind::PasslibPbkdf2);
    }
    None
}

fn bcrypt_parts_ok(stored: &str) -> bool {
    // $2b$12$ + 53 characters of salt and hash.
    stored.len() == 60 && stored[4..6].parse::<u32>().is_ok_and(|cost| (4..=31).contains(&cost))
}

/// Whether `password` matches a bcrypt or PBKDF2 hash (argon2 is verified by the caller).
pub fn verify(password: &str, stored: &str) -> bool {
    match kind(stored) {
        Some(HashKind::Bcrypt) => bcrypt::verify(password, stored).unwrap_or(false),
        Some(HashKind::DjangoPbkdf2) => django(stored).is_some_and(|p| p.matches(password)),
        Some(HashKind::PasslibPbkdf2) => passlib(stored).is_some_and(|p| p.matches(password)),
        Some(HashKind::Argon2) | None => false,
    }
}

/// Iterations above this are refused: a hash is data from the import file, not a CPU budget.
const MAX_ITERATIONS: u32 = 10_000_000;

struct Pbkdf2 {
    iterations: u32,
    salt: Vec<u8>,
    expected: Vec<u8>,
}

impl Pbkdf2 {
    fn matches(&self, password: &str) -> bool {
        let mut derived = vec![0u8; self.expected.len()];
        pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), &self.salt, self.iterations, &mut derived);
        derived.ct_eq(&self.expected).into()
    }
}

fn iterations(text: &str) -> Option<u32> {
    text.parse::<u32>().ok().filter(|n| (1..=MAX_ITERATIONS).contains(n))
}

/// `pbkdf2_sha256$<iterations>$<salt>$<standard base64 of 32 bytes>`.
fn django(stored: &str) -> Option<Pbkdf2> {
    let mut parts = stored.split('$');
    let (_, rounds, salt, hash, None) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?, parts.next())
    else {
        return None;
    };
    let expected = STANDARD.decode(hash).ok().filter(|bytes| bytes.len() >= 16)?;
    Some(Pbkdf2 { iterations: iterations(rounds)?, salt: salt.as_bytes().to_vec(), expected })
}

/// `$pbkdf2-sha256$<iterations>$<ab64 salt>$<ab64 hash>` (ab64: base64 with `.` for `+`, no padding).
fn passlib(stored: &str) -> Option<Pbkdf2> {
    let mut parts = stored.split('$');
    let (_, _, rounds, salt, hash, None) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?, parts.next()?, parts.next())
    else {
        return None;
    };
    let ab64 = |text: &str| STANDARD_NO_PAD.decode(text.replace('.', "+")).ok();
    let expected = ab64(hash).filter(|bytes| bytes.len() >= 16)?;
    Some(Pbkdf2 { iterations: iterations(rounds)?, salt: ab64(salt)?, expected })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// PBKDF2-HMAC-SHA256("passwd", "salt", 1 iteration), the first 32 bytes of RFC 7914 §11's
    /// vector: a fixed value, so the test does not pass by computing what it checks.
    const RFC_7914: &str = "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc";

    fn hex(text: &str) -> Vec<u8> {
        (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex")).collect()
    }

    #[test]
    fn pbkdf2_in_both_notations() {
        let hash = hex(RFC_7914);
        let django = format!("pbkdf2_sha256$1$salt${}", STANDARD.encode(&hash));
        let ab64 = |bytes: &[u8]| STANDARD_NO_PAD.encode(bytes).replace('+', ".");
        let passlib = format!("$pbkdf2-sha256$1${}${}", ab64(b"salt"), ab64(&hash));
        for stored in [&django, &passlib] {
            assert!(kind(stored).is_some(), "{stored}");
            assert!(verify("passwd", stored), "{stored}");
            assert!(!verify("passwe", stored), "{stored}");
        }
        assert_eq!(kind("pbkdf2_sha256$0$salt$AAAA"), None, "zero iterations");
        assert_eq!(kind("pbkdf2_sha256$1000$salt"), None, "missing part");
        assert_eq!(kind("$pbkdf2-sha256$99999999999$c2FsdA$AAAA"), None, "absurd iterations");
    }

    #[test]
    fn bcrypt_variants_and_its_72_byte_limit() {
        let stored = bcrypt::hash("correct horse", 4).expect("hash");
        for prefix in ["$2a$", "$2b$", "$2y$"] {
            let variant = format!("{prefix}{}", &stored[4..]);
            assert_eq!(kind(&variant), Some(HashKind::Bcrypt));
            assert!(verify("correct horse", &variant));
            assert!(!verify("correct horsf", &variant));
        }
        let long = "x".repeat(72);
        let stored = bcrypt::hash(&long, 4).expect("hash");
        assert!(verify(&format!("{long}anything"), &stored), "bcrypt ignores bytes after the 72nd");
        assert_eq!(kind("$2b$04$short"), None);
    }

    #[test]
    fn unknown_and_argon2_kinds() {
        assert_eq!(kind("md5$abc$def"), None);
        assert_eq!(kind("plaintext"), None);
        let argon = crate::passwords::hash_password("pw").expect("hash");
        assert_eq!(kind(&argon), Some(HashKind::Argon2));
        assert!(!verify("pw", &argon), "argon2 is the caller's");
    }
}
