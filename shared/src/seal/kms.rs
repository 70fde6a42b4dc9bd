//! [`KmsSealer`]: envelope encryption with AWS KMS, one data key per
//! execution, and [`KmsKeyring`], the [`Keyring`] the Lambda functions use.
//!
//! At execution create, [`KmsSealer::for_execution`] asks KMS for a fresh
//! AES-256 data key (`GenerateDataKey`, with the execution id as encryption
//! context) and returns an [`ExecutionSealer`]: a synchronous [`Sealer`]
//! holding the plaintext data key in memory (the same AES-256-GCM code as
//! [`LocalKeySealer`]) and the KMS-wrapped copy. The caller stores the
//! wrapped key beside the sealed values (an [`Envelope`] carries both).
//! To unseal later, [`KmsSealer::open`] asks KMS to unwrap the stored data
//! key (`Decrypt`, which fails unless the encryption context names the same
//! execution) and again yields a synchronous sealer.
//!
//! This is how async KMS calls fit the synchronous [`Sealer`] trait: the
//! network calls happen once per execution in these async constructors;
//! sealing and unsealing themselves are pure CPU work. The plaintext data
//! key never leaves the process and is zeroed on drop; its `Debug` shows
//! only the key id.
//!
//! # As a keyring
//! [`KmsKeyring`] gives a fresh data key per *root* execution (its
//! sub-workflows share it, as they share its sealed values) and keeps the
//! keys it unwrapped in a [`KeyCache`] (five minutes, a bounded number),
//! found by root execution and wrapped key, so the actions of one execution
//! on one Lambda instance cost one `Decrypt`. A KMS error becomes
//! [`SealError::KeyService`], retryable when the network or KMS itself
//! failed, so the message (or API request) is tried again rather than the
//! action failed.

use super::cache::KeyCache;
use super::{Keyring, LocalKeySealer, RootKey, SealError, Sealed, Sealer, WrappedKey};
use crate::aws::describe_sdk_error;
use aws_sdk_kms::Client;
use aws_sdk_kms::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::DataKeySpec;
use secrecy::zeroize::Zeroizing;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// The encryption-context key binding a data key to its execution.
const CONTEXT_KEY: &str = "bora:execution_id";

/// Why a KMS operation failed. No variant carries key material.
#[derive(Debug, thiserror::Error)]
pub enum KmsError {
    /// KMS refused or failed the call (network, permissions, a disabled
    /// key, or a wrapped key presented for another execution). Retrying
    /// helps only when `retryable`.
    #[error("KMS {operation}: {reason}")]
    Kms {
        /// The KMS operation.
        operation: &'static str,
        /// KMS's error code and message.
        reason: String,
        /// True for network, throttling and KMS-internal failures.
        retryable: bool,
    },
    /// KMS answered with a data key that is not 32 bytes: a misconfigured
    /// key spec. Operator's fault.
    #[error("KMS returned a data key of {0} bytes; expected 32 (AES-256)")]
    BadDataKey(usize),
    /// Sealing or unsealing with the data key failed.
    #[error(transparent)]
    Seal(#[from] SealError),
}

impl From<KmsError> for SealError {
    fn from(error: KmsError) -> SealError {
        match error {
            KmsError::Kms {
                operation,
                reason,
                retryable,
            } => SealError::KeyService {
                operation,
                reason,
                retryable,
            },
            KmsError::BadDataKey(_) => SealError::Encrypt(error.to_string()),
            KmsError::Seal(error) => error,
        }
    }
}

/// A sealed value together with the wrapped data key that sealed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// The execution's wrapped data key.
    pub wrapped_key: WrappedKey,
    /// The value, sealed with the data key.
    pub sealed: Sealed,
}

/// Creates and unwraps per-execution data keys with a KMS key.
#[derive(Clone, Debug)]
pub struct KmsSealer {
    client: Client,
    key_id: String,
}

/// A synchronous [`Sealer`] for one execution's data key.
pub struct ExecutionSealer {
    inner: LocalKeySealer,
    wrapped: WrappedKey,
}

impl std::fmt::Debug for ExecutionSealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecutionSealer")
            .field("key_id", &self.inner.active_key_id())
            .field("kms_key_id", &self.wrapped.kms_key_id)
            .finish()
    }
}

/// KMS error codes that say "try again later" rather than "no".
const RETRYABLE_CODES: &[&str] = &[
    "KMSInternalException",
    "DependencyTimeoutException",
    "KeyUnavailableException",
    "ThrottlingException",
    "LimitExceededException",
];

fn kms_error<E, R>(operation: &'static str, error: SdkError<E, R>) -> KmsError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let retryable = match &error {
        SdkError::ServiceError(service) => service
            .err()
            .code()
            .is_some_and(|code| RETRYABLE_CODES.contains(&code)),
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        _ => false,
    };
    KmsError::Kms {
        operation,
        reason: describe_sdk_error(&error),
        retryable,
    }
}

fn sealer_from(plaintext: &[u8]) -> Result<LocalKeySealer, KmsError> {
    let key: Zeroizing<[u8; 32]> = Zeroizing::new(
        plaintext
            .try_into()
            .map_err(|_| KmsError::BadDataKey(plaintext.len()))?,
    );
    Ok(LocalKeySealer::from_keys(&key, &[]))
}

impl KmsSealer {
    /// A sealer on the KMS key `key_id` (id, ARN or alias).
    pub fn new(client: Client, key_id: impl Into<String>) -> Self {
        KmsSealer {
            client,
            key_id: key_id.into(),
        }
    }

    /// A fresh data key for `execution_id`.
    pub async fn for_execution(&self, execution_id: &str) -> Result<ExecutionSealer, KmsError> {
        let out = self
            .client
            .generate_data_key()
            .key_id(&self.key_id)
            .key_spec(DataKeySpec::Aes256)
            .encryption_context(CONTEXT_KEY, execution_id)
            .send()
            .await
            .map_err(|e| kms_error("GenerateDataKey", e))?;
        let plaintext = Zeroizing::new(out.plaintext.map(|b| b.into_inner()).unwrap_or_default());
        Ok(ExecutionSealer {
            inner: sealer_from(&plaintext)?,
            wrapped: WrappedKey {
                kms_key_id: out.key_id.unwrap_or_else(|| self.key_id.clone()),
                ciphertext: out
                    .ciphertext_blob
                    .map(|b| b.into_inner())
                    .unwrap_or_default(),
            },
        })
    }

    /// Unwrap the stored data key of `execution_id`.
    pub async fn open(
        &self,
        execution_id: &str,
        wrapped: &WrappedKey,
    ) -> Result<ExecutionSealer, KmsError> {
        let out = self
            .client
            .decrypt()
            .key_id(&wrapped.kms_key_id)
            .ciphertext_blob(Blob::new(wrapped.ciphertext.clone()))
            .encryption_context(CONTEXT_KEY, execution_id)
            .send()
            .await
            .map_err(|e| kms_error("Decrypt", e))?;
        let plaintext = Zeroizing::new(out.plaintext.map(|b| b.into_inner()).unwrap_or_default());
        Ok(ExecutionSealer {
            inner: sealer_from(&plaintext)?,
            wrapped: wrapped.clone(),
        })
    }

    /// Unseal an [`Envelope`] of `execution_id` (one KMS call). `aad` as
    /// given to [`Sealer::seal`].
    pub async fn unseal_envelope(
        &self,
        execution_id: &str,
        envelope: &Envelope,
        aad: &[u8],
    ) -> Result<Vec<u8>, KmsError> {
        let sealer = self.open(execution_id, &envelope.wrapped_key).await?;
        Ok(sealer.unseal(&envelope.sealed, aad)?)
    }
}

impl ExecutionSealer {
    /// The wrapped data key, to store beside the sealed values.
    pub fn wrapped_key(&self) -> &WrappedKey {
        &self.wrapped
    }

    /// Seal and bundle the result with the wrapped key.
    pub fn seal_envelope(&self, plaintext: &[u8], aad: &[u8]) -> Result<Envelope, SealError> {
        Ok(Envelope {
            wrapped_key: self.wrapped.clone(),
            sealed: self.seal(plaintext, aad)?,
        })
    }
}

impl Sealer for ExecutionSealer {
    fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<Sealed, SealError> {
        self.inner.seal(plaintext, aad)
    }

    fn unseal(&self, sealed: &Sealed, aad: &[u8]) -> Result<Vec<u8>, SealError> {
        self.inner.unseal(sealed, aad)
    }
}

/// The [`Keyring`] on KMS: a data key per root execution, unwrapped keys
/// cached; see the module doc.
pub struct KmsKeyring {
    kms: KmsSealer,
    cache: KeyCache,
}

impl std::fmt::Debug for KmsKeyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KmsKeyring")
            .field("kms_key_id", &self.kms.key_id)
            .finish()
    }
}

impl KmsKeyring {
    /// How long an unwrapped data key is kept: long enough for the actions
    /// of a short execution, short enough that a disabled KMS key or
    /// revoked permission stops working here within minutes.
    pub const CACHE_TTL: Duration = Duration::from_secs(300);
    /// How many unwrapped data keys are kept (a few hundred bytes each).
    pub const CACHE_CAPACITY: usize = 1024;

    /// A keyring on `kms` with the default cache.
    pub fn new(kms: KmsSealer) -> Self {
        Self::with_cache(kms, Self::CACHE_TTL, Self::CACHE_CAPACITY)
    }

    /// A keyring on `kms` keeping at most `capacity` keys for `ttl` each
    /// (capacity 0: no cache, one `Decrypt` per open).
    pub fn with_cache(kms: KmsSealer, ttl: Duration, capacity: usize) -> Self {
        KmsKeyring {
            kms,
            cache: KeyCache::new(ttl, capacity),
        }
    }
}

#[async_trait::async_trait]
impl Keyring for KmsKeyring {
    async fn for_new_root(&self, root_execution_id: &str) -> Result<RootKey, SealError> {
        let sealer = self.kms.for_execution(root_execution_id).await?;
        let wrapped = sealer.wrapped_key().clone();
        Ok(RootKey {
            sealer: Arc::new(sealer),
            wrapped: Some(wrapped),
        })
    }

    async fn open(
        &self,
        wrapped: Option<&WrappedKey>,
        root_execution_id: &str,
    ) -> Result<Arc<dyn Sealer>, SealError> {
        let Some(wrapped) = wrapped else {
            return Err(SealError::WrongKeyring(
                "the value has no KMS-wrapped data key beside it: it was sealed with local \
                 key files (bora run / serve), which this deployment does not hold"
                    .into(),
            ));
        };
        if let Some(sealer) = self.cache.get(root_execution_id, wrapped) {
            return Ok(sealer);
        }
        let sealer: Arc<dyn Sealer> = Arc::new(self.kms.open(root_execution_id, wrapped).await?);
        self.cache
            .insert(root_execution_id, wrapped, sealer.clone());
        Ok(sealer)
    }
}
