//! The two test clouds started by `scripts/keystone/start.sh` (cloud A on
//! HTTP, cloud B on HTTPS with a private CA), read from the variables of
//! its `keystone.env`. A missing variable is a panic, not a skip.
#![allow(dead_code)]

use bora::secret::Secret;
use bora::target::{KeystoneClient, OutboundPolicy};

/// One test cloud, from the variables of `keystone.env`.
pub struct Cloud {
    pub url: String,
    pub user: String,
    pub user_id: String,
    pub password: Secret,
    pub project: String,
    pub project_id: String,
    pub user_domain: String,
    pub project_domain: String,
    pub ca_pem: Option<Vec<u8>>,
}

pub fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run scripts/keystone/start.sh and source keystone.env first")
    })
}

pub fn cloud(prefix: &str) -> Cloud {
    // Checked first so the message names the variable the brief promises.
    var("KS_A_URL");
    let ca_pem = std::env::var(format!("{prefix}_CA")).ok().map(|path| {
        std::fs::read(&path).unwrap_or_else(|error| panic!("{prefix}_CA={path}: {error}"))
    });
    Cloud {
        url: var(&format!("{prefix}_URL")),
        user: var(&format!("{prefix}_USER")),
        user_id: var(&format!("{prefix}_USER_ID")),
        password: Secret::new(var(&format!("{prefix}_PASSWORD"))),
        project: var(&format!("{prefix}_PROJECT")),
        project_id: var(&format!("{prefix}_PROJECT_ID")),
        user_domain: var(&format!("{prefix}_USER_DOMAIN")),
        project_domain: var(&format!("{prefix}_PROJECT_DOMAIN")),
        ca_pem,
    }
}

/// The test clouds listen on loopback, which the strict default refuses.
pub fn policy() -> OutboundPolicy {
    OutboundPolicy::from_values(Some("127.0.0.0/8,::1/128"), None).unwrap()
}

pub async fn client(cloud: &Cloud) -> KeystoneClient {
    KeystoneClient::new(&cloud.url, cloud.ca_pem.as_deref(), false, &policy())
        .await
        .unwrap()
}

pub async fn login(cloud: &Cloud) -> (KeystoneClient, Secret) {
    let client = client(cloud).await;
    // The test Keystones run on SQLite: a password login writes, and under
    // the suite's parallel logins one may answer 500 (database locked).
    // Retry those, as a client of a busy cloud would.
    let mut attempt = 0;
    loop {
        match client
            .password_auth(
                &cloud.user,
                &cloud.user_domain,
                &cloud.password,
                &cloud.project,
                &cloud.project_domain,
            )
            .await
        {
            Ok((token, _)) => return (client, token),
            Err(e) if e.is_retryable() && attempt < 8 => {
                attempt += 1;
                tokio::time::sleep(std::time::Duration::from_millis(100 * attempt)).await;
            }
            Err(e) => panic!("login to {} failed: {e}", cloud.url),
        }
    }
}
