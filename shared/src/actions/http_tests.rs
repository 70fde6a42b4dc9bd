//! Tests of `std.http` against an axum server each test starts on
//! 127.0.0.1 (port 0); nothing else on the network is contacted.

use super::*;
use axum::Router;
use axum::body::Body;
use axum::extract::Path;
use axum::http::{HeaderMap as AxHeaders, Method as AxMethod, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use serde_json::json;

/// Echo the request back as JSON.
async fn echo(method: AxMethod, uri: Uri, headers: AxHeaders, body: String) -> Response {
    let headers: Map<String, Value> = headers
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), json!(v.to_str().unwrap_or("?"))))
        .collect();
    axum::Json(json!({
        "method": method.as_str(),
        "path": uri.path(),
        "query": uri.query(),
        "headers": headers,
        "body": body,
    }))
    .into_response()
}

async fn status(Path(code): Path<u16>) -> Response {
    let code = StatusCode::from_u16(code).unwrap();
    if code == StatusCode::NOT_FOUND {
        (code, "not here").into_response()
    } else {
        (code, axum::Json(json!({"error": "boom"}))).into_response()
    }
}

fn app() -> Router {
    Router::new()
        .route("/echo", any(echo))
        .route("/text", get(|| async { "hello" }))
        .route(
            "/latin1",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/plain; charset=ISO-8859-1")],
                    vec![0x63, 0x61, 0x66, 0xe9],
                )
            }),
        )
        .route("/status/{code}", get(status))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(::std::time::Duration::from_secs(30)).await;
                "late"
            }),
        )
        .route(
            "/redirect",
            get(|| async { (StatusCode::FOUND, [(header::LOCATION, "/text")]) }),
        )
        .route(
            "/big",
            get(|| async { Body::from(vec![b'x'; http::MAX_RESPONSE_BYTES + 1]) }),
        )
        .route(
            "/cookies",
            get(|| async {
                (
                    // Appended: a plain array would keep only the last.
                    axum::response::AppendHeaders([
                        (header::SET_COOKIE, "session=abc; Path=/; HttpOnly"),
                        (header::SET_COOKIE, "theme=dark"),
                    ]),
                    "ok",
                )
            }),
        )
}

/// Start the test server; returns its base URL.
async fn server() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app()).await.unwrap() });
    format!("http://{addr}")
}

async fn http(input: Value) -> ActionOutcome {
    let reg = ActionRegistry::standard();
    let Value::Object(input) = input else {
        panic!("not an object")
    };
    let input = reg.prepare_input("std.http", input).expect("valid input");
    reg.run("std.http", &input, &ActionContext::default()).await
}

fn success(out: ActionOutcome) -> Map<String, Value> {
    match out {
        ActionOutcome::Success(Value::Object(m)) => m,
        other => panic!("expected a successful dict, got {other:?}"),
    }
}

fn error_text(out: ActionOutcome) -> String {
    match out {
        ActionOutcome::Error(Value::String(s)) => s,
        other => panic!("expected an error text, got {other:?}"),
    }
}

#[tokio::test]
async fn get_with_params_and_headers() {
    let base = server().await;
    let out = success(
        http(json!({
            "url": format!("{base}/echo"),
            "params": {"a": 1, "b": "x y", "c": [1, 2], "d": null, "e": true},
            "headers": {"X-Token": "abc", "X-Num": 5, "X-Gone": null},
            "cookies": {"s": "v", "t": 2},
        }))
        .await,
    );
    assert_eq!(out["status"], json!(200));
    assert_eq!(out["reason"], json!("OK"));
    assert_eq!(
        out["url"],
        json!(format!("{base}/echo?a=1&b=x+y&c=1&c=2&e=True"))
    );
    assert_eq!(out["headers"]["content-type"], json!("application/json"));
    assert_eq!(out["encoding"], Value::Null);
    let content = &out["content"];
    assert_eq!(content["method"], json!("GET"));
    assert_eq!(content["query"], json!("a=1&b=x+y&c=1&c=2&e=True"));
    assert_eq!(content["headers"]["x-token"], json!("abc"));
    assert_eq!(content["headers"]["x-num"], json!("5"));
    assert_eq!(content["headers"]["cookie"], json!("s=v; t=2"));
    assert!(content["headers"].get("x-gone").is_none());
    assert_eq!(content["body"], json!(""));
    assert!(out["elapsed"].as_f64().unwrap() >= 0.0);
}

#[tokio::test]
async fn params_as_a_query_string() {
    let base = server().await;
    let out = success(http(json!({"url": format!("{base}/echo?x=1"), "params": "y=2&z=3"})).await);
    assert_eq!(out["content"]["query"], json!("x=1&y=2&z=3"));
}

#[tokio::test]
async fn post_json() {
    let base = server().await;
    let out = success(
        http(json!({
            "url": format!("{base}/echo"),
            "method": "post",
            "json": {"k": [1, 2]},
        }))
        .await,
    );
    let content = &out["content"];
    assert_eq!(content["method"], json!("POST"));
    assert_eq!(
        content["headers"]["content-type"],
        json!("application/json")
    );
    assert_eq!(content["body"], json!(r#"{"k":[1,2]}"#));
}

#[tokio::test]
async fn post_body_text_and_dict() {
    let base = server().await;
    let out = success(
        http(json!({"url": format!("{base}/echo"), "method": "PUT", "body": "raw text"})).await,
    );
    assert_eq!(out["content"]["method"], json!("PUT"));
    assert_eq!(out["content"]["body"], json!("raw text"));
    assert!(out["content"]["headers"].get("content-type").is_none());

    // A dict body is sent as JSON text (Mistral's to_json_str), no type.
    let out = success(
        http(json!({"url": format!("{base}/echo"), "method": "POST", "body": {"a": 1}})).await,
    );
    assert_eq!(out["content"]["body"], json!(r#"{"a":1}"#));
    assert!(out["content"]["headers"].get("content-type").is_none());
}

#[tokio::test]
async fn body_and_json_together_is_an_error() {
    let out = http(json!({"url": "http://127.0.0.1:1/", "body": "a", "json": {"b": 1}})).await;
    assert_eq!(
        error_text(out),
        "std.http: Only one of the parameters 'json' and 'body' can be passed"
    );
}

#[tokio::test]
async fn text_response() {
    let base = server().await;
    let out = success(http(json!({"url": format!("{base}/text")})).await);
    assert_eq!(out["content"], json!("hello"));
    assert_eq!(out["encoding"], json!("utf-8"));
    assert_eq!(
        out["headers"]["content-type"],
        json!("text/plain; charset=utf-8")
    );

    let out = success(http(json!({"url": format!("{base}/latin1")})).await);
    assert_eq!(out["content"], json!("café"));
    assert_eq!(out["encoding"], json!("ISO-8859-1"));
}

#[tokio::test]
async fn response_cookies() {
    let base = server().await;
    let out = success(http(json!({"url": format!("{base}/cookies")})).await);
    assert_eq!(out["cookies"], json!({"session": "abc", "theme": "dark"}));
    assert_eq!(
        out["headers"]["set-cookie"],
        json!("session=abc; Path=/; HttpOnly, theme=dark")
    );
}

#[tokio::test]
async fn status_404_fails_with_the_response() {
    let base = server().await;
    let out = http(json!({"url": format!("{base}/status/404")})).await;
    let ActionOutcome::Error(Value::Object(err)) = out else {
        panic!("expected an error dict, got {out:?}")
    };
    assert_eq!(err["status"], json!(404));
    assert_eq!(err["content"], json!("not here"));
    assert_eq!(err["reason"], json!("Not Found"));
    assert_eq!(err["url"], json!(format!("{base}/status/404")));
}

#[tokio::test]
async fn status_500_fails_with_parsed_content() {
    let base = server().await;
    let out = http(json!({"url": format!("{base}/status/500")})).await;
    let ActionOutcome::Error(Value::Object(err)) = out else {
        panic!("expected an error dict, got {out:?}")
    };
    assert_eq!(err["status"], json!(500));
    assert_eq!(err["content"], json!({"error": "boom"}));
    assert_eq!(err["reason"], json!("Internal Server Error"));
}

#[tokio::test]
async fn statuses_up_to_306_succeed() {
    // Mistral's `range(200, 307)`: 204 and 304 succeed, 307 fails.
    let base = server().await;
    let out = success(http(json!({"url": format!("{base}/status/204")})).await);
    assert_eq!(out["status"], json!(204));
    let out =
        success(http(json!({"url": format!("{base}/status/304"), "allow_redirects": false})).await);
    assert_eq!(out["status"], json!(304));
    let out = http(json!({"url": format!("{base}/status/307"), "allow_redirects": false})).await;
    assert!(matches!(out, ActionOutcome::Error(Value::Object(ref e)) if e["status"] == json!(307)));
}

#[tokio::test]
async fn timeout_names_url_and_limit() {
    let base = server().await;
    let out = http(json!({"url": format!("{base}/slow"), "timeout": 0.2})).await;
    assert_eq!(
        error_text(out),
        format!("Failed to send HTTP request to {base}/slow: timed out after 0.2 seconds")
    );
}

#[tokio::test]
async fn connection_refused_names_url_and_hides_secrets() {
    // A port that was just free: nothing listens there any more.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let out = http(json!({
        "url": format!("http://admin:hunter2@127.0.0.1:{port}/x"),
        "headers": {"X-Auth-Token": "s3cr3t-token"},
        "auth": "user:pa55word",
    }))
    .await;
    let text = error_text(out);
    assert!(
        text.starts_with(&format!(
            "Failed to send HTTP request to http://admin:***@127.0.0.1:{port}/x: "
        )),
        "{text}"
    );
    assert!(text.to_lowercase().contains("connect"), "{text}");
    for secret in ["hunter2", "s3cr3t-token", "pa55word"] {
        assert!(!text.contains(secret), "{text}");
    }
}

#[tokio::test]
async fn basic_auth() {
    let base = server().await;
    // "user:pw" in base64.
    let want = json!("Basic dXNlcjpwdw==");
    let out = success(http(json!({"url": format!("{base}/echo"), "auth": ["user", "pw"]})).await);
    assert_eq!(out["content"]["headers"]["authorization"], want);
    let out = success(http(json!({"url": format!("{base}/echo"), "auth": "user:pw"})).await);
    assert_eq!(out["content"]["headers"]["authorization"], want);
    let out = http(json!({"url": format!("{base}/echo"), "auth": "no-colon"})).await;
    assert_eq!(
        error_text(out),
        "std.http: auth must be \"user:password\" or [user, password]"
    );
}

#[tokio::test]
async fn redirects_followed_only_when_asked_as_in_mistral() {
    let base = server().await;
    // Mistral passes allow_redirects=None to requests, which then does not
    // follow: the default here is the same.
    let out = success(http(json!({"url": format!("{base}/redirect")})).await);
    assert_eq!(out["status"], json!(302));
    let out =
        success(http(json!({"url": format!("{base}/redirect"), "allow_redirects": true})).await);
    assert_eq!(out["status"], json!(200));
    assert_eq!(out["content"], json!("hello"));
    assert_eq!(out["url"], json!(format!("{base}/text")));

    let out =
        success(http(json!({"url": format!("{base}/redirect"), "allow_redirects": false})).await);
    assert_eq!(out["status"], json!(302));
    assert_eq!(out["reason"], json!("Found"));
    assert_eq!(out["headers"]["location"], json!("/text"));
    assert_eq!(out["url"], json!(format!("{base}/redirect")));
}

#[tokio::test]
async fn verify_does_not_matter_for_http() {
    let base = server().await;
    for verify in [json!(false), json!(true), json!("/no/such/bundle.pem")] {
        let out = success(http(json!({"url": format!("{base}/text"), "verify": verify})).await);
        assert_eq!(out["content"], json!("hello"));
    }
}

#[tokio::test]
async fn verify_with_a_missing_ca_bundle_fails_for_https() {
    let out = http(json!({"url": "https://127.0.0.1:1/", "verify": "/no/such/bundle.pem"})).await;
    let text = error_text(out);
    assert!(
        text.starts_with("std.http: cannot read CA bundle '/no/such/bundle.pem': "),
        "{text}"
    );
}

#[tokio::test]
async fn response_body_is_bounded() {
    let base = server().await;
    let out = http(json!({"url": format!("{base}/big")})).await;
    assert_eq!(
        error_text(out),
        format!(
            "HTTP response from {base}/big is larger than the limit of 10485760 bytes (10 MiB)"
        )
    );
}

#[tokio::test]
async fn proxies_are_refused_and_bad_input_named() {
    let out =
        http(json!({"url": "http://127.0.0.1:1/", "proxies": {"http": "http://p:3128"}})).await;
    assert_eq!(
        error_text(out),
        "std.http: proxies are not supported: bora sends requests directly"
    );
    let out = http(json!({"url": "ftp://127.0.0.1/"})).await;
    assert_eq!(
        error_text(out),
        "std.http: unsupported URL scheme 'ftp' (only http and https)"
    );
    let out = http(json!({"url": "not a url"})).await;
    assert!(error_text(out).starts_with("std.http: invalid URL: "));
    let out = http(json!({"url": "http://127.0.0.1:1/", "headers": {"X-Bad": "a\nb"}})).await;
    assert_eq!(
        error_text(out),
        "std.http: invalid value for header 'X-Bad'"
    );
    let out = http(json!({"url": "http://127.0.0.1:1/", "timeout": -1})).await;
    assert_eq!(
        error_text(out),
        "std.http: timeout must be a number of seconds above 0 and at most 86400"
    );
}

/// Start a one-route HTTPS server (certificate for 127.0.0.1 signed by
/// `testdata/ca.pem`); every request gets `200 "secure"`. A handshake the
/// client refuses just ends that connection.
async fn tls_server() -> String {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    crate::http::ensure_crypto_provider();
    let certs = CertificateDer::pem_slice_iter(include_bytes!("testdata/server.pem"))
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(include_bytes!("testdata/server.key")).unwrap();
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                // Read up to the end of the request head (no body is sent).
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let reply = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\
                             Content-Length: 6\r\nConnection: close\r\n\r\nsecure";
                let _ = tls.write_all(reply.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    format!("https://{addr}")
}

fn test_ca_path() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/src/actions/testdata/ca.pem").to_string()
}

#[tokio::test]
async fn https_with_a_ca_bundle_path() {
    let base = tls_server().await;
    let out = success(http(json!({"url": format!("{base}/x"), "verify": test_ca_path()})).await);
    assert_eq!(out["status"], json!(200));
    assert_eq!(out["content"], json!("secure"));
}

#[tokio::test]
async fn https_unknown_ca_fails_unless_verify_false() {
    let base = tls_server().await;
    // Default (platform roots only): the test CA is unknown.
    let text = error_text(http(json!({"url": format!("{base}/x")})).await);
    assert!(
        text.starts_with(&format!("Failed to send HTTP request to {base}/x: ")),
        "{text}"
    );
    assert!(text.to_lowercase().contains("certificate"), "{text}");

    let out = success(http(json!({"url": format!("{base}/x"), "verify": false})).await);
    assert_eq!(out["content"], json!("secure"));

    // The bundle was trusted for that one request only.
    let text = error_text(http(json!({"url": format!("{base}/x"), "verify": true})).await);
    assert!(text.to_lowercase().contains("certificate"), "{text}");
}

#[tokio::test]
async fn verify_with_a_file_without_certificates_fails() {
    // Any readable non-PEM file will do: this source file.
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/src/actions/testdata/README.md"
    );
    let out = http(json!({"url": "https://127.0.0.1:1/", "verify": path})).await;
    assert_eq!(
        error_text(out),
        format!("std.http: CA bundle '{path}' holds no certificate")
    );
}
