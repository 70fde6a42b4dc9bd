//! Sealing (authenticated encryption) of secrets at rest.
//!
//! Every secret bora stores (a target cloud's token, a trust id, a password,
//! an application-credential secret) is sealed before it reaches a store and
//! unsealed only where it is used. A [`Sealed`] value names the key that
//! sealed it (`key_id`), so keys can rotate: a sealer holds one active key
//! for new seals and any number of old keys for unsealing.
//!
//! The associated data (`aad`) binds a ciphertext to its context, in bora
//! the root execution id: a sealed token copied into another execution's
//! record does not unseal there.
//!
//! # Two ports: [`Sealer`] (sync) and [`Keyring`] (async)
//! [`Sealer`] is synchronous on purpose: sealing is pure CPU work once the
//! key is in memory, and the sync trait is object-safe and usable from the
//! sync `prepare_execution`. Where the key comes from may need the network,
//! so the handlers do not hold a sealer but a [`Keyring`], asked once per
//! root execution for the sealer of its secrets:
//!
//! - at execution create, [`Keyring::for_new_root`] gives a sealer and,
//!   with envelope encryption, the wrapped data key to store beside the
//!   sealed values ([`RootKey`]);
//! - to unseal, [`Keyring::open`] takes that stored [`WrappedKey`] back and
//!   gives the sealer that unseals them.
//!
//! Two keyrings:
//! - [`LocalKeyring`] (the embedded default): one [`LocalKeySealer`] (key
//!   files beside the SQLite database) for every execution, no wrapped key.
//! - `KmsKeyring` (feature `aws`, the Lambda functions): envelope
//!   encryption, a fresh KMS data key per root execution, bound to it by
//!   the KMS encryption context; unwrapped keys are kept a few minutes in a
//!   small cache so one Lambda instance does not call KMS for every action
//!   of the same execution. See `seal/kms.rs`.
//!
//! A sub-workflow copies its parent's sealed values as they are: they are
//! bound to the root execution, whose wrapped key they carry.

#[cfg(feature = "aws")]
mod cache;
#[cfg(feature = "aws")]
pub mod kms;
mod local;

#[cfg(feature = "aws")]
pub use kms::{KmsKeyring, KmsSealer};
pub use local::{LocalKeySealer, LocalKeyring};

use serde::{Deserialize, Serialize};
use std::sync::Arc;

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

/// A data key as a key service (KMS) wrapped it: safe to store next to the
/// values it seals, useless without the key service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WrappedKey {
    /// The KMS key (ARN) that wrapped it.
    pub kms_key_id: String,
    /// KMS's ciphertext blob of the data key, base64 in JSON.
    #[serde(with = "base64_bytes")]
    pub ciphertext: Vec<u8>,
}

/// The key of one root execution's secrets, as [`Keyring::for_new_root`]
/// gives it.
#[derive(Clone)]
pub struct RootKey {
    /// Seals the execution's secrets.
    pub sealer: Arc<dyn Sealer>,
    /// The wrapped data key, to store beside the sealed values (`None` when
    /// the keyring needs nothing stored, as [`LocalKeyring`]).
    pub wrapped: Option<WrappedKey>,
}

impl std::fmt::Debug for RootKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RootKey")
            .field("sealer", &"***")
            .field("wrapped", &self.wrapped)
            .finish()
    }
}

/// Gives the [`Sealer`] of a root execution's secrets; see the module doc.
#[async_trait::async_trait]
pub trait Keyring: Send + Sync {
    /// The key for the secrets of a new root execution.
    async fn for_new_root(&self, root_execution_id: &str) -> Result<RootKey, SealError>;

    /// The sealer that unseals the secrets of `root_execution_id`, given
    /// the wrapped key stored beside them (if any).
    async fn open(
        &self,
        wrapped: Option<&WrappedKey>,
        root_execution_id: &str,
    ) -> Result<Arc<dyn Sealer>, SealError>;
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
    /// The key service (KMS) failed or refused: unreachable, throttled, no
    /// permission, a disabled key, or a wrapped key presented for another
    /// execution. Retrying helps only when `retryable` (network, throttling,
    /// the service's own failures).
    #[error("key service (KMS) {operation} failed: {reason}")]
    KeyService {
        /// The operation (`GenerateDataKey`, `Decrypt`).
        operation: &'static str,
        /// The service's error code and message, or the network error.
        reason: String,
        /// True when the same call may succeed later.
        retryable: bool,
    },
    /// The stored value and this deployment's keyring do not match: a
    /// value sealed with a KMS data key where only key files are loaded,
    /// or one without a wrapped key where KMS is used. Operator's fault
    /// (records moved between deployments); retrying does not help.
    #[error("cannot unseal: {0}")]
    WrongKeyring(String),
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

impl SealError {
    /// True when the same operation may succeed later (a key service that
    /// was unreachable or busy).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            SealError::KeyService {
                retryable: true,
                ..
            }
        )
    }
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
