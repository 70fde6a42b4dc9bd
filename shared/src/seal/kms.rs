//! [`KmsSealer`]: envelope encryption with AWS KMS, one data key per
//! execution.
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

use super::{LocalKeySealer, SealError, Sealed, Sealer};
use crate::aws::describe_sdk_error;
use aws_sdk_kms::Client;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::DataKeySpec;
use secrecy::zeroize::Zeroizing;
use serde::{Deserialize, Serialize};

/// The encryption-context key binding a data key to its execution.
const CONTEXT_KEY: &str = "bora:execution_id";

/// Why a KMS operation failed. No variant carries key material.
#[derive(Debug, thiserror::Error)]
pub enum KmsError {
    /// KMS refused or failed the call (network, permissions, a disabled
    /// key, or a wrapped key presented for another execution). Retrying
    /// helps only for network or throttling errors.
    #[error("KMS {operation}: {reason}")]
    Kms {
        /// The KMS operation.
        operation: &'static str,
        /// KMS's error code and message.
        reason: String,
    },
    /// KMS answered with a data key that is not 32 bytes: a misconfigured
    /// key spec. Operator's fault.
    #[error("KMS returned a data key of {0} bytes; expected 32 (AES-256)")]
    BadDataKey(usize),
    /// Sealing or unsealing with the data key failed.
    #[error(transparent)]
    Seal(#[from] SealError),
}

/// A data key as KMS wrapped it: safe to store next to the values it seals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WrappedKey {
    /// The KMS key (ARN) that wrapped it.
    pub kms_key_id: String,
    /// KMS's ciphertext blob of the data key, base64 in JSON.
    #[serde(with = "super::base64_bytes")]
    pub ciphertext: Vec<u8>,
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

fn kms_error<E, R>(operation: &'static str, error: aws_sdk_kms::error::SdkError<E, R>) -> KmsError
where
    E: aws_sdk_kms::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    KmsError::Kms {
        operation,
        reason: describe_sdk_error(&error),
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
