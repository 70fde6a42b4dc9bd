//! [`LocalKeySealer`]: AES-256-GCM with keys kept in local files.
//!
//! # Key files
//! A key file holds 32 random bytes written as 64 hex digits (surrounding
//! whitespace is ignored). Hex rather than raw bytes so an operator can
//! copy a key into a secret manager or an environment without mangling it.
//! A missing active key file is created with mode 0600.
//!
//! # Rotation
//! The active key is `PATH`; old keys are the files `PATH.old.*` beside it
//! (any suffix, e.g. a date). New values are sealed with the active key;
//! unsealing uses whichever loaded key `Sealed::key_id` names. To rotate:
//! [`LocalKeySealer::rotate`] (or by hand: rename `PATH` to
//! `PATH.old.<date>`, then open again). Remove an old file only once no
//! stored value names its id.
//!
//! # Key ids
//! The first 8 bytes of SHA-256 over a fixed label and the key, in hex:
//! short enough to store with every value, stable across restarts, and it
//! reveals nothing usable about the key.
//!
//! # As a keyring
//! [`LocalKeyring`] hands the same sealer to every execution and stores no
//! wrapped key: the key files are the whole secret, which is what the
//! embedded default (one machine, one database) wants.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use secrecy::zeroize::Zeroizing;

use super::{Keyring, RootKey, SealError, Sealed, Sealer, WrappedKey};

/// Length of an AES-256 key in bytes.
const KEY_LEN: usize = 32;
/// Length of an AES-GCM nonce in bytes (96 bits).
const NONCE_LEN: usize = 12;
/// Domain separation for key ids, so the id is not a plain hash of the key.
const KEY_ID_LABEL: &[u8] = b"bora seal key id v1\0";

/// A loaded key: its id and the cipher built from it.
struct LoadedKey {
    id: String,
    cipher: Aes256Gcm,
}

/// Seals with AES-256-GCM under a local key; see the module doc for the key
/// file format and rotation.
pub struct LocalKeySealer {
    /// `keys[0]` is the active key; the rest are old keys, for unsealing only.
    keys: Vec<LoadedKey>,
}

impl std::fmt::Debug for LocalKeySealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<&str> = self.keys.iter().map(|key| key.id.as_str()).collect();
        f.debug_struct("LocalKeySealer")
            .field("key_ids", &ids)
            .finish()
    }
}

impl LocalKeySealer {
    /// Load the active key from `path` (creating it, mode 0600, when
    /// missing) and every old key `path.old.*` beside it.
    pub fn open_or_create(path: impl AsRef<Path>) -> Result<Self, SealError> {
        let path = path.as_ref();
        if !path.exists() {
            create_key_file(path)?;
        }
        let mut keys = vec![load_key_file(path)?];
        for old in old_key_files(path)? {
            let key = load_key_file(&old)?;
            // The same key under two names is harmless; keep one.
            if keys.iter().all(|loaded| loaded.id != key.id) {
                keys.push(key);
            }
        }
        Ok(Self { keys })
    }

    /// A sealer from raw keys: `active` seals, `old` only unseal. For tests
    /// and for keys that come from elsewhere than a file (a KMS data key).
    pub fn from_keys(active: &[u8; KEY_LEN], old: &[[u8; KEY_LEN]]) -> Self {
        let keys = std::iter::once(active)
            .chain(old.iter())
            .map(load_key)
            .collect();
        Self { keys }
    }

    /// Rotate the key at `path`: rename it to `path.old.<unix seconds>`,
    /// create a fresh active key, and return a sealer holding both.
    pub fn rotate(path: impl AsRef<Path>) -> Result<Self, SealError> {
        let path = path.as_ref();
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|elapsed| elapsed.as_nanos())
            .unwrap_or_default();
        let mut old = PathBuf::from(format!("{}.old.{stamp}", path.display()));
        // Two rotations within one clock tick must not overwrite a key.
        let mut attempt = 0;
        while old.exists() {
            attempt += 1;
            old = PathBuf::from(format!("{}.old.{stamp}-{attempt}", path.display()));
        }
        fs::rename(path, &old).map_err(|error| key_file_error(path, error))?;
        Self::open_or_create(path)
    }

    /// The id of the active key (the one new seals name).
    pub fn active_key_id(&self) -> &str {
        &self.keys[0].id
    }

    fn key(&self, key_id: &str) -> Result<&LoadedKey, SealError> {
        self.keys
            .iter()
            .find(|key| key.id == key_id)
            .ok_or_else(|| SealError::UnknownKey {
                key_id: key_id.to_owned(),
                known: self
                    .keys
                    .iter()
                    .map(|key| key.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }
}

impl Sealer for LocalKeySealer {
    fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<Sealed, SealError> {
        let active = &self.keys[0];
        // A random 96-bit nonce per seal: with far fewer than 2^32 seals per
        // key the collision risk is negligible, and rotation resets it.
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let ciphertext = active
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .map_err(|error| SealError::Encrypt(error.to_string()))?;
        Ok(Sealed {
            key_id: active.id.clone(),
            nonce: nonce.to_vec(),
            ciphertext,
        })
    }

    fn unseal(&self, sealed: &Sealed, aad: &[u8]) -> Result<Vec<u8>, SealError> {
        let key = self.key(&sealed.key_id)?;
        if sealed.nonce.len() != NONCE_LEN {
            return Err(SealError::Malformed(format!(
                "nonce is {} bytes, expected {NONCE_LEN}",
                sealed.nonce.len()
            )));
        }
        key.cipher
            .decrypt(
                Nonce::from_slice(&sealed.nonce),
                Payload {
                    msg: &sealed.ciphertext,
                    aad,
                },
            )
            .map_err(|_| SealError::Integrity {
                key_id: key.id.clone(),
            })
    }
}

/// The [`Keyring`] of the embedded default: one local sealer for every
/// execution (see the module doc).
#[derive(Clone)]
pub struct LocalKeyring {
    sealer: Arc<dyn Sealer>,
}

impl LocalKeyring {
    /// A keyring that seals and unseals everything with `sealer`.
    pub fn new(sealer: impl Sealer + 'static) -> Self {
        LocalKeyring {
            sealer: Arc::new(sealer),
        }
    }
}

impl std::fmt::Debug for LocalKeyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LocalKeyring")
    }
}

#[async_trait::async_trait]
impl Keyring for LocalKeyring {
    async fn for_new_root(&self, _root_execution_id: &str) -> Result<RootKey, SealError> {
        Ok(RootKey {
            sealer: self.sealer.clone(),
            wrapped: None,
        })
    }

    async fn open(
        &self,
        wrapped: Option<&WrappedKey>,
        _root_execution_id: &str,
    ) -> Result<Arc<dyn Sealer>, SealError> {
        match wrapped {
            None => Ok(self.sealer.clone()),
            Some(wrapped) => Err(SealError::WrongKeyring(format!(
                "the value was sealed with a data key wrapped by KMS key '{}', but this \
                 deployment seals with local key files and has no KMS",
                wrapped.kms_key_id
            ))),
        }
    }
}

fn load_key(key: &[u8; KEY_LEN]) -> LoadedKey {
    let mut hasher = ring::digest::Context::new(&ring::digest::SHA256);
    hasher.update(KEY_ID_LABEL);
    hasher.update(key);
    let id = hex::encode(&hasher.finish().as_ref()[..8]);
    LoadedKey {
        id,
        cipher: Aes256Gcm::new(key.into()),
    }
}

fn key_file_error(path: &Path, error: impl std::fmt::Display) -> SealError {
    SealError::KeyFile {
        path: path.display().to_string(),
        reason: error.to_string(),
    }
}

fn create_key_file(path: &Path) -> Result<(), SealError> {
    if let Some(parent) = path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
    {
        fs::create_dir_all(parent).map_err(|error| key_file_error(parent, error))?;
    }
    let key = Aes256Gcm::generate_key(OsRng);
    let text = Zeroizing::new(format!("{}\n", hex::encode(key.as_slice())));
    // create_new: never overwrite a key another process just wrote; the
    // mode is set at creation so the key is never readable by others.
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|error| key_file_error(path, error))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|error| key_file_error(path, error))
}

fn load_key_file(path: &Path) -> Result<LoadedKey, SealError> {
    let text =
        Zeroizing::new(fs::read_to_string(path).map_err(|error| key_file_error(path, error))?);
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    hex::decode_to_slice(text.trim(), key.as_mut_slice()).map_err(|_| {
        key_file_error(
            path,
            format!("expected {} hex digits (a 32-byte key)", KEY_LEN * 2),
        )
    })?;
    Ok(load_key(&key))
}

/// The files `PATH.old.*` beside `path`, sorted by name for a stable order.
fn old_key_files(path: &Path) -> Result<Vec<PathBuf>, SealError> {
    let Some(name) = path.file_name().and_then(|name| name.to_str()) else {
        return Ok(Vec::new());
    };
    let prefix = format!("{name}.old.");
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).map_err(|error| key_file_error(dir, error))? {
        let entry = entry.map_err(|error| key_file_error(dir, error))?;
        if entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.starts_with(&prefix))
        {
            found.push(entry.path());
        }
    }
    found.sort();
    Ok(found)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    /// A fresh directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new() -> Self {
            let dir = std::env::temp_dir().join(format!("bora-seal-{}", uuid::Uuid::new_v4()));
            fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn round_trip_returns_the_plaintext() {
        let sealer = LocalKeySealer::from_keys(&[7; 32], &[]);
        let sealed = sealer.seal(b"gAAAA-token", b"execution-1").unwrap();
        assert_eq!(sealed.key_id, sealer.active_key_id());
        assert_eq!(sealed.nonce.len(), NONCE_LEN);
        assert!(!sealed.ciphertext.windows(5).any(|w| w == b"gAAAA"));
        assert_eq!(
            sealer.unseal(&sealed, b"execution-1").unwrap(),
            b"gAAAA-token"
        );
    }

    #[test]
    fn each_seal_uses_a_fresh_nonce() {
        let sealer = LocalKeySealer::from_keys(&[7; 32], &[]);
        let first = sealer.seal(b"same", b"x").unwrap();
        let second = sealer.seal(b"same", b"x").unwrap();
        assert_ne!(first.nonce, second.nonce);
        assert_ne!(first.ciphertext, second.ciphertext);
    }

    #[test]
    fn a_value_sealed_for_one_execution_does_not_unseal_for_another() {
        let sealer = LocalKeySealer::from_keys(&[7; 32], &[]);
        let sealed = sealer.seal(b"token", b"execution-1").unwrap();
        let error = sealer.unseal(&sealed, b"execution-2").unwrap_err();
        assert!(matches!(error, SealError::Integrity { .. }), "{error}");
        assert!(error.to_string().contains("another context"), "{error}");
    }

    #[test]
    fn tampered_ciphertext_or_nonce_fails() {
        let sealer = LocalKeySealer::from_keys(&[7; 32], &[]);
        let sealed = sealer.seal(b"token", b"e").unwrap();
        let mut tampered = sealed.clone();
        tampered.ciphertext[0] ^= 1;
        assert!(matches!(
            sealer.unseal(&tampered, b"e"),
            Err(SealError::Integrity { .. })
        ));
        let mut tampered = sealed.clone();
        tampered.nonce[3] ^= 1;
        assert!(matches!(
            sealer.unseal(&tampered, b"e"),
            Err(SealError::Integrity { .. })
        ));
        let mut short = sealed;
        short.nonce.truncate(4);
        assert!(matches!(
            sealer.unseal(&short, b"e"),
            Err(SealError::Malformed(_))
        ));
    }

    #[test]
    fn unknown_key_id_names_the_key_and_the_loaded_ones() {
        let old = LocalKeySealer::from_keys(&[1; 32], &[]);
        let new = LocalKeySealer::from_keys(&[2; 32], &[]);
        let sealed = old.seal(b"token", b"e").unwrap();
        let error = new.unseal(&sealed, b"e").unwrap_err().to_string();
        assert!(
            error.contains(&format!("no key with id '{}'", old.active_key_id())),
            "{error}"
        );
        assert!(error.contains(new.active_key_id()), "{error}");
    }

    #[test]
    fn sealed_serializes_as_base64_json_and_back() {
        let sealer = LocalKeySealer::from_keys(&[7; 32], &[]);
        let sealed = sealer.seal(b"token", b"e").unwrap();
        let json = serde_json::to_value(&sealed).unwrap();
        assert_eq!(json["key_id"], sealed.key_id.as_str());
        assert!(json["nonce"].is_string() && json["ciphertext"].is_string());
        let back: Sealed = serde_json::from_value(json).unwrap();
        assert_eq!(back, sealed);
    }

    #[test]
    fn a_dropped_cipher_zeroes_its_key_schedule() {
        // Compile-time: the `zeroize` features of `aes` and `polyval`
        // (workspace Cargo.toml) are on, so keys do not outlive a sealer.
        fn zeroed_on_drop<T: secrecy::zeroize::ZeroizeOnDrop>() {}
        zeroed_on_drop::<aes::Aes256>();
    }

    #[tokio::test]
    async fn the_local_keyring_gives_one_sealer_and_refuses_a_kms_wrapped_value() {
        let keyring = LocalKeyring::new(LocalKeySealer::from_keys(&[7; 32], &[]));
        let key = keyring.for_new_root("root-1").await.unwrap();
        assert!(key.wrapped.is_none());
        let sealed = key.sealer.seal(b"token", b"root-1").unwrap();
        let opened = keyring.open(None, "root-1").await.unwrap();
        assert_eq!(opened.unseal(&sealed, b"root-1").unwrap(), b"token");
        let wrapped = WrappedKey {
            kms_key_id: "arn:aws:kms:eu-west-1:1:key/k".into(),
            ciphertext: vec![1, 2, 3],
        };
        let error = keyring.open(Some(&wrapped), "root-1").await.err().unwrap();
        assert!(matches!(error, SealError::WrongKeyring(_)), "{error}");
        assert!(error.to_string().contains("key/k"), "{error}");
    }

    #[test]
    fn open_or_create_makes_a_0600_hex_key_and_reopens_it() {
        let dir = TempDir::new();
        let path = dir.0.join("keys/seal.key");
        let first = LocalKeySealer::open_or_create(&path).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(text.trim().len(), 64);
        let again = LocalKeySealer::open_or_create(&path).unwrap();
        assert_eq!(first.active_key_id(), again.active_key_id());
        let sealed = first.seal(b"token", b"e").unwrap();
        assert_eq!(again.unseal(&sealed, b"e").unwrap(), b"token");
    }

    #[test]
    fn a_malformed_key_file_is_named_in_the_error() {
        let dir = TempDir::new();
        let path = dir.0.join("seal.key");
        fs::write(&path, "not hex").unwrap();
        let error = LocalKeySealer::open_or_create(&path)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("seal.key") && error.contains("64 hex digits"),
            "{error}"
        );
    }

    #[test]
    fn after_rotation_old_values_still_unseal_and_new_ones_use_the_new_key() {
        let dir = TempDir::new();
        let path = dir.0.join("seal.key");
        let before = LocalKeySealer::open_or_create(&path).unwrap();
        let old_sealed = before.seal(b"old token", b"e").unwrap();

        let after = LocalKeySealer::rotate(&path).unwrap();
        assert_ne!(after.active_key_id(), before.active_key_id());
        assert_eq!(after.unseal(&old_sealed, b"e").unwrap(), b"old token");
        let new_sealed = after.seal(b"new token", b"e").unwrap();
        assert_eq!(new_sealed.key_id, after.active_key_id());

        // A restart finds the old key again through the PATH.old.* file.
        let reopened = LocalKeySealer::open_or_create(&path).unwrap();
        assert_eq!(reopened.unseal(&old_sealed, b"e").unwrap(), b"old token");
        assert_eq!(reopened.unseal(&new_sealed, b"e").unwrap(), b"new token");

        // Without the old file, the old value fails with a clear error.
        for old in old_key_files(&path).unwrap() {
            fs::remove_file(old).unwrap();
        }
        let trimmed = LocalKeySealer::open_or_create(&path).unwrap();
        let error = trimmed.unseal(&old_sealed, b"e").unwrap_err();
        assert!(matches!(error, SealError::UnknownKey { .. }), "{error}");
    }
}
