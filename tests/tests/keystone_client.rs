//! bora's Keystone v3 client against two real Keystone 30 clouds: A over
//! HTTP, B over HTTPS with a private CA. Start them and export their
//! variables first:
//!
//! ```sh
//! env_file=$(scripts/keystone/start.sh /tmp/bora-keystone)
//! source "$env_file"
//! cargo test -p bora-tests --test keystone_client
//! ```
//!
//! (`scripts/keystone/test.sh` does all three.) A missing variable is a
//! panic, not a skip: these tests are the proof the client works on a real
//! Keystone.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

mod clouds;

use bora::secret::Secret;
use bora::target::{CatalogError, KeystoneClient, KeystoneError, OutboundPolicy};
use clouds::{client, cloud, login, policy, var};
use serde_json::{Value, json};

fn unique(label: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{label}-{nanos}")
}

#[tokio::test]
async fn password_auth_gives_each_cloud_its_own_project_token() {
    for prefix in ["KS_A", "KS_B"] {
        let cloud = cloud(prefix);
        let client = client(&cloud).await;
        let (token, info) = client
            .password_auth(
                &cloud.user,
                &cloud.user_domain,
                &cloud.password,
                &cloud.project,
                &cloud.project_domain,
            )
            .await
            .unwrap();
        assert_eq!(info.user.id, cloud.user_id, "{prefix}");
        let project = info.project.as_ref().expect("project-scoped token");
        assert_eq!(project.id, cloud.project_id, "{prefix}");
        assert_eq!(project.name.as_deref(), Some(cloud.project.as_str()));
        assert!(
            info.role_names().contains(&"member"),
            "{prefix}: {:?}",
            info.role_names()
        );
        assert!(info.methods.contains(&"password".to_owned()));
        assert_eq!(format!("{token:?}"), "***");
    }
}

#[tokio::test]
async fn validate_token_returns_the_right_project_for_each_cloud() {
    for prefix in ["KS_A", "KS_B"] {
        let cloud = cloud(prefix);
        let (client, token) = login(&cloud).await;
        let started = Instant::now();
        let info = client.validate_token(&token).await.unwrap();
        eprintln!(
            "{prefix}: validate_token round trip {:?}",
            started.elapsed()
        );
        assert_eq!(info.project.unwrap().id, cloud.project_id, "{prefix}");
        assert_eq!(info.user.name.as_deref(), Some(cloud.user.as_str()));
        assert!(!info.expires_at.is_empty());
        assert!(
            !info.catalog.services.is_empty(),
            "{prefix}: validation returns the catalog"
        );
    }
}

#[tokio::test]
async fn a_token_of_one_cloud_is_rejected_by_the_other() {
    let (a, b) = (cloud("KS_A"), cloud("KS_B"));
    let (_, token_a) = login(&a).await;
    let error = client(&b).await.validate_token(&token_a).await.unwrap_err();
    let text = error.to_string();
    assert!(
        text.starts_with("token rejected by https://127.0.0.1:"),
        "{text}"
    );
    assert!(!text.contains(token_a.expose()), "{text}");
}

#[tokio::test]
async fn cloud_b_without_its_ca_fails_with_a_tls_error_naming_the_url() {
    let b = cloud("KS_B");
    let without_ca = KeystoneClient::new(&b.url, None, false, &policy())
        .await
        .unwrap();
    let error = without_ca
        .password_auth(
            &b.user,
            &b.user_domain,
            &b.password,
            &b.project,
            &b.project_domain,
        )
        .await
        .unwrap_err();
    assert!(matches!(error, KeystoneError::Tls { .. }), "{error:?}");
    let text = error.to_string();
    assert!(text.contains(&b.url), "{text}");
    assert!(text.contains("TLS/certificate problem"), "{text}");
    assert!(!text.contains(b.password.expose()), "{text}");
    assert!(!error.is_retryable());
}

#[tokio::test]
async fn cloud_b_ca_does_not_leak_into_a_client_built_at_the_same_time_without_it() {
    let b = cloud("KS_B");
    let policy = policy();
    // GIVEN two clients for the same URL built concurrently, one with B's CA.
    let (with_ca, without_ca) = tokio::join!(
        KeystoneClient::new(&b.url, b.ca_pem.as_deref(), false, &policy),
        KeystoneClient::new(&b.url, None, false, &policy),
    );
    let (with_ca, without_ca) = (with_ca.unwrap(), without_ca.unwrap());
    // WHEN both log in at the same time
    let login = |client: &KeystoneClient| {
        let client = client.clone();
        let (user, domain, password, project) = (
            b.user.clone(),
            b.user_domain.clone(),
            b.password.clone(),
            b.project.clone(),
        );
        async move {
            client
                .password_auth(&user, &domain, &password, &project, &domain)
                .await
        }
    };
    let (trusted, untrusted) = tokio::join!(login(&with_ca), login(&without_ca));
    // THEN only the client given the CA trusts B.
    assert!(trusted.is_ok(), "{:?}", trusted.err());
    assert!(
        matches!(untrusted, Err(KeystoneError::Tls { .. })),
        "{untrusted:?}"
    );
    // And a client built afterwards without the CA still does not trust it.
    let later = KeystoneClient::new(&b.url, None, false, &policy)
        .await
        .unwrap();
    let token = trusted.unwrap().0;
    assert!(matches!(
        later.validate_token(&token).await,
        Err(KeystoneError::Tls { .. })
    ));
}

#[tokio::test]
async fn endpoints_are_chosen_from_the_real_catalog_by_region_and_interface() {
    for (prefix, name) in [("KS_A", "a"), ("KS_B", "b")] {
        let cloud = cloud(prefix);
        let (client, token) = login(&cloud).await;
        let catalog = client.validate_token(&token).await.unwrap().catalog;

        let identity = catalog
            .endpoint("identity", "public", Some("RegionOne"))
            .unwrap();
        assert_eq!(
            identity.as_str().trim_end_matches('/'),
            cloud.url.trim_end_matches('/')
        );
        let compute = catalog
            .endpoint("compute", "internal", Some("RegionTwo"))
            .unwrap();
        assert_eq!(
            compute.as_str(),
            format!("http://127.0.0.1:9/{name}/regiontwo/internal/compute/v2.1")
        );

        let ambiguous = catalog.endpoint("compute", "public", None).unwrap_err();
        assert!(
            matches!(ambiguous, CatalogError::AmbiguousRegion { .. }),
            "{ambiguous}"
        );
        let missing = catalog
            .endpoint("compute", "admin", Some("RegionTwo"))
            .unwrap_err()
            .to_string();
        assert!(
            missing.starts_with("no 'compute' endpoint with interface 'admin' in region 'RegionTwo'; the catalog has: "),
            "{missing}"
        );
        assert!(missing.contains("identity (RegionOne: "), "{missing}");
        assert!(missing.contains("RegionTwo: "), "{missing}");
    }
}

#[tokio::test]
async fn an_application_credential_created_by_the_user_authenticates_on_cloud_a() {
    let a = cloud("KS_A");
    let (client, token) = login(&a).await;
    // GIVEN an application credential the user creates with its own token
    let http = bora::http::client_builder().no_proxy().build().unwrap();
    let base = a.url.trim_end_matches('/');
    let created: Value = http
        .post(format!(
            "{base}/users/{}/application_credentials",
            a.user_id
        ))
        .header("X-Auth-Token", token.expose())
        .json(&json!({"application_credential": {"name": unique("bora-test")}}))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["application_credential"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let secret = Secret::new(
        created["application_credential"]["secret"]
            .as_str()
            .unwrap(),
    );

    // WHEN bora authenticates with it (no scope)
    let (app_token, info) = client
        .application_credential_auth(&id, &secret)
        .await
        .unwrap();

    // THEN the token is scoped to the user's project and validates
    assert_eq!(info.project.as_ref().unwrap().id, a.project_id);
    assert!(
        info.methods.contains(&"application_credential".to_owned()),
        "{:?}",
        info.methods
    );
    assert_eq!(
        client.validate_token(&app_token).await.unwrap().user.id,
        a.user_id
    );

    // and a wrong secret is rejected without the secret in the message.
    // Keystone hashes secrets with bcrypt, which reads only the first 72
    // bytes: a suffix would still match, so the wrong secret differs early.
    let wrong = Secret::new(format!("wrong-{}", secret.expose()));
    let error = client
        .application_credential_auth(&id, &wrong)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.starts_with("credentials rejected by http://127.0.0.1:"),
        "{error}"
    );
    assert!(!error.contains(wrong.expose()), "{error}");

    http.delete(format!(
        "{base}/users/{}/application_credentials/{id}",
        a.user_id
    ))
    .header("X-Auth-Token", token.expose())
    .send()
    .await
    .unwrap()
    .error_for_status()
    .unwrap();
}

#[tokio::test]
async fn garbage_and_revoked_tokens_are_rejected_without_the_token_in_the_error() {
    let a = cloud("KS_A");
    let (client, token) = login(&a).await;

    let garbage = Secret::new(unique("gAAAAABgarbage"));
    let error = client.validate_token(&garbage).await.unwrap_err();
    let text = error.to_string();
    assert!(
        text.starts_with(&format!(
            "token rejected by {}",
            a.url.trim_end_matches('/')
        )),
        "{text}"
    );
    assert!(!text.contains(garbage.expose()) && !format!("{error:?}").contains(garbage.expose()));

    // Revoke the real token (DELETE /v3/auth/tokens), then validate it.
    let http = bora::http::client_builder().no_proxy().build().unwrap();
    http.delete(format!("{}/auth/tokens", a.url.trim_end_matches('/')))
        .header("X-Auth-Token", token.expose())
        .header("X-Subject-Token", token.expose())
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
    let error = client.validate_token(&token).await.unwrap_err();
    let text = error.to_string();
    assert!(
        matches!(
            error,
            KeystoneError::Unauthorized { .. } | KeystoneError::TokenNotFound { .. }
        ),
        "{error:?}"
    );
    assert!(text.starts_with("token rejected by"), "{text}");
    assert!(!text.contains(token.expose()), "{text}");
}

#[tokio::test]
async fn a_wrong_password_is_rejected_without_the_password_in_the_error() {
    let b = cloud("KS_B");
    let client = client(&b).await;
    let wrong = Secret::new(format!("{}-wrong", b.password.expose()));
    let error = client
        .password_auth(
            &b.user,
            &b.user_domain,
            &wrong,
            &b.project,
            &b.project_domain,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(error, KeystoneError::Unauthorized { .. }),
        "{error:?}"
    );
    let text = error.to_string();
    assert_eq!(
        text,
        format!(
            "credentials rejected by {} (401 Unauthorized)",
            b.url.trim_end_matches('/')
        )
    );
}

#[tokio::test]
async fn the_strict_default_policy_refuses_the_loopback_clouds() {
    let a = cloud("KS_A");
    let error = KeystoneClient::new(&a.url, None, false, &OutboundPolicy::default())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("loopback") && error.contains("BORA_TARGET_ALLOW_CIDRS"),
        "{error}"
    );
}

#[tokio::test]
async fn a_trust_scoped_token_acts_as_the_trustor_until_the_trust_is_deleted() {
    let a = cloud("KS_A");
    let (client, trustor_token) = login(&a).await;
    let service_user_id = var("KS_A_SERVICE_USER_ID");
    let (trustee_token, _) = client
        .password_auth(
            &var("KS_A_SERVICE_USER"),
            "Default",
            &Secret::new(var("KS_A_SERVICE_PASSWORD")),
            &var("KS_A_SERVICE_PROJECT"),
            "Default",
        )
        .await
        .unwrap();

    // GIVEN a trust from the user to the service user, with impersonation
    let http = bora::http::client_builder().no_proxy().build().unwrap();
    let base = a.url.trim_end_matches('/');
    let created: Value = http
        .post(format!("{base}/OS-TRUST/trusts"))
        .header("X-Auth-Token", trustor_token.expose())
        .json(&json!({"trust": {
            "trustor_user_id": a.user_id,
            "trustee_user_id": service_user_id,
            "project_id": a.project_id,
            "impersonation": true,
            "roles": [{"name": "member"}],
        }}))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap();
    let trust_id = Secret::new(created["trust"]["id"].as_str().unwrap());

    // WHEN the service user asks for a trust-scoped token
    let (trust_token, info) = client
        .trust_scoped_auth(&trustee_token, &trust_id)
        .await
        .unwrap();

    // THEN it acts as the trustor in the trustor's project
    assert_eq!(info.user.id, a.user_id);
    assert_eq!(info.project.as_ref().unwrap().id, a.project_id);
    assert!(info.trust.is_some());
    // Keystone refuses a trust token validating itself (403, policy), but
    // as the impersonated trustor it may validate the trustor's token.
    let validated = client.validate_token_as(&trust_token, &trustor_token).await;
    assert_eq!(validated.unwrap().user.id, a.user_id);

    // and deleting the trust invalidates the token.
    http.delete(format!("{base}/OS-TRUST/trusts/{}", trust_id.expose()))
        .header("X-Auth-Token", trustor_token.expose())
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
    // Revocation is not instant everywhere (Keystone's token cache may
    // still hold the validation for a moment), so poll for a few seconds.
    let mut outcome = client.validate_token_as(&trust_token, &trustor_token).await;
    for _ in 0..30 {
        if outcome.is_err() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        outcome = client.validate_token_as(&trust_token, &trustor_token).await;
    }
    let error = outcome.expect_err("the trust token still works 6 s after its trust was deleted");
    let error = error.to_string();
    assert!(error.starts_with("token rejected by"), "{error}");
    assert!(!error.contains(trust_token.expose()) && !error.contains(trust_id.expose()));
}
