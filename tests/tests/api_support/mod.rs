//! An in-process bora API on 127.0.0.1:0, and small request helpers.
//!
//! The backend is the one `BORA_TEST_BACKEND` names, as for the engine
//! suite: `sqlite` (default) serves `bora serve`'s router over a temporary
//! SQLite file; `aws` serves create-execution's router
//! (`bora::lambda::api_router`: DynamoDB store and catalog, SQS, KMS) on the
//! AWS emulator, with workers playing run-task and complete-task. The same
//! API tests thus run on both.
#![allow(dead_code)]

#[path = "../common/aws.rs"]
mod aws;

use bora::embedded::Embedded;
use bora::worker::WorkerSettings;
use serde_json::Value;
use std::time::Duration;

pub struct Server {
    pub base: String,
    pub client: reqwest::Client,
    /// What the server runs on, kept alive as long as the server.
    _backend: Box<dyn std::any::Any + Send + Sync>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn worker_settings() -> WorkerSettings {
    WorkerSettings {
        workers: 2,
        ..WorkerSettings::default()
    }
}

pub async fn start() -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let stopped = async {
        let _ = stopped.await;
    };
    let backend: Box<dyn std::any::Any + Send + Sync> =
        match std::env::var("BORA_TEST_BACKEND").as_deref() {
            Ok("aws") => Box::new(serve_on_aws(listener, stopped).await),
            _ => Box::new(serve_on_sqlite(listener, stopped)),
        };
    Server {
        base: format!("http://{addr}"),
        client: bora::http::client_builder().build().unwrap(),
        _backend: backend,
        stop: Some(stop),
    }
}

fn serve_on_sqlite(
    listener: tokio::net::TcpListener,
    stopped: impl std::future::Future<Output = ()> + Send + 'static,
) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let embedded = std::sync::Arc::new(Embedded::open(dir.path().join("bora.db"), None).unwrap());
    tokio::spawn(async move {
        bora::api::serve(listener, &embedded, worker_settings(), stopped)
            .await
            .unwrap();
    });
    dir
}

async fn serve_on_aws(
    listener: tokio::net::TcpListener,
    stopped: impl std::future::Future<Output = ()> + Send + 'static,
) -> aws::AwsBackend {
    let backend = aws::AwsBackend::create(bora::actions::ActionRegistry::standard(), 6).await;
    let key = aws::kms_key(&aws_sdk_kms::Client::new(&backend.sdk)).await;
    let functions = bora::lambda::AwsDeps::build(backend.lambda_config(&key, 6)).await;
    let router = bora::lambda::api_router(&functions);
    let (stop_workers, workers_stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(bora::worker::run(
        functions.deps.clone(),
        worker_settings(),
        workers_stopped,
    ));
    tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(stopped)
            .await
            .unwrap();
        let _ = stop_workers.send(true);
    });
    backend
}

/// A status and the parsed body (Null when empty).
pub struct Answer {
    pub status: u16,
    pub body: Value,
    pub text: String,
}

impl Server {
    pub async fn send(&self, req: reqwest::RequestBuilder) -> Answer {
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Answer { status, body, text }
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.send(self.client.get(format!("{}{path}", self.base)))
            .await
    }

    pub async fn delete(&self, path: &str) -> Answer {
        self.send(self.client.delete(format!("{}{path}", self.base)))
            .await
    }

    pub async fn post_text(&self, path: &str, text: &str) -> Answer {
        self.send(
            self.client
                .post(format!("{}{path}", self.base))
                .header("content-type", "text/plain")
                .body(text.to_string()),
        )
        .await
    }

    pub async fn put_text(&self, path: &str, text: &str) -> Answer {
        self.send(
            self.client
                .put(format!("{}{path}", self.base))
                .header("content-type", "text/plain")
                .body(text.to_string()),
        )
        .await
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Answer {
        self.send(self.client.post(format!("{}{path}", self.base)).json(body))
            .await
    }

    pub async fn put_json(&self, path: &str, body: &Value) -> Answer {
        self.send(self.client.put(format!("{}{path}", self.base)).json(body))
            .await
    }

    /// Poll an execution until its state is `state`.
    pub async fn wait_state(&self, id: &str, state: &str) -> Value {
        for _ in 0..200 {
            let a = self.get(&format!("/v2/executions/{id}")).await;
            if a.body["state"] == state {
                return a.body;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("execution {id} did not reach {state}");
    }
}
