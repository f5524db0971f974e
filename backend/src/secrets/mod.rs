//! Secrets at rest and on the way out: the Fernet keyring that encrypts variable values and
//! connection passwords/extras in the database, and the key-name rules that mask them as
//! `***` in API responses and audit entries ([`mask`]).
//!
//! The keyring is Airflow's: `core.fernet_key` holds one or more url-safe base64 keys of 32
//! bytes separated by commas; the first encrypts, any decrypts (Airflow's `MultiFernet`), so
//! values written by Airflow with the same key read here and rotation is adding a key in front
//! and running `updraft rotate-fernet-key`.

pub mod mask;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::{Config, ConfigError, DatabaseKind};

pub use mask::SensitiveNames;

/// Name of the generated key file in `UPDRAFT_HOME` (SQLite only).
pub const KEY_FILE: &str = "fernet.key";

/// Everything that handles secrets: the keyring and the masking rules. Cheap to clone.
#[derive(Clone)]
pub struct Secrets {
    keyring: Arc<Keyring>,
    pub names: Arc<SensitiveNames>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secrets")
            .field("keys", &self.keyring.keys.len())
            .finish()
    }
}

impl Secrets {
    /// The keyring from `core.fernet_key`; on SQLite without one, the key kept in
    /// `$UPDRAFT_HOME/fernet.key` (generated with mode 0600 on first use). PostgreSQL without
    /// a key is refused: processes on other machines could not read each other's secrets.
    pub fn load(config: &Config) -> Result<Self, ConfigError> {
        let names = Arc::new(SensitiveNames::from_settings(&config.settings.core));
        let keyring = match &config.settings.core.fernet_key {
            Some(keys) => Keyring::parse(keys.expose()).map_err(|why| {
                ConfigError(format!(
                    "core.fernet_key (UPDRAFT__CORE__FERNET_KEY) is not usable: {why}; a key is 32 random bytes in url-safe base64, e.g. from `openssl rand -base64 32 | tr '+/' '-_'`"
                ))
            })?,
            None => match config.database_url.kind() {
                DatabaseKind::Postgres => {
                    return Err(ConfigError(
                        "core.fernet_key is not set: with PostgreSQL every process must share one key to read the secrets the others wrote; set UPDRAFT__CORE__FERNET_KEY (or UPDRAFT__CORE__FERNET_KEY_FILE) to a key from `openssl rand -base64 32 | tr '+/' '-_'`, or to your Airflow's [core] fernet_key".into(),
                    ))
                }
                DatabaseKind::Sqlite => home_key(&config.home)?,
            },
        };
        Ok(Self {
            keyring: Arc::new(keyring),
            names,
        })
    }

    /// A keyring with one fresh key, for tests and `tasks test`-like tools.
    pub fn ephemeral() -> Self {
        Self {
            keyring: Arc::new(
                Keyring::parse(&fernet::Fernet::generate_key()).expect("a fresh key"),
            ),
            names: Arc::new(SensitiveNames::default()),
        }
    }

    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    pub fn encrypt(&self, plain: &str) -> String {
        self.keyring.encrypt(plain)
    }

    pub fn decrypt(&self, token: &str) -> Result<String, SecretError> {
        self.keyring.decrypt(token)
    }

    /// A stored value as plain text: decrypted when the row says it is encrypted.
    pub fn reveal(&self, stored: &str, encrypted: bool) -> Result<String, SecretError> {
        if encrypted {
            self.decrypt(stored)
        } else {
            Ok(stored.to_string())
        }
    }

    /// The JWT signing key: `auth.jwt_secret`, else derived from the first Fernet key.
    pub fn jwt_key(&self, configured: Option<&str>) -> Vec<u8> {
        match configured {
            Some(secret) => secret.as_bytes().to_vec(),
            None => {
                use sha2::{Digest, Sha256};
                let mut h = Sha256::new();
                h.update(b"updraft api token signing key\0");
                h.update(self.keyring.first_raw.as_bytes());
                h.finalize().to_vec()
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("a stored secret cannot be decrypted with any key in core.fernet_key: the key that encrypted it is missing (keep old keys after the new one while rotating)")]
    Decrypt,
    #[error("a stored secret decrypts to bytes that are not UTF-8")]
    NotUtf8,
}

/// Airflow's `MultiFernet`: encrypt with the first key, decrypt with any.
pub struct Keyring {
    keys: Vec<fernet::Fernet>,
    first_raw: String,
}

impl Keyring {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let parts: Vec<&str> = raw
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        if parts.is_empty() {
            return Err("it is empty".into());
        }
        let mut keys = Vec::new();
        for (i, part) in parts.iter().enumerate() {
            let key = fernet::Fernet::new(part).ok_or_else(|| {
                format!(
                    "key {} of {} is not 32 bytes of url-safe base64",
                    i + 1,
                    parts.len()
                )
            })?;
            keys.push(key);
        }
        Ok(Self {
            keys,
            first_raw: parts[0].to_string(),
        })
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn encrypt(&self, plain: &str) -> String {
        self.keys[0].encrypt(plain.as_bytes())
    }

    pub fn decrypt(&self, token: &str) -> Result<String, SecretError> {
        for key in &self.keys {
            if let Ok(bytes) = key.decrypt(token) {
                return String::from_utf8(bytes).map_err(|_| SecretError::NotUtf8);
            }
        }
        Err(SecretError::Decrypt)
    }

    /// Whether the first key encrypted this token (rotation skips those).
    pub fn is_current(&self, token: &str) -> bool {
        self.keys[0].decrypt(token).is_ok()
    }
}

fn key_path(home: &Path) -> PathBuf {
    home.join(KEY_FILE)
}

/// Reads `$UPDRAFT_HOME/fernet.key`, creating it (mode 0600, never overwritten) if missing.
fn home_key(home: &Path) -> Result<Keyring, ConfigError> {
    let path = key_path(home);
    let read = |path: &Path| -> Result<Keyring, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigError(format!(
                "{}: cannot read the Fernet key ({e}); fix its permissions or set UPDRAFT__CORE__FERNET_KEY",
                path.display()
            ))
        })?;
        Keyring::parse(text.trim()).map_err(|why| {
            ConfigError(format!(
                "{}: the Fernet key is not usable ({why}); restore the file from a backup or set UPDRAFT__CORE__FERNET_KEY (a new key cannot read secrets stored with the old one)",
                path.display()
            ))
        })
    };
    if path.exists() {
        return read(&path);
    }
    use std::os::unix::fs::OpenOptionsExt;
    let created = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path);
    match created {
        Ok(mut file) => {
            let key = fernet::Fernet::generate_key();
            file.write_all(format!("{key}\n").as_bytes())
                .and_then(|_| file.sync_all())
                .map_err(|e| {
                    ConfigError(format!(
                        "{}: cannot write the generated Fernet key ({e})",
                        path.display()
                    ))
                })?;
            tracing::info!(path = %path.display(), "generated a Fernet key for secrets at rest; back it up with the database");
            Keyring::parse(&key).map_err(ConfigError)
        }
        // Another process created it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => read(&path),
        Err(e) => Err(ConfigError(format!(
            "{}: cannot create the Fernet key file ({e}); make UPDRAFT_HOME writable or set UPDRAFT__CORE__FERNET_KEY",
            path.display()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A key and token made by Python's `cryptography.fernet` (what Airflow uses).
    const AIRFLOW_KEY: &str = "cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=";

    #[test]
    fn encrypts_and_decrypts_with_rotation() {
        let old = Keyring::parse(AIRFLOW_KEY).unwrap();
        let token = old.encrypt("s3cret");
        assert_ne!(token, "s3cret");
        let fresh = fernet::Fernet::generate_key();
        let rotated = Keyring::parse(&format!("{fresh}, {AIRFLOW_KEY}")).unwrap();
        assert_eq!(rotated.decrypt(&token).unwrap(), "s3cret");
        assert!(!rotated.is_current(&token));
        assert!(rotated.is_current(&rotated.encrypt("x")));
        let other = Keyring::parse(&fernet::Fernet::generate_key()).unwrap();
        assert!(matches!(other.decrypt(&token), Err(SecretError::Decrypt)));
    }

    #[test]
    fn reads_a_token_made_by_python_cryptography() {
        let token = "gAAAAABrAYuFDo-dwrvsziAJzxDmfoYSY8nvAGi67Esk57sCgCk7Yt5SrN6YTIXh4haGs0GZzNiU-Rvx0Q2Lpk4Vxc-Jz0v__w==";
        let ring = Keyring::parse(AIRFLOW_KEY).unwrap();
        assert_eq!(ring.decrypt(token).unwrap(), "made by python");
    }

    #[test]
    fn bad_keys_say_which() {
        assert!(Keyring::parse("").err().unwrap().contains("empty"));
        let e = Keyring::parse(&format!("{AIRFLOW_KEY},nope"))
            .err()
            .unwrap();
        assert!(e.contains("key 2 of 2"), "{e}");
    }

    #[test]
    fn home_key_is_generated_once_with_mode_0600() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let a = home_key(dir.path()).unwrap();
        let b = home_key(dir.path()).unwrap();
        assert_eq!(b.decrypt(&a.encrypt("x")).unwrap(), "x");
        let mode = std::fs::metadata(dir.path().join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
