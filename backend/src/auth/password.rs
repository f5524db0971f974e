//! Password hashing: argon2id with the `argon2` crate's defaults (OWASP's minimum: 19 MiB,
//! 2 passes), stored as PHC strings so parameters can rise later without breaking old hashes.

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;

/// A valid hash of a random password, checked when a user does not exist (equal timing).
pub const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$0mVz6mk1Y8MHzAb9DCbEpyP9sGmC7i2D4yP2e+6hZ7A";

pub fn hash(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("hashing the password failed: {e}"))
}

pub fn verify(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// The minimum we accept for a new password.
pub fn check_strength(password: &str) -> Result<(), String> {
    if password.chars().count() < 8 {
        return Err("the password is too short: use at least 8 characters".into());
    }
    if password.len() > 1024 {
        return Err("the password is too long: use at most 1024 bytes".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_and_verify() {
        let h = hash("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify("correct horse", &h));
        assert!(!verify("wrong horse", &h));
        assert!(!verify("x", "not a hash"));
        assert!(PasswordHash::new(DUMMY_HASH).is_ok());
        assert!(!verify("", DUMMY_HASH));
    }
}
