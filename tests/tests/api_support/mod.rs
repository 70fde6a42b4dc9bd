//! An in-process bora API on 127.0.0.1:0 over a temporary SQLite file, and
//! small request helpers.
#![allow(dead_code)]

use bora::embedded::Embedded;
use bora::worker::WorkerSettings;
use serde_json::Value;
use std::time::Duration;

pub struct Server {
    pub base: String,
    pub client: reqwest::Client,
    pub embedded: std::sync::Arc<Embedded>,
    _dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

pub async fn start() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let embedded = std::sync::Arc::new(Embedded::open(dir.path().join("bora.db"), None).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = embedded.clone();
    tokio::spawn(async move {
        let settings = WorkerSettings {
            workers: 2,
            ..WorkerSettings::default()
        };
        bora::api::serve(listener, &served, settings, async {
            let _ = stopped.await;
        })
        .await
        .unwrap();
    });
    Server {
        base: format!("http://{addr}"),
        client: bora::http::client_builder().build().unwrap(),
        embedded,
        _dir: dir,
        stop: Some(stop),
    }
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
