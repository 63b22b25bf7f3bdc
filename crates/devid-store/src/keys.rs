//! Secrets of API keys: generated from the OS random source, stored only as a SHA-256
//! hash, compared in constant time.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use rand::rngs::OsRng;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// 256 bits: comfortably above the 128 the design asks for.
const SECRET_BYTES: usize = 32;
const KEY_ID_BYTES: usize = 8;

pub fn new_key_id() -> String {
    let mut bytes = [0u8; KEY_ID_BYTES];
    OsRng.fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn new_secret() -> String {
    let mut bytes = [0u8; SECRET_BYTES];
    OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn hash_secret(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

pub fn secret_matches(secret: &str, stored_hash: &[u8]) -> bool {
    let presented = hash_secret(secret);
    presented.len() == stored_hash.len() && bool::from(presented.ct_eq(stored_hash))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_long_random_and_dot_free() {
        let a = new_secret();
        let b = new_secret();
        assert_ne!(a, b);
        assert!(a.len() >= 43);
        assert!(!a.contains('.'));
        assert_eq!(new_key_id().len(), 16);
    }

    #[test]
    fn only_the_right_secret_matches_its_hash() {
        let s = new_secret();
        let h = hash_secret(&s);
        assert!(secret_matches(&s, &h));
        assert!(!secret_matches(&new_secret(), &h));
        assert!(!secret_matches(&s, &h[..16]));
    }
}
