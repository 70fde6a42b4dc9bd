//! `std.http`: Mistral's HTTP action (`HTTPAction` in Mistral's
//! `mistral/actions/std_actions.py`) on reqwest.
//!
//! Behaviour kept from Mistral:
//! - parameters and defaults: `url, method='GET', params, body, json,
//!   headers, cookies, auth, timeout, allow_redirects, proxies, verify`;
//! - `body` and `json` both given (truthy) is an error; a dict `body` is
//!   sent as JSON text without a `Content-Type` (Mistral turns it into a
//!   string first), `json` is sent with `Content-Type: application/json`;
//! - numeric header values are sent as text; `auth` may be
//!   `"user:password"` (Mistral splits it) or `[user, password]`;
//! - `verify` only matters for `https` URLs;
//! - the result is `{content, status, headers, url, encoding, reason,
//!   cookies, elapsed}`, `content` being the parsed JSON when the body
//!   parses as JSON (whatever its content type, as `resp.json()` does),
//!   else the text;
//! - a status outside `200..=306` makes the action fail with that same dict
//!   as its error data (Mistral: `if resp.status_code not in range(200,
//!   307): return actions.Result(error=_result)`);
//! - a request that cannot be sent fails with
//!   `"Failed to send HTTP request to <url>: <reason>"`.
//!
//! Redirects: `allow_redirects=null` does not follow them, as in Mistral
//! (it passes `None` on to `requests`, whose `send()` then does not
//! follow); `allow_redirects=true` follows up to 30.
//!
//! Differences, on purpose:
//! - `proxies` is refused when set: bora sends requests directly, and
//!   silently ignoring a proxy could send traffic where the workflow author
//!   did not mean it to go.
//! - the response body is bounded ([`MAX_RESPONSE_BYTES`]);
//! - `history` (a list of Python response objects) is not in the result;
//! - response header names are lower-case (HTTP/2 style).
//! - `timeout` bounds the whole request (connect, headers and body), where
//!   requests applies it to the connect and to each socket read.
//!
//! Error texts never contain request headers, cookies or credentials (they
//! may hold tokens); URLs in them have their password masked.

use super::value::{number, py_str, truthy};
use super::{ActionContext, ActionOutcome};
use crate::workflow::InputParam;
use reqwest::header::{CONTENT_TYPE, COOKIE, HeaderMap, HeaderName, HeaderValue, SET_COOKIE};
use reqwest::{Client, Method, Url, redirect};
use serde_json::{Map, Value};
use std::error::Error as _;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Largest response body read; a bigger one fails the action (the result
/// is stored with the execution and passed to expressions).
pub const MAX_RESPONSE_BYTES: usize = 10 * 1024 * 1024;

/// Redirects followed at most (requests' default `max_redirects`).
pub const MAX_REDIRECTS: usize = 30;

/// What `allow_redirects: null` means: Mistral's effective behaviour.
pub const FOLLOW_REDIRECTS_BY_DEFAULT: bool = false;

/// Largest `timeout` accepted, in seconds (a day).
const MAX_TIMEOUT_SECONDS: f64 = 86_400.0;

/// `std.http`'s parameters, with Mistral's defaults.
pub(crate) fn params() -> Vec<InputParam> {
    let mut input = vec![InputParam {
        name: "url".to_string(),
        default: None,
    }];
    input.push(InputParam {
        name: "method".to_string(),
        default: Some(Value::from("GET")),
    });
    for name in [
        "params",
        "body",
        "json",
        "headers",
        "cookies",
        "auth",
        "timeout",
        "allow_redirects",
        "proxies",
        "verify",
    ] {
        input.push(InputParam {
            name: name.to_string(),
            default: Some(Value::Null),
        });
    }
    input
}

/// How the server certificate is checked.
#[derive(Debug, Clone, PartialEq)]
enum Tls {
    /// The platform's roots.
    Default,
    /// `verify: false`: no checks at all.
    Insecure,
    /// `verify: "<path>"`: the PEM certificates in that file, trusted in
    /// addition to the platform's roots, for this request only.
    CaBundle(String),
}

/// A checked `std.http` input.
#[derive(Debug)]
struct HttpRequest {
    method: Method,
    url: Url,
    headers: HeaderMap,
    body: Option<Vec<u8>>,
    basic_auth: Option<(String, String)>,
    timeout: Option<Duration>,
    follow_redirects: bool,
    tls: Tls,
}

fn error(text: String) -> ActionOutcome {
    ActionOutcome::Error(Value::String(text))
}

/// Run `std.http`.
pub(crate) async fn run(input: &Map<String, Value>, ctx: &ActionContext) -> ActionOutcome {
    let req = match parse(input) {
        Ok(req) => req,
        Err(text) => return error(format!("std.http: {text}")),
    };
    let shown_url = redact(&req.url);
    tracing::info!(
        method = %req.method,
        url = %shown_url,
        action_execution_id = %ctx.action_execution_id,
        "std.http request"
    );
    let client = match client_for(req.follow_redirects, &req.tls).await {
        Ok(client) => client,
        Err(text) => return error(format!("std.http: {text}")),
    };
    let mut builder = client.request(req.method, req.url).headers(req.headers);
    if let Some((user, password)) = req.basic_auth {
        builder = builder.basic_auth(user, Some(password));
    }
    if let Some(body) = req.body {
        builder = builder.body(body);
    }
    if let Some(timeout) = req.timeout {
        builder = builder.timeout(timeout);
    }

    let started = Instant::now();
    let mut resp = match builder.send().await {
        Ok(resp) => resp,
        Err(e) => {
            return error(format!(
                "Failed to send HTTP request to {shown_url}: {}",
                reason(e, req.timeout)
            ));
        }
    };
    let elapsed = started.elapsed().as_secs_f64();
    let status = resp.status();
    let final_url = redact(resp.url());

    if resp
        .content_length()
        .is_some_and(|n| n > MAX_RESPONSE_BYTES as u64)
    {
        return error(too_big(&final_url));
    }
    let mut body: Vec<u8> = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                    return error(too_big(&final_url));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            Err(e) => {
                return error(format!(
                    "Failed to read HTTP response from {final_url}: {}",
                    reason(e, req.timeout)
                ));
            }
        }
    }

    let encoding = encoding(resp.headers());
    let content = match serde_json::from_slice::<Value>(&body) {
        Ok(v) => v,
        Err(_) => Value::String(decode(&body, encoding.as_deref())),
    };
    let mut result = Map::new();
    result.insert("content".into(), content);
    result.insert("status".into(), Value::from(status.as_u16()));
    result.insert(
        "headers".into(),
        Value::Object(headers_dict(resp.headers())),
    );
    result.insert("url".into(), Value::String(final_url));
    result.insert(
        "encoding".into(),
        encoding.map_or(Value::Null, Value::String),
    );
    result.insert(
        "reason".into(),
        status
            .canonical_reason()
            .map_or(Value::Null, |r| Value::String(r.to_string())),
    );
    result.insert(
        "cookies".into(),
        Value::Object(cookies_dict(resp.headers())),
    );
    result.insert("elapsed".into(), Value::from(elapsed));

    // Mistral: `if resp.status_code not in range(200, 307)` → error result.
    if (200..=306).contains(&status.as_u16()) {
        ActionOutcome::Success(Value::Object(result))
    } else {
        ActionOutcome::Error(Value::Object(result))
    }
}

fn too_big(url: &str) -> String {
    format!(
        "HTTP response from {url} is larger than the limit of {MAX_RESPONSE_BYTES} bytes (10 MiB)"
    )
}

/// The reason a request failed, without the URL (the caller names it) and
/// without anything from the request's headers.
fn reason(e: reqwest::Error, timeout: Option<Duration>) -> String {
    if e.is_timeout()
        && let Some(t) = timeout
    {
        return format!("timed out after {} seconds", t.as_secs_f64());
    }
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let part = s.to_string();
        // hyper and reqwest often repeat their source's text.
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    text
}

/// The URL with its password (if any) masked, for results and errors.
fn redact(url: &Url) -> String {
    if url.password().is_some() {
        let mut shown = url.clone();
        // Cannot fail: the URL already has a password, so it has a host.
        let _ = shown.set_password(Some("***"));
        shown.to_string()
    } else {
        url.to_string()
    }
}

/// Check and convert the input.
fn parse(input: &Map<String, Value>) -> Result<HttpRequest, String> {
    let get = |name: &str| input.get(name).filter(|v| !v.is_null());

    let url_text = match get("url") {
        Some(Value::String(s)) => s.as_str(),
        Some(_) => return Err("url must be a string".into()),
        None => return Err("url is required".into()),
    };
    let mut url = Url::parse(url_text).map_err(|e| format!("invalid URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "unsupported URL scheme '{}' (only http and https)",
            url.scheme()
        ));
    }

    let method = match get("method") {
        None => Method::GET,
        Some(Value::String(m)) => Method::from_bytes(m.to_ascii_uppercase().as_bytes())
            .map_err(|_| format!("invalid HTTP method '{m}'"))?,
        Some(_) => return Err("method must be a string".into()),
    };

    match get("params") {
        None => {}
        Some(Value::Object(params)) => {
            let mut pairs = url.query_pairs_mut();
            for (k, v) in params {
                match v {
                    // requests drops parameters whose value is None.
                    Value::Null => {}
                    Value::Array(items) => {
                        for item in items.iter().filter(|i| !i.is_null()) {
                            pairs.append_pair(k, &py_str(item));
                        }
                    }
                    other => {
                        pairs.append_pair(k, &py_str(other));
                    }
                }
            }
        }
        // A ready-made query string, appended as it is.
        Some(Value::String(q)) => {
            let q = q.trim_start_matches('?');
            if !q.is_empty() {
                let query = match url.query() {
                    Some(existing) if !existing.is_empty() => format!("{existing}&{q}"),
                    _ => q.to_string(),
                };
                url.set_query(Some(&query));
            }
        }
        Some(_) => return Err("params must be a dict or a string".into()),
    }

    let mut headers = HeaderMap::new();
    match get("headers") {
        None => {}
        Some(Value::Object(map)) => {
            for (k, v) in map {
                let name = HeaderName::from_bytes(k.as_bytes())
                    .map_err(|_| format!("invalid header name '{k}'"))?;
                let text = match v {
                    // requests drops headers whose value is None.
                    Value::Null => continue,
                    Value::String(s) => s.clone(),
                    // Mistral turns int and float header values into text.
                    Value::Number(n) => n.to_string(),
                    _ => {
                        return Err(format!(
                            "value of header '{k}' must be a string or a number"
                        ));
                    }
                };
                // The value itself is never shown: it may be a token.
                let value = HeaderValue::from_str(&text)
                    .map_err(|_| format!("invalid value for header '{k}'"))?;
                headers.append(name, value);
            }
        }
        Some(_) => return Err("headers must be a dict".into()),
    }

    match get("cookies") {
        None => {}
        Some(Value::Object(map)) => {
            let cookie = map
                .iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| format!("{k}={}", py_str(v)))
                .collect::<Vec<_>>()
                .join("; ");
            // As requests: an explicit Cookie header wins over `cookies`.
            if !cookie.is_empty() && !headers.contains_key(COOKIE) {
                let value =
                    HeaderValue::from_str(&cookie).map_err(|_| "invalid cookies".to_string())?;
                headers.insert(COOKIE, value);
            }
        }
        Some(_) => return Err("cookies must be a dict".into()),
    }

    let basic_auth = match get("auth") {
        None => None,
        Some(v) if !truthy(v) => None,
        Some(Value::String(s)) => match s.split_once(':') {
            Some((user, password)) if !password.contains(':') => {
                Some((user.to_string(), password.to_string()))
            }
            _ => return Err("auth must be \"user:password\" or [user, password]".into()),
        },
        Some(Value::Array(a)) if a.len() == 2 => Some((py_str(&a[0]), py_str(&a[1]))),
        Some(_) => return Err("auth must be \"user:password\" or [user, password]".into()),
    };

    let body_given = input.get("body").filter(|v| truthy(v));
    let json_given = get("json");
    if body_given.is_some() && json_given.is_some_and(truthy) {
        // Mistral's text.
        return Err("Only one of the parameters 'json' and 'body' can be passed".into());
    }
    let body = match (body_given, json_given) {
        (Some(Value::String(s)), _) => Some(s.clone().into_bytes()),
        // A dict (or list, number...) body goes as JSON text, with no
        // Content-Type, as Mistral does (`utils.to_json_str(body)`).
        (Some(other), _) => Some(other.to_string().into_bytes()),
        (None, Some(json)) => {
            if !headers.contains_key(CONTENT_TYPE) {
                headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            }
            Some(json.to_string().into_bytes())
        }
        (None, None) => None,
    };

    let timeout = match get("timeout") {
        None => None,
        Some(v) => match number(v) {
            Some(t) if t > 0.0 && t <= MAX_TIMEOUT_SECONDS => Some(Duration::from_secs_f64(t)),
            _ => {
                return Err(format!(
                    "timeout must be a number of seconds above 0 and at most {MAX_TIMEOUT_SECONDS}"
                ));
            }
        },
    };

    let follow_redirects = get("allow_redirects").map_or(FOLLOW_REDIRECTS_BY_DEFAULT, truthy);

    if input.get("proxies").is_some_and(truthy) {
        return Err("proxies are not supported: bora sends requests directly".into());
    }

    // As Mistral: `verify` is only passed on for https URLs.
    let tls = match get("verify") {
        _ if url.scheme() != "https" => Tls::Default,
        None | Some(Value::Bool(true)) => Tls::Default,
        Some(Value::Bool(false)) => Tls::Insecure,
        Some(Value::String(path)) => Tls::CaBundle(path.clone()),
        Some(_) => return Err("verify must be a boolean or the path of a CA bundle".into()),
    };

    Ok(HttpRequest {
        method,
        url,
        headers,
        body,
        basic_auth,
        timeout,
        follow_redirects,
        tls,
    })
}

/// A client for these settings. The four without a CA bundle are built
/// once and shared (a reqwest client holds a connection pool); a CA bundle
/// gets a client of its own for this request.
async fn client_for(follow: bool, tls: &Tls) -> Result<Client, String> {
    static SHARED: [OnceLock<Result<Client, String>>; 4] = [
        OnceLock::new(),
        OnceLock::new(),
        OnceLock::new(),
        OnceLock::new(),
    ];
    let insecure = match tls {
        Tls::Default => false,
        Tls::Insecure => true,
        Tls::CaBundle(path) => {
            let certs = read_ca_bundle(path).await?;
            return builder(follow)
                .tls_certs_merge(certs)
                .build()
                .map_err(|e| format!("cannot build an HTTP client with CA bundle '{path}': {e}"));
        }
    };
    let slot = &SHARED[usize::from(follow) * 2 + usize::from(insecure)];
    slot.get_or_init(|| {
        builder(follow)
            .tls_danger_accept_invalid_certs(insecure)
            .build()
            .map_err(|e| format!("cannot build an HTTP client: {e}"))
    })
    .clone()
}

fn builder(follow: bool) -> reqwest::ClientBuilder {
    let policy = if follow {
        redirect::Policy::limited(MAX_REDIRECTS)
    } else {
        redirect::Policy::none()
    };
    crate::http::client_builder()
        .redirect(policy)
        .user_agent(concat!("bora/", env!("CARGO_PKG_VERSION")))
}

/// The PEM certificates in the file at `path`.
async fn read_ca_bundle(path: &str) -> Result<Vec<reqwest::Certificate>, String> {
    let owned = path.to_string();
    // File reads block; keep them off the async workers.
    let pem = tokio::task::spawn_blocking(move || std::fs::read(owned))
        .await
        .map_err(|e| format!("cannot read CA bundle '{path}': {e}"))?
        .map_err(|e| format!("cannot read CA bundle '{path}': {e}"))?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem)
        .map_err(|e| format!("CA bundle '{path}' is not valid PEM: {e}"))?;
    if certs.is_empty() {
        return Err(format!("CA bundle '{path}' holds no certificate"));
    }
    Ok(certs)
}

/// requests' `resp.encoding`: the `charset` of the content type, else
/// ISO-8859-1 for `text/*`, else none.
fn encoding(headers: &HeaderMap) -> Option<String> {
    let ct = headers.get(CONTENT_TYPE)?.to_str().ok()?;
    let mut parts = ct.split(';');
    let mime = parts.next().unwrap_or("").trim().to_ascii_lowercase();
    for p in parts {
        if let Some((k, v)) = p.split_once('=')
            && k.trim().eq_ignore_ascii_case("charset")
        {
            return Some(v.trim().trim_matches(['"', '\'']).to_string());
        }
    }
    mime.starts_with("text/").then(|| "ISO-8859-1".to_string())
}

/// The body as text: UTF-8 when it is (most servers that say ISO-8859-1
/// by omission send UTF-8), else Latin-1 when declared, else lossy UTF-8.
fn decode(body: &[u8], encoding: Option<&str>) -> String {
    match std::str::from_utf8(body) {
        Ok(s) => s.to_string(),
        Err(_) => {
            let latin1 = encoding.is_some_and(|e| {
                matches!(
                    e.to_ascii_lowercase().as_str(),
                    "iso-8859-1" | "iso8859-1" | "latin-1" | "latin1" | "l1" | "us-ascii" | "ascii"
                )
            });
            if latin1 {
                body.iter().map(|&b| char::from(b)).collect()
            } else {
                String::from_utf8_lossy(body).into_owned()
            }
        }
    }
}

/// Response headers as a dict; repeated headers joined with ", " (as
/// urllib3 does).
fn headers_dict(headers: &HeaderMap) -> Map<String, Value> {
    let mut out = Map::new();
    for (name, value) in headers {
        let text = String::from_utf8_lossy(value.as_bytes()).into_owned();
        match out.get_mut(name.as_str()) {
            Some(Value::String(existing)) => {
                existing.push_str(", ");
                existing.push_str(&text);
            }
            _ => {
                out.insert(name.as_str().to_string(), Value::String(text));
            }
        }
    }
    out
}

/// `name: value` of the response's `Set-Cookie` headers.
fn cookies_dict(headers: &HeaderMap) -> Map<String, Value> {
    let mut out = Map::new();
    for value in headers.get_all(SET_COOKIE) {
        let text = String::from_utf8_lossy(value.as_bytes());
        let pair = text.split(';').next().unwrap_or("");
        if let Some((k, v)) = pair.split_once('=') {
            let k = k.trim();
            if !k.is_empty() {
                out.insert(k.to_string(), Value::String(v.trim().to_string()));
            }
        }
    }
    out
}
