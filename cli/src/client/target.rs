//! The target cloud and the home cloud of `bora execution-create`.
//!
//! Target: `--target-os-*` flags, `TARGET_OS_*` (or python-mistralclient's
//! `OS_TARGET_*`) variables, or `--target-cloud NAME` from clouds.yaml; all
//! of auth URL, user, password and project, or none. The CLI logs in to the
//! target Keystone and sends the token, URL, CA and region as the
//! `X-Target-*` headers. Home: `--os-cloud NAME` or the `OS_*` variables,
//! when complete: a token for the home cloud, sent as `X-Auth-Token`.

use anyhow::Context;
use base64::Engine as _;
use bora::target::OutboundPolicy;
use bora::target::credentials::TargetCredentials;
use clap::Args;

#[derive(Args, Clone, Default)]
pub struct TargetArgs {
    /// Target cloud's Keystone URL (TARGET_OS_AUTH_URL).
    #[arg(long = "target-os-auth-url")]
    pub auth_url: Option<String>,
    /// User on the target cloud (TARGET_OS_USERNAME).
    #[arg(long = "target-os-username")]
    pub username: Option<String>,
    /// Password on the target cloud (TARGET_OS_PASSWORD).
    #[arg(long = "target-os-password")]
    pub password: Option<String>,
    /// Project name on the target cloud (TARGET_OS_TENANT).
    #[arg(long = "target-os-tenant")]
    pub tenant: Option<String>,
    /// PEM CA bundle of the target cloud (TARGET_OS_CA_CERT).
    #[arg(long = "target-os-ca-cert")]
    pub ca_cert: Option<String>,
    /// Region on the target cloud (TARGET_OS_REGION_NAME).
    #[arg(long = "target-os-region-name")]
    pub region: Option<String>,
    #[arg(long = "target-os-user-domain-name")]
    pub user_domain: Option<String>,
    #[arg(long = "target-os-project-domain-name")]
    pub project_domain: Option<String>,
    /// Read the target from this clouds.yaml entry (and secure.yaml).
    #[arg(long = "target-cloud")]
    pub target_cloud: Option<String>,
    /// The home cloud, from this clouds.yaml entry (default: the OS_* variables).
    #[arg(long = "os-cloud")]
    pub os_cloud: Option<String>,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// The CLI talks to clouds its user chose: only the always-refused
/// addresses (link-local, metadata) are off limits here; the server applies
/// its own policy to what it is sent.
fn cli_policy() -> OutboundPolicy {
    OutboundPolicy::from_values(Some("0.0.0.0/0,::/0"), None).unwrap_or_default()
}

impl TargetArgs {
    /// The target credentials, checked for completeness before any request.
    pub fn credentials(&self) -> anyhow::Result<Option<TargetCredentials>> {
        if let Some(name) = &self.target_cloud {
            return Ok(Some(TargetCredentials::from_clouds_yaml(name, &env)?));
        }
        let flag = |key: &str| -> Option<String> {
            match key {
                "auth_url" => self.auth_url.clone(),
                "username" => self.username.clone(),
                "password" => self.password.clone(),
                "tenant" => self.tenant.clone(),
                "ca_cert" => self.ca_cert.clone(),
                "region" => self.region.clone(),
                "user_domain" => self.user_domain.clone(),
                "project_domain" => self.project_domain.clone(),
                _ => None,
            }
        };
        Ok(TargetCredentials::from_sources(&flag, &env)?)
    }

    /// The home cloud's credentials: `--os-cloud`, or the `OS_*` variables
    /// when all four are set.
    fn home(&self) -> anyhow::Result<Option<TargetCredentials>> {
        if let Some(name) = &self.os_cloud {
            return Ok(Some(TargetCredentials::from_clouds_yaml(name, &env)?));
        }
        let os = |key: &str| -> Option<String> {
            match key {
                "auth_url" => env("OS_AUTH_URL"),
                "username" => env("OS_USERNAME"),
                "password" => env("OS_PASSWORD"),
                "tenant" => env("OS_PROJECT_NAME").or_else(|| env("OS_TENANT_NAME")),
                "ca_cert" => env("OS_CACERT"),
                "region" => env("OS_REGION_NAME"),
                "user_domain" => env("OS_USER_DOMAIN_NAME"),
                "project_domain" => env("OS_PROJECT_DOMAIN_NAME"),
                _ => None,
            }
        };
        let complete = ["auth_url", "username", "password", "tenant"]
            .iter()
            .all(|k| os(k).is_some());
        if !complete {
            return Ok(None);
        }
        Ok(TargetCredentials::from_sources(&os, &|_| None)?)
    }

    /// The headers execution-create sends: `X-Auth-Token` for the home
    /// cloud, `X-Target-*` for the target. Credentials are checked first,
    /// so a partial set stops before any request.
    pub async fn headers(&self) -> anyhow::Result<Vec<(&'static str, String)>> {
        let target = self.credentials()?;
        let home = self.home()?;
        let policy = cli_policy();
        let mut headers = Vec::new();
        if let Some(home) = home {
            let cloud = home
                .login(&policy)
                .await
                .with_context(|| format!("logging in to the home cloud {}", home.auth_url))?;
            headers.push(("X-Auth-Token", cloud.token.expose().to_string()));
        }
        if let Some(target) = target {
            let cloud = target
                .login(&policy)
                .await
                .with_context(|| format!("logging in to the target cloud {}", target.auth_url))?;
            headers.push(("X-Target-Auth-Uri", cloud.auth_url.clone()));
            headers.push(("X-Target-Auth-Token", cloud.token.expose().to_string()));
            if let Some(pem) = &cloud.ca_pem {
                headers.push((
                    "X-Target-Ca-Cert",
                    base64::engine::general_purpose::STANDARD.encode(pem),
                ));
            }
            if let Some(region) = &cloud.region {
                headers.push(("X-Target-Region-Name", region.clone()));
            }
            if let Some(project) = &cloud.project_id {
                headers.push(("X-Target-Project-Id", project.clone()));
            }
            if let Some(user) = &cloud.user_id {
                headers.push(("X-Target-User-Id", user.clone()));
            }
        }
        Ok(headers)
    }
}
