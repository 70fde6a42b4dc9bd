//! The target cloud of an execution: which OpenStack cloud its actions talk
//! to, chosen by the caller at execution create (Mistral's "multi-VIM").
//!
//! - [`headers`]: parse and validate the target from `X-Target-*` headers or
//!   the `params.target` body form.
//! - [`policy`]: which addresses a caller-supplied URL may reach.
//! - [`keystone`]: a small Keystone v3 client with a per-target CA.
//! - [`catalog`]: endpoint selection in the token's own service catalog.
//!
//! A [`TargetCloud`] holds the token as a [`Secret`]; at rest it becomes a
//! [`SealedTarget`] whose token is sealed and bound to the root execution
//! id, with the wrapped data key that sealed it when the keyring is KMS
//! (see [`crate::seal`]).

pub mod catalog;
pub mod credentials;
pub mod headers;
pub mod keystone;
pub mod policy;

pub use catalog::{Catalog, CatalogError};
pub use headers::{TargetError, parse_body_target, parse_target_headers};
pub use keystone::{KeystoneClient, KeystoneError, TokenInfo};
pub use policy::{CheckedUrl, OutboundPolicy, PolicyError};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::seal::{Keyring, RootKey, SealError, Sealed, Sealer, WrappedKey};
use crate::secret::Secret;

/// A validated target cloud, as given at execution create.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetCloud {
    /// The target's Keystone URL (http or https, no user info).
    pub auth_url: String,
    /// The caller's token on the target cloud.
    pub token: Secret,
    /// PEM bundle of CA certificates to trust for this target only.
    pub ca_pem: Option<Vec<u8>>,
    /// Skip TLS verification (only where the outbound policy allows it).
    pub insecure: bool,
    /// The token's service catalog, as a list of services, when given.
    pub catalog: Option<Value>,
    /// The region to pick endpoints in.
    pub region: Option<String>,
    /// The token's project id.
    pub project_id: Option<String>,
    /// The token's user id.
    pub user_id: Option<String>,
    /// The token's user name.
    pub user_name: Option<String>,
    /// The user's domain name.
    pub user_domain_name: Option<String>,
    /// The project's domain name.
    pub project_domain_name: Option<String>,
}

/// The storage form of a [`TargetCloud`]: non-secret fields in clear, the
/// token sealed with the execution id as associated data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SealedTarget {
    /// See [`TargetCloud::auth_url`].
    pub auth_url: String,
    /// The sealed token.
    pub token: Sealed,
    /// The KMS-wrapped data key that sealed the token; absent with local
    /// key files (and in records written before KMS sealing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wrapped_key: Option<WrappedKey>,
    /// The CA bundle as PEM text (not secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_pem: Option<String>,
    /// See [`TargetCloud::insecure`].
    #[serde(default)]
    pub insecure: bool,
    /// See [`TargetCloud::catalog`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catalog: Option<Value>,
    /// See [`TargetCloud::region`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// See [`TargetCloud::project_id`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_id: Option<String>,
    /// See [`TargetCloud::user_id`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// See [`TargetCloud::user_name`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,
    /// See [`TargetCloud::user_domain_name`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_domain_name: Option<String>,
    /// See [`TargetCloud::project_domain_name`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_domain_name: Option<String>,
}

/// The associated data that binds a sealed target token to its execution.
fn token_aad(execution_id: &str) -> Vec<u8> {
    format!("bora/target-token/v1/{execution_id}").into_bytes()
}

impl TargetCloud {
    /// What the API may show about the target: no token, and the CA only as
    /// certificate fingerprints (it is not secret, but it is long).
    pub fn public_view(&self) -> Value {
        let ca_cert = self
            .ca_pem
            .as_deref()
            .map(|pem| json!({ "sha256_fingerprints": headers::certificate_fingerprints(pem) }));
        json!({
            "auth_url": self.auth_url,
            "token": "***",
            "ca_cert": ca_cert,
            "insecure": self.insecure,
            "service_catalog": self.catalog.as_ref().map(|_| "present"),
            "region_name": self.region,
            "project_id": self.project_id,
            "user_id": self.user_id,
            "user_name": self.user_name,
            "user_domain_name": self.user_domain_name,
            "project_domain_name": self.project_domain_name,
        })
    }

    /// The storage form, with the token sealed by `key` for the root
    /// execution `root_execution_id`.
    pub fn seal(&self, key: &RootKey, root_execution_id: &str) -> Result<SealedTarget, SealError> {
        Ok(SealedTarget {
            auth_url: self.auth_url.clone(),
            token: key.sealer.seal(
                self.token.expose().as_bytes(),
                &token_aad(root_execution_id),
            )?,
            wrapped_key: key.wrapped.clone(),
            // Validated PEM is ASCII text; lossy conversion never triggers.
            ca_pem: self
                .ca_pem
                .as_deref()
                .map(|pem| String::from_utf8_lossy(pem).into_owned()),
            insecure: self.insecure,
            catalog: self.catalog.clone(),
            region: self.region.clone(),
            project_id: self.project_id.clone(),
            user_id: self.user_id.clone(),
            user_name: self.user_name.clone(),
            user_domain_name: self.user_domain_name.clone(),
            project_domain_name: self.project_domain_name.clone(),
        })
    }
}

impl SealedTarget {
    /// Open the key that sealed the token (KMS `Decrypt` or a cache hit with
    /// a KMS keyring), then unseal it for the root execution
    /// `root_execution_id`.
    pub async fn open(
        &self,
        keyring: &dyn Keyring,
        root_execution_id: &str,
    ) -> Result<TargetCloud, SealError> {
        let sealer = keyring
            .open(self.wrapped_key.as_ref(), root_execution_id)
            .await?;
        self.unseal(sealer.as_ref(), root_execution_id)
    }

    /// Unseal the token; fails when the record was moved to another
    /// execution, altered, or sealed with a key no longer loaded.
    pub fn unseal(
        &self,
        sealer: &dyn Sealer,
        execution_id: &str,
    ) -> Result<TargetCloud, SealError> {
        let token = sealer.unseal(&self.token, &token_aad(execution_id))?;
        let token = String::from_utf8(token)
            .map_err(|_| SealError::Malformed("sealed target token is not UTF-8".into()))?;
        Ok(self.with_token(Secret::new(token)))
    }

    /// What the API may show: the same as [`TargetCloud::public_view`],
    /// without unsealing anything.
    pub fn public_view(&self) -> Value {
        self.with_token(Secret::new(String::new())).public_view()
    }

    fn with_token(&self, token: Secret) -> TargetCloud {
        TargetCloud {
            auth_url: self.auth_url.clone(),
            token,
            ca_pem: self.ca_pem.as_ref().map(|pem| pem.clone().into_bytes()),
            insecure: self.insecure,
            catalog: self.catalog.clone(),
            region: self.region.clone(),
            project_id: self.project_id.clone(),
            user_id: self.user_id.clone(),
            user_name: self.user_name.clone(),
            user_domain_name: self.user_domain_name.clone(),
            project_domain_name: self.project_domain_name.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seal::{LocalKeySealer, LocalKeyring};

    fn target() -> TargetCloud {
        TargetCloud {
            auth_url: "https://keystone.example.com/v3".into(),
            token: Secret::new("gAAAAA-secret-token"),
            ca_pem: None,
            insecure: false,
            catalog: None,
            region: Some("RegionTwo".into()),
            project_id: Some("p1".into()),
            user_id: None,
            user_name: None,
            user_domain_name: None,
            project_domain_name: None,
        }
    }

    #[test]
    fn public_view_hides_the_token() {
        let view = target().public_view();
        assert_eq!(view["token"], "***");
        assert_eq!(view["region_name"], "RegionTwo");
        assert!(!view.to_string().contains("secret-token"));
    }

    #[tokio::test]
    async fn sealed_target_round_trips_only_for_its_execution() {
        let keyring = LocalKeyring::new(LocalKeySealer::from_keys(&[9; 32], &[]));
        let key = keyring.for_new_root("exec-1").await.unwrap();
        let sealed = target().seal(&key, "exec-1").unwrap();
        let stored = serde_json::to_string(&sealed).unwrap();
        assert!(!stored.contains("secret-token"), "{stored}");
        // With local key files nothing is wrapped, and the stored form is
        // the one records had before KMS sealing.
        assert!(!stored.contains("wrapped_key"), "{stored}");
        let loaded: SealedTarget = serde_json::from_str(&stored).unwrap();
        assert_eq!(loaded.open(&keyring, "exec-1").await.unwrap(), target());
        assert!(loaded.open(&keyring, "exec-2").await.is_err());
    }

    #[test]
    fn a_wrapped_key_is_stored_beside_the_token_and_read_back() {
        let key = RootKey {
            sealer: std::sync::Arc::new(LocalKeySealer::from_keys(&[9; 32], &[])),
            wrapped: Some(WrappedKey {
                kms_key_id: "arn:aws:kms:us-east-1:1:key/k".into(),
                ciphertext: vec![7; 24],
            }),
        };
        let sealed = target().seal(&key, "exec-1").unwrap();
        let stored = serde_json::to_value(&sealed).unwrap();
        assert_eq!(
            stored["wrapped_key"]["kms_key_id"],
            "arn:aws:kms:us-east-1:1:key/k"
        );
        let loaded: SealedTarget = serde_json::from_value(stored).unwrap();
        assert_eq!(loaded.wrapped_key, key.wrapped);
        assert!(!format!("{key:?}").contains("9, 9"), "{key:?}");
    }
}
