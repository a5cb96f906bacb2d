//! The one server secret (SPEC §8) and the keys HKDF derives from it for each purpose.

use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::{b64url, b64url_decode, constant_time_eq, random_bytes};

type HmacSha256 = Hmac<Sha256>;

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("OXIDP_SECRET_KEY: {0}")]
    Invalid(String),
    #[error("secret key file {path}: {error}")]
    File { path: String, error: std::io::Error },
    #[error("could not decrypt a stored private key: the server secret differs from the one that encrypted it")]
    Decrypt,
}

/// Keys derived from the server secret. Each purpose gets its own HKDF `info`, so a leak
/// of one derived key reveals nothing about the others.
#[derive(Clone)]
pub struct ServerSecret {
    hash_key: [u8; 32],
    csrf_key: [u8; 32],
    refresh_chain_key: [u8; 32],
    encryption_key: [u8; 32],
}

impl ServerSecret {
    pub fn from_base64(text: &str) -> Result<Self, SecretError> {
        let bytes = STANDARD
            .decode(text.trim())
            .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(text.trim()))
            .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text.trim()))
            .map_err(|_| SecretError::Invalid("not base64".into()))?;
        if bytes.len() < 32 {
            return Err(SecretError::Invalid(format!("{} bytes; at least 32 are required", bytes.len())));
        }
        Ok(Self::from_bytes(&bytes))
    }

    pub fn from_bytes(master: &[u8]) -> Self {
        let hkdf = Hkdf::<Sha256>::new(Some(b"oxidp server secret v1"), master);
        let derive = |info: &[u8]| {
            let mut key = [0u8; 32];
            // 32 bytes is far below HKDF-SHA256's output limit, so expand cannot fail.
            let _ = hkdf.expand(info, &mut key);
            key
        };
        Self {
            hash_key: derive(b"keyed hash of stored secrets"),
            csrf_key: derive(b"csrf tokens"),
            refresh_chain_key: derive(b"refresh token successor"),
            encryption_key: derive(b"signing key encryption"),
        }
    }

    /// Uses `configured` when given, else `keys_dir/secret.key`, generating it (mode 0600) on first start.
    pub fn load_or_generate(configured: Option<&str>, keys_dir: &Path) -> Result<Self, SecretError> {
        if let Some(text) = configured {
            return Self::from_base64(text);
        }
        let path = keys_dir.join("secret.key");
        let file_error = |error| SecretError::File { path: path.display().to_string(), error };
        match std::fs::read_to_string(&path) {
            Ok(text) => Self::from_base64(&text),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(keys_dir).map_err(file_error)?;
                let encoded = STANDARD.encode(random_bytes::<32>());
                write_private_file(&path, encoded.as_bytes()).map_err(file_error)?;
                // Another process may have won the race to create the file: read what is there.
                let text = std::fs::read_to_string(&path).map_err(file_error)?;
                Self::from_base64(&text)
            }
            Err(error) => Err(file_error(error)),
        }
    }

    /// Keyed SHA-256 for high-entropy secrets (codes, refresh tokens, client secrets, API keys):
    /// fast, and useless to someone who has only the database.
    pub fn keyed_hash(&self, purpose: &str, secret: &str) -> String {
        b64url(self.mac(&self.hash_key, &[purpose.as_bytes(), b"\0", secret.as_bytes()]))
    }

    pub fn verify_keyed_hash(&self, purpose: &str, secret: &str, stored: &str) -> bool {
        constant_time_eq(self.keyed_hash(purpose, secret).as_bytes(), stored.as_bytes())
    }

    /// CSRF token bound to the browser's CSRF cookie and to the form it protects.
    pub fn csrf_token(&self, browser_cookie: &str, form: &str) -> String {
        b64url(self.mac(&self.csrf_key, &[browser_cookie.as_bytes(), b"\0", form.as_bytes()]))
    }

    pub fn verify_csrf_token(&self, browser_cookie: &str, form: &str, token: &str) -> bool {
        constant_time_eq(self.csrf_token(browser_cookie, form).as_bytes(), token.as_bytes())
    }

    /// The successor of a refresh token is derived from it, so a concurrent refresh inside the
    /// grace window can be answered with the same successor without storing it in clear.
    pub fn refresh_successor(&self, token: &str) -> String {
        b64url(self.mac(&self.refresh_chain_key, &[token.as_bytes()]))
    }

    /// AES-256-GCM with a random nonce; output is base64url(nonce || ciphertext).
    pub fn encrypt(&self, plaintext: &[u8]) -> String {
        let cipher = Aes256Gcm::new((&self.encryption_key).into());
        let nonce_bytes = random_bytes::<12>();
        // Encryption only fails for inputs beyond GCM's size limit (64 GiB).
        let ciphertext = cipher.encrypt(&Nonce::from(nonce_bytes), plaintext).unwrap_or_default();
        let mut out = nonce_bytes.to_vec();
        out.extend_from_slice(&ciphertext);
        b64url(out)
    }

    pub fn decrypt(&self, encoded: &str) -> Result<Vec<u8>, SecretError> {
        let bytes = b64url_decode(encoded).ok_or(SecretError::Decrypt)?;
        if bytes.len() < 12 + 16 {
            return Err(SecretError::Decrypt);
        }
        let (nonce, ciphertext) = bytes.split_at(12);
        let cipher = Aes256Gcm::new((&self.encryption_key).into());
        let nonce: [u8; 12] = nonce.try_into().map_err(|_| SecretError::Decrypt)?;
        cipher.decrypt(&Nonce::from(nonce), ciphertext).map_err(|_| SecretError::Decrypt)
    }

    fn mac(&self, key: &[u8; 32], parts: &[&[u8]]) -> [u8; 32] {
        // HMAC accepts keys of any length, so construction cannot fail.
        let mut mac = <HmacSha256 as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
        for part in parts {
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    }
}

pub(crate) fn write_private_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(mut file) => file.write_all(contents),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(error) => Err(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_keys_differ_by_purpose_and_round_trip() {
        let secret = ServerSecret::from_bytes(&[7u8; 32]);
        assert_ne!(secret.keyed_hash("code", "x"), secret.keyed_hash("refresh", "x"));
        assert!(secret.verify_keyed_hash("code", "x", &secret.keyed_hash("code", "x")));
        assert!(!secret.verify_keyed_hash("code", "y", &secret.keyed_hash("code", "x")));
        let sealed = secret.encrypt(b"private key");
        assert_eq!(secret.decrypt(&sealed).expect("decrypts"), b"private key");
        let other = ServerSecret::from_bytes(&[8u8; 32]);
        assert!(other.decrypt(&sealed).is_err());
    }

    #[test]
    fn short_secret_is_refused() {
        assert!(ServerSecret::from_base64("c2hvcnQ=").is_err());
    }

    #[test]
    fn generated_file_is_private_and_stable() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = ServerSecret::load_or_generate(None, dir.path()).expect("generate");
        let second = ServerSecret::load_or_generate(None, dir.path()).expect("reload");
        assert_eq!(first.keyed_hash("p", "s"), second.keyed_hash("p", "s"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("secret.key")).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
