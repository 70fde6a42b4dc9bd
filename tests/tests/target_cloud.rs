//! Target cloud per execution, against two real Keystones started by
//! `scripts/test`: cloud A on HTTP, cloud B on HTTPS with a private CA.
//! The same workflow runs on both at the same time, each execution sees its
//! own cloud only, a CA given to one execution is not trusted by another,
//! and the token never shows up in the database, the logs or the API.

#[path = "api_support/mod.rs"]
mod api_support;
mod clouds;
mod serve_support;

use api_support::Server;
use base64::Engine as _;
use bora::secret::Secret;
use clouds::{Cloud, cloud, login};
use serde_json::{Value, json};
use std::time::Duration;

const WORKFLOW: &str = r#"
version: '2.0'
whoami:
  output:
    projects: <% $.projects %>
    catalog_types: <% $.types %>
  tasks:
    own_projects:
      action: keystone.auth_projects
      publish:
        projects: <% task().result.content.projects.select($.name) %>
      on-success: services
    services:
      action: openstack.request service_type=identity path=/auth/catalog
      publish:
        types: <% task().result.content.catalog.select($.type).distinct() %>
"#;

fn policy_is_set() {
    assert!(
        std::env::var("BORA_TARGET_ALLOW_CIDRS").is_ok(),
        "BORA_TARGET_ALLOW_CIDRS is not set: the test clouds listen on loopback, which the \
         strict default policy refuses; scripts/test sets it"
    );
}

/// The X-Target-* headers for a cloud and a token (with or without its CA).
fn headers(cloud: &Cloud, token: &Secret, with_ca: bool) -> Vec<(&'static str, String)> {
    let mut h = vec![
        ("X-Target-Auth-Uri", cloud.url.clone()),
        ("X-Target-Auth-Token", token.expose().to_string()),
        ("X-Target-Project-Id", cloud.project_id.clone()),
    ];
    if with_ca && let Some(pem) = &cloud.ca_pem {
        h.push((
            "X-Target-Ca-Cert",
            base64::engine::general_purpose::STANDARD.encode(pem),
        ));
    }
    h
}

async fn server_with_workflow() -> Server {
    policy_is_set();
    let server = api_support::start().await;
    let created = server.post_text("/v2/workflows", WORKFLOW).await;
    assert_eq!(created.status, 201, "{}", created.text);
    server
}

/// POST /v2/executions with these headers; the future owns what it needs,
/// so many can run at once (`tokio::spawn`).
fn start(
    server: &Server,
    headers: &[(&'static str, String)],
) -> impl std::future::Future<Output = (u16, Value, String)> + Send + 'static {
    let mut request = server
        .client
        .post(format!("{}/v2/executions", server.base))
        .json(&json!({"workflow_name": "whoami"}));
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    async move {
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::Null),
            text,
        )
    }
}

async fn finish(server: &Server, id: &str) -> Value {
    for _ in 0..400 {
        let a = server.get(&format!("/v2/executions/{id}")).await;
        if a.body["state"] != "RUNNING" {
            return a.body;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("execution {id} did not finish");
}

fn output(execution: &Value) -> Value {
    serde_json::from_str(execution["output"].as_str().unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_workflow_on_two_clouds_at_once_sees_each_its_own() {
    let server = server_with_workflow().await;
    let (a, b) = (cloud("KS_A"), cloud("KS_B"));
    let ((_, token_a), (_, token_b)) = (login(&a).await, login(&b).await);
    // Started at the same time, one per cloud.
    let (on_a, on_b) = tokio::join!(
        start(&server, &headers(&a, &token_a, true)),
        start(&server, &headers(&b, &token_b, true))
    );
    assert_eq!(on_a.0, 201, "{}", on_a.2);
    assert_eq!(on_b.0, 201, "{}", on_b.2);
    let (done_a, done_b) = tokio::join!(
        finish(&server, on_a.1["id"].as_str().unwrap()),
        finish(&server, on_b.1["id"].as_str().unwrap())
    );
    assert_eq!(done_a["state"], "SUCCESS", "{}", done_a["state_info"]);
    assert_eq!(done_b["state"], "SUCCESS", "{}", done_b["state_info"]);
    assert_eq!(output(&done_a)["projects"], json!([a.project]));
    assert_eq!(output(&done_b)["projects"], json!([b.project]));
    assert_ne!(a.project, b.project);
    // The API shows the target without its token.
    let params: Value = serde_json::from_str(done_b["params"].as_str().unwrap()).unwrap();
    assert_eq!(params["target"]["auth_url"], json!(b.url));
    assert_eq!(params["target"]["token"], json!("***"));
    assert_eq!(params["target"]["project_id"], json!(b.project_id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_executions_alternating_between_clouds_never_mix() {
    let server = server_with_workflow().await;
    let (a, b) = (cloud("KS_A"), cloud("KS_B"));
    let ((_, token_a), (_, token_b)) = (login(&a).await, login(&b).await);
    let (headers_a, headers_b) = (headers(&a, &token_a, true), headers(&b, &token_b, true));
    let started: Vec<_> = (0..20)
        .map(|i| {
            tokio::spawn(start(
                &server,
                if i % 2 == 0 { &headers_a } else { &headers_b },
            ))
        })
        .collect();
    for (i, handle) in started.into_iter().enumerate() {
        let (status, body, text) = handle.await.unwrap();
        assert_eq!(status, 201, "{text}");
        let done = finish(&server, body["id"].as_str().unwrap()).await;
        assert_eq!(done["state"], "SUCCESS", "{}", done["state_info"]);
        let want = if i % 2 == 0 { &a.project } else { &b.project };
        assert_eq!(output(&done)["projects"], json!([want]), "execution {i}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ca_is_trusted_only_by_the_execution_that_brought_it() {
    let server = server_with_workflow().await;
    let b = cloud("KS_B");
    let (_, token) = login(&b).await;
    // At the same time: one execution with B's CA, two without.
    let (with_ca, without_1, without_2) = tokio::join!(
        start(&server, &headers(&b, &token, true)),
        start(&server, &headers(&b, &token, false)),
        start(&server, &headers(&b, &token, false))
    );
    let ok = finish(&server, with_ca.1["id"].as_str().unwrap()).await;
    assert_eq!(ok["state"], "SUCCESS", "{}", ok["state_info"]);
    for answer in [without_1, without_2] {
        let failed = finish(&server, answer.1["id"].as_str().unwrap()).await;
        assert_eq!(failed["state"], "ERROR");
        let info = failed["state_info"].as_str().unwrap();
        assert!(info.contains("TLS/certificate problem"), "{info}");
        assert!(info.contains(&b.url), "the error names the URL: {info}");
        assert!(!info.contains(token.expose()), "never the token");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partial_header_set_is_refused_and_nothing_is_stored() {
    let server = server_with_workflow().await;
    let a = cloud("KS_A");
    let refused = |answer: (u16, Value, String), header: &str| {
        assert_eq!(answer.0, 400, "{}", answer.2);
        let fault = answer.1["faultstring"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(fault.contains(header), "{fault}");
    };
    refused(
        start(&server, &[("X-Target-Auth-Uri", a.url.clone())]).await,
        "X-Target-Auth-Token",
    );
    refused(
        start(&server, &[("X-Target-Auth-Token", "abc".into())]).await,
        "X-Target-Auth-Uri",
    );
    refused(
        start(
            &server,
            &[
                ("X-Target-Auth-Uri", a.url.clone()),
                ("X-Target-Auth-Token", "abc".into()),
                ("X-Target-Insecure", "yes".into()),
            ],
        )
        .await,
        "X-Target-Insecure",
    );
    // A URL the policy refuses: the metadata service.
    refused(
        start(
            &server,
            &[
                ("X-Target-Auth-Uri", "http://169.254.169.254/v3".into()),
                ("X-Target-Auth-Token", "abc".into()),
            ],
        )
        .await,
        "169.254.169.254",
    );
    let list = server.get("/v2/executions").await;
    assert_eq!(list.body["executions"], json!([]), "nothing stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_carried_catalog_the_task_makes_no_keystone_call() {
    let server = server_with_workflow().await;
    let a = cloud("KS_A");
    let (_, token) = login(&a).await;
    // The token body as Keystone returns it, base64: Mistral's form.
    let body = reqwest::Client::new()
        .get(format!("{}/auth/tokens", a.url))
        .header("X-Auth-Token", token.expose())
        .header("X-Subject-Token", token.expose())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mut h = headers(&a, &token, false);
    h.push((
        "X-Target-Service-Catalog",
        base64::engine::general_purpose::STANDARD.encode(body),
    ));
    // Point the auth URL somewhere unreachable: with the catalog carried,
    // Keystone is never asked, so the tasks still succeed.
    h[0].1 = "http://127.0.0.1:9/v3".into();
    let (status, body, text) = start(&server, &h).await;
    assert_eq!(status, 201, "{text}");
    let done = finish(&server, body["id"].as_str().unwrap()).await;
    assert_eq!(done["state"], "SUCCESS", "{}", done["state_info"]);
    assert_eq!(output(&done)["projects"], json!([a.project]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_never_reaches_the_database_the_logs_or_the_api() {
    policy_is_set();
    let bin = std::env::var("BORA_BIN").expect("BORA_BIN is not set: scripts/test sets it");
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("bora.db");
    let log = dir.path().join("serve.log");
    // GIVEN bora serve logging at debug level, on a port it picks ...
    let mut command = std::process::Command::new(bin);
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--db"])
        .arg(&db)
        .env("BORA_LOG", "debug");
    let (mut serve, base) = serve_support::spawn_serve(command, Some(&log));
    let client = bora::http::client_builder().build().unwrap();
    // ... WHEN an execution runs on cloud B with a token, and one fails ...
    let b = cloud("KS_B");
    let (_, token) = login(&b).await;
    let created = client
        .post(format!("{base}/v2/workflows"))
        .body(WORKFLOW)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let mut ids = Vec::new();
    for with_ca in [true, false] {
        let mut request = client
            .post(format!("{base}/v2/executions"))
            .json(&json!({"workflow_name": "whoami"}));
        for (name, value) in headers(&b, &token, with_ca) {
            request = request.header(name, value);
        }
        let body: Value = request.send().await.unwrap().json().await.unwrap();
        ids.push(body["id"].as_str().unwrap().to_string());
    }
    let mut responses = String::new();
    for id in &ids {
        for _ in 0..400 {
            let text = client
                .get(format!("{base}/v2/executions/{id}"))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            if !text.contains("\"RUNNING\"") {
                responses.push_str(&text);
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        for path in [
            format!("/v2/executions/{id}/tasks"),
            format!("/v2/executions/{id}/report"),
            "/v2/executions".to_string(),
            "/v2/action_executions".to_string(),
            "/v2/tasks".to_string(),
        ] {
            let text = client
                .get(format!("{base}{path}"))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            responses.push_str(&text);
        }
    }
    assert!(
        responses.contains("\"SUCCESS\""),
        "the run on B succeeded: {responses}"
    );
    assert!(
        responses.contains("TLS/certificate problem"),
        "and the one without the CA failed"
    );
    serve.kill().unwrap();
    serve.wait().unwrap();
    // THEN the token is nowhere: not in the API's answers ...
    let secret = token.expose();
    assert!(
        !responses.contains(secret),
        "the token is in an API response"
    );
    // ... not in the logs (which did log the actions) ...
    let logs = std::fs::read_to_string(&log).unwrap();
    assert!(logs.contains("action started"), "debug logs were written");
    assert!(!logs.contains(secret), "the token is in the logs");
    // ... and not in any file of the database.
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        let found = bytes.windows(secret.len()).any(|w| w == secret.as_bytes());
        assert!(!found, "the token is in {}", path.display());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_with_target_os_variables_runs_on_cloud_b_and_refuses_a_partial_set() {
    let server = server_with_workflow().await;
    let bin = std::env::var("BORA_BIN").expect("BORA_BIN is not set: scripts/test sets it");
    let b = cloud("KS_B");
    let ca = std::env::var("KS_B_CA").expect("KS_B_CA is not set");
    let run = |unset: Option<&'static str>| {
        let mut command = std::process::Command::new(&bin);
        command
            .args([
                "execution-create",
                "whoami",
                "--wait",
                "-f",
                "json",
                "--url",
            ])
            .arg(&server.base)
            .env("TARGET_OS_AUTH_URL", &b.url)
            .env("TARGET_OS_USERNAME", &b.user)
            .env("TARGET_OS_PASSWORD", b.password.expose())
            .env("TARGET_OS_TENANT", &b.project)
            .env("TARGET_OS_CA_CERT", &ca);
        for name in [
            "OS_AUTH_URL",
            "OS_USERNAME",
            "OS_PASSWORD",
            "OS_PROJECT_NAME",
            "OS_CLOUD",
        ] {
            command.env_remove(name);
        }
        if let Some(name) = unset {
            command.env_remove(name);
        }
        command
    };
    // GIVEN all the TARGET_OS_* variables (B over HTTPS, its CA by path)
    let output = tokio::task::spawn_blocking({
        let mut command = run(None);
        move || command.output().unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // THEN the workflow ran on cloud B.
    assert!(stdout.contains(&b.project), "{stdout}");
    // GIVEN one of them missing, THEN it refuses before any request: the
    // server has no execution more than the one above.
    let output = tokio::task::spawn_blocking({
        let mut command = run(Some("TARGET_OS_PASSWORD"));
        move || command.output().unwrap()
    })
    .await
    .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("TARGET_OS_PASSWORD not set"), "{stderr}");
    let list = server.get("/v2/executions").await;
    assert_eq!(list.body["executions"].as_array().unwrap().len(), 1);
}
