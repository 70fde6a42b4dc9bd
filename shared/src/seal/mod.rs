//! Sealing (authenticated encryption) of secrets at rest.
//!
//! Every secret bora stores (a target cloud's token, a trust id, a password,
//! an application-credential secret) is sealed before it reaches a store and
//! unsealed only where it is used. A [`Sealed`] value names the key that
//! sealed it (`key_id`), so keys can rotate: a sealer holds one active key
//! for new seals and any number of old keys for unsealing.
//!
//! The associated data (`aad`) binds a ciphertext to its context, in bora
//! the execution id: a sealed token copied into another execution's record
//! does not unseal there.
//!
//! # How a KMS fits
//! The trait is synchronous on purpose: sealing is pure CPU work once the
//! key is in memory, and a sync trait is object-safe (`&dyn Sealer`). A KMS
//! sealer does envelope encryption: at execution create an async step asks
//! the KMS for a fresh data key (plaintext + KMS-wrapped copy), builds an
//! in-memory sealer from the plaintext data key (the same AES-256-GCM code
//! as [`LocalKeySealer`]) and stores the wrapped copy next to the sealed
//! values, with `key_id` naming it. To unseal, the async step asks the KMS
//! to unwrap the stored data key first, then unseals synchronously. The
//! network calls thus stay outside the trait, and one KMS call serves all
//! the secrets of an execution.

#[cfg(feature = "aws")]
pub mod kms;
mod local;

#[cfg(feature = "aws")]
pub use kms::KmsSealer;
pub use local::LocalKeySealer;

use serde::{Deserialize, Serialize};

/// A sealed secret: safe to store and to log (it reveals only its length).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sealed {
    /// Which key sealed it: a short hash of the key, never the key.
    pub key_id: String,
    /// The per-seal random nonce (96 bits for AES-GCM), base64 in JSON.
    #[serde(with = "base64_bytes")]
    pub nonce: Vec<u8>,
    /// Ciphertext followed by the authentication tag, base64 in JSON.
    #[serde(with = "base64_bytes")]
    pub ciphertext: Vec<u8>,
}

/// Encrypts and decrypts secrets with authenticated encryption.
pub trait Sealer: Send + Sync {
    /// Seal `plaintext` with the active key, bound to `aad` (which is not
    /// stored: the caller must give the same bytes to unseal).
    fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<Sealed, SealError>;

    /// Unseal with the key named by `sealed.key_id`; fails unless the
    /// ciphertext is intact and `aad` is the one it was sealed with.
    fn unseal(&self, sealed: &Sealed, aad: &[u8]) -> Result<Vec<u8>, SealError>;
}

/// Why sealing or unsealing failed. No variant carries plaintext or key bytes.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// The value was sealed with a key this sealer does not hold (a rotated
    /// key whose file was removed, or another deployment's key). Operator's
    /// fault: restore the old key file; retrying does not help.
    #[error(
        "cannot unseal: no key with id '{key_id}' is loaded (loaded keys: {known}); \
         restore the old key file that sealed it"
    )]
    UnknownKey {
        /// The key id the sealed value names.
        key_id: String,
        /// The ids of the keys this sealer holds, comma-separated.
        known: String,
    },
    /// Authentication failed: the ciphertext, nonce or tag was altered, or
    /// the associated data (execution id) is not the one it was sealed
    /// for. Data or caller fault; retrying does not help.
    #[error(
        "cannot unseal with key '{key_id}': the sealed value was altered or belongs \
         to another context (execution)"
    )]
    Integrity {
        /// The key that was tried.
        key_id: String,
    },
    /// The sealed value is malformed (e.g. a nonce of the wrong length).
    /// Data fault; retrying does not help.
    #[error("malformed sealed value: {0}")]
    Malformed(String),
    /// Encryption itself failed (practically only for absurd plaintext
    /// sizes). Bug or resource fault.
    #[error("sealing failed: {0}")]
    Encrypt(String),
    /// The key file could not be read, created or parsed. Operator's fault
    /// (path, permissions, content); retrying does not help.
    #[error("seal key file {path}: {reason}")]
    KeyFile {
        /// The key file's path.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// serde helper: `Vec<u8>` as standard base64 text.
mod base64_bytes {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(deserializer)?;
        STANDARD.decode(text).map_err(serde::de::Error::custom)
    }
}
