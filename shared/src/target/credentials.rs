//! Target-cloud credentials on the command line: the `TARGET_OS_*`
//! variables (and python-mistralclient's `OS_TARGET_*`), `--target-os-*`
//! flags, or a clouds.yaml entry (with secure.yaml), turned into a token on
//! the target cloud by a password login. The CLI then sends the token, the
//! auth URL, the CA and the region as `X-Target-*` headers.
//!
//! Either all of auth URL, user name, password and project are given, or
//! none: a partial set stops before any request, naming what is missing.

use super::TargetCloud;
use super::keystone::{KeystoneClient, KeystoneError};
use super::policy::OutboundPolicy;
use crate::secret::Secret;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Password credentials for a target cloud.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetCredentials {
    pub auth_url: String,
    pub username: String,
    pub password: Secret,
    pub project_name: String,
    pub user_domain_name: String,
    pub project_domain_name: String,
    /// Path of a PEM CA bundle to trust for this cloud.
    pub ca_cert: Option<PathBuf>,
    pub region_name: Option<String>,
}

/// Why credentials could not be put together.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    /// Some but not all of the four required values are set. User's fault.
    #[error(
        "incomplete target cloud credentials: {missing} not set (set all of TARGET_OS_AUTH_URL, TARGET_OS_USERNAME, TARGET_OS_PASSWORD, TARGET_OS_TENANT, or none)"
    )]
    Incomplete { missing: String },
    /// `--target-cloud NAME` names no entry. User's fault.
    #[error("cloud '{name}' not found in {searched}")]
    UnknownCloud { name: String, searched: String },
    /// A clouds.yaml or secure.yaml that cannot be read or parsed.
    #[error("{path}: {reason}")]
    File { path: String, reason: String },
    /// The login to the target failed.
    #[error(transparent)]
    Keystone(#[from] KeystoneError),
}

/// The names of each value, in the order they are looked up: flag value
/// first (given by the caller), then `TARGET_OS_*`, then `OS_TARGET_*`.
const VARIABLES: [(&str, &[&str]); 8] = [
    ("auth_url", &["TARGET_OS_AUTH_URL", "OS_TARGET_AUTH_URL"]),
    ("username", &["TARGET_OS_USERNAME", "OS_TARGET_USERNAME"]),
    ("password", &["TARGET_OS_PASSWORD", "OS_TARGET_PASSWORD"]),
    (
        "tenant",
        &[
            "TARGET_OS_TENANT",
            "TARGET_OS_PROJECT_NAME",
            "OS_TARGET_TENANT_NAME",
            "OS_TARGET_PROJECT_NAME",
        ],
    ),
    ("ca_cert", &["TARGET_OS_CA_CERT", "OS_TARGET_CACERT"]),
    (
        "region",
        &["TARGET_OS_REGION_NAME", "OS_TARGET_REGION_NAME"],
    ),
    (
        "user_domain",
        &["TARGET_OS_USER_DOMAIN_NAME", "OS_TARGET_USER_DOMAIN_NAME"],
    ),
    (
        "project_domain",
        &[
            "TARGET_OS_PROJECT_DOMAIN_NAME",
            "OS_TARGET_PROJECT_DOMAIN_NAME",
        ],
    ),
];

impl TargetCredentials {
    /// From flags (`flag("auth_url")` ...) and the environment (`env(NAME)`).
    /// `Ok(None)`: nothing set, no target.
    pub fn from_sources(
        flag: &dyn Fn(&str) -> Option<String>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Option<TargetCredentials>, CredentialsError> {
        let value = |key: &str| -> Option<String> {
            flag(key).filter(|v| !v.is_empty()).or_else(|| {
                VARIABLES
                    .iter()
                    .find(|(k, _)| *k == key)
                    .and_then(|(_, names)| {
                        names.iter().find_map(|n| env(n).filter(|v| !v.is_empty()))
                    })
            })
        };
        let required = ["auth_url", "username", "password", "tenant"];
        let given: Vec<Option<String>> = required.iter().map(|k| value(k)).collect();
        if given.iter().all(Option::is_none) {
            return Ok(None);
        }
        let missing: Vec<&str> = required
            .iter()
            .zip(&given)
            .filter(|(_, v)| v.is_none())
            .map(|(k, _)| match *k {
                "auth_url" => "TARGET_OS_AUTH_URL",
                "username" => "TARGET_OS_USERNAME",
                "password" => "TARGET_OS_PASSWORD",
                _ => "TARGET_OS_TENANT",
            })
            .collect();
        if !missing.is_empty() {
            return Err(CredentialsError::Incomplete {
                missing: missing.join(", "),
            });
        }
        let mut given = given.into_iter().flatten();
        Ok(Some(TargetCredentials {
            auth_url: given.next().unwrap_or_default(),
            username: given.next().unwrap_or_default(),
            password: Secret::new(given.next().unwrap_or_default()),
            project_name: given.next().unwrap_or_default(),
            user_domain_name: value("user_domain").unwrap_or_else(|| "Default".into()),
            project_domain_name: value("project_domain").unwrap_or_else(|| "Default".into()),
            ca_cert: value("ca_cert").map(PathBuf::from),
            region_name: value("region"),
        }))
    }

    /// From the entry `name` of clouds.yaml, merged with secure.yaml, looked
    /// up as the `openstack` CLI does: `OS_CLIENT_CONFIG_FILE`, then
    /// `./clouds.yaml`, `$XDG_CONFIG_HOME/openstack/` (or
    /// `~/.config/openstack/`), `/etc/openstack/`.
    pub fn from_clouds_yaml(
        name: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<TargetCredentials, CredentialsError> {
        let dirs = config_dirs(env);
        let clouds_file = env("OS_CLIENT_CONFIG_FILE")
            .map(PathBuf::from)
            .into_iter()
            .chain(dirs.iter().map(|d| d.join("clouds.yaml")))
            .find(|p| p.exists());
        let secure_file = dirs
            .iter()
            .map(|d| d.join("secure.yaml"))
            .find(|p| p.exists());
        let searched = || {
            dirs.iter()
                .map(|d| d.join("clouds.yaml").display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut entry = match &clouds_file {
            Some(path) => read_cloud(path, name)?,
            None => None,
        }
        .ok_or_else(|| CredentialsError::UnknownCloud {
            name: name.to_string(),
            searched: clouds_file
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_else(searched),
        })?;
        if let Some(secure) = secure_file
            && let Some(extra) = read_cloud(&secure, name)?
        {
            merge(&mut entry, &extra);
        }
        let auth = entry.get("auth").cloned().unwrap_or(Value::Null);
        let field = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).map(str::to_string);
        let from_entry = |key: &str| -> Option<String> {
            match key {
                "auth_url" => field(&auth, "auth_url"),
                "username" => field(&auth, "username"),
                "password" => field(&auth, "password"),
                "tenant" => field(&auth, "project_name").or_else(|| field(&auth, "tenant_name")),
                "ca_cert" => field(&entry, "cacert"),
                "region" => field(&entry, "region_name"),
                "user_domain" => field(&auth, "user_domain_name"),
                "project_domain" => field(&auth, "project_domain_name"),
                _ => None,
            }
        };
        TargetCredentials::from_sources(&from_entry, &|_| None)?.ok_or_else(|| {
            CredentialsError::Incomplete {
                missing: format!("auth_url, username, password, project_name of cloud '{name}'"),
            }
        })
    }

    /// Log in to the target (password, project scope) and return it as a
    /// target with its token, CA and region, ready for the headers.
    pub async fn login(&self, policy: &OutboundPolicy) -> Result<TargetCloud, CredentialsError> {
        let ca_pem = match &self.ca_cert {
            Some(path) => Some(std::fs::read(path).map_err(|e| CredentialsError::File {
                path: path.display().to_string(),
                reason: e.to_string(),
            })?),
            None => None,
        };
        let keystone =
            KeystoneClient::new(&self.auth_url, ca_pem.as_deref(), false, policy).await?;
        // A busy Keystone may answer 5xx or time out: a few tries, as
        // keystoneauth does, before giving up.
        let mut attempt = 0;
        let (token, info) = loop {
            match keystone
                .password_auth(
                    &self.username,
                    &self.user_domain_name,
                    &self.password,
                    &self.project_name,
                    &self.project_domain_name,
                )
                .await
            {
                Ok(answer) => break answer,
                Err(e) if e.is_retryable() && attempt < 3 => {
                    attempt += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(200 * attempt)).await;
                }
                Err(e) => return Err(e.into()),
            }
        };
        Ok(TargetCloud {
            auth_url: keystone.auth_url().to_string(),
            token,
            ca_pem,
            insecure: false,
            catalog: None,
            region: self.region_name.clone(),
            project_id: info.project.as_ref().map(|p| p.id.clone()),
            user_id: Some(info.user.id.clone()),
            user_name: Some(self.username.clone()),
            user_domain_name: Some(self.user_domain_name.clone()),
            project_domain_name: Some(self.project_domain_name.clone()),
        })
    }
}

fn config_dirs(env: &dyn Fn(&str) -> Option<String>) -> Vec<PathBuf> {
    let mut dirs = vec![PathBuf::from(".")];
    if let Some(xdg) = env("XDG_CONFIG_HOME") {
        dirs.push(Path::new(&xdg).join("openstack"));
    } else if let Some(home) = env("HOME") {
        dirs.push(Path::new(&home).join(".config/openstack"));
    }
    dirs.push(PathBuf::from("/etc/openstack"));
    dirs
}

fn read_cloud(path: &Path, name: &str) -> Result<Option<Value>, CredentialsError> {
    let file_error = |reason: String| CredentialsError::File {
        path: path.display().to_string(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| file_error(e.to_string()))?;
    let doc: Value = serde_yaml_ng::from_str(&text).map_err(|e| file_error(e.to_string()))?;
    Ok(doc.get("clouds").and_then(|c| c.get(name)).cloned())
}

/// Merge `extra` into `base`, recursively for objects (secure.yaml adds
/// passwords to clouds.yaml's `auth`).
fn merge(base: &mut Value, extra: &Value) {
    match (base, extra) {
        (Value::Object(b), Value::Object(e)) => {
            for (k, v) in e {
                match b.get_mut(k) {
                    Some(existing) => merge(existing, v),
                    None => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (b, e) => *b = e.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn none_set_is_no_target_and_a_partial_set_names_what_is_missing() {
        let none = TargetCredentials::from_sources(&|_| None, &env_of(&[])).unwrap();
        assert!(none.is_none());
        let err = TargetCredentials::from_sources(
            &|_| None,
            &env_of(&[
                ("TARGET_OS_AUTH_URL", "http://k/v3"),
                ("TARGET_OS_PASSWORD", "pw"),
            ]),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "incomplete target cloud credentials: TARGET_OS_USERNAME, TARGET_OS_TENANT not set (set all of TARGET_OS_AUTH_URL, TARGET_OS_USERNAME, TARGET_OS_PASSWORD, TARGET_OS_TENANT, or none)"
        );
    }

    #[test]
    fn flags_win_over_target_os_which_win_over_os_target() {
        let env = env_of(&[
            ("TARGET_OS_AUTH_URL", "http://env/v3"),
            ("OS_TARGET_AUTH_URL", "http://mistralclient/v3"),
            ("OS_TARGET_USERNAME", "u"),
            ("OS_TARGET_PASSWORD", "p"),
            ("OS_TARGET_TENANT_NAME", "t"),
            ("TARGET_OS_CA_CERT", "/ca.pem"),
        ]);
        let flag = |k: &str| (k == "username").then(|| "flag-user".to_string());
        let c = TargetCredentials::from_sources(&flag, &env)
            .unwrap()
            .unwrap();
        assert_eq!(c.auth_url, "http://env/v3");
        assert_eq!(c.username, "flag-user");
        assert_eq!(c.project_name, "t");
        assert_eq!(c.user_domain_name, "Default");
        assert_eq!(c.ca_cert, Some(PathBuf::from("/ca.pem")));
        assert_eq!(format!("{:?}", c.password), "***");
    }

    #[test]
    fn clouds_yaml_with_secure_yaml() {
        let dir = std::env::temp_dir().join(format!("bora-clouds-{}", std::process::id()));
        let os_dir = dir.join("openstack");
        std::fs::create_dir_all(&os_dir).unwrap();
        std::fs::write(
            os_dir.join("clouds.yaml"),
            "clouds:\n  b:\n    auth:\n      auth_url: https://kb/v3\n      username: bob\n      project_name: proj-b\n    cacert: /b.pem\n    region_name: RegionOne\n",
        )
        .unwrap();
        std::fs::write(
            os_dir.join("secure.yaml"),
            "clouds:\n  b:\n    auth:\n      password: s3cret\n",
        )
        .unwrap();
        let xdg = dir.display().to_string();
        let env = env_of(&[("XDG_CONFIG_HOME", &xdg)]);
        let c = TargetCredentials::from_clouds_yaml("b", &env).unwrap();
        assert_eq!(c.auth_url, "https://kb/v3");
        assert_eq!(c.password.expose(), "s3cret");
        assert_eq!(c.ca_cert, Some(PathBuf::from("/b.pem")));
        assert_eq!(c.region_name.as_deref(), Some("RegionOne"));
        let err = TargetCredentials::from_clouds_yaml("nope", &env).unwrap_err();
        assert!(
            err.to_string().starts_with("cloud 'nope' not found in "),
            "{err}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
