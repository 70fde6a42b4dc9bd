//! A small Keystone v3 client on reqwest: token validation with catalog,
//! password, application-credential and trust-scoped authentication.
//!
//! Each client is built for one target: its own reqwest client trusting the
//! platform roots plus the target's CA (and nothing of any other target's),
//! pinned to the addresses the [`OutboundPolicy`] checked, with redirects
//! off (a redirect could lead past the policy) and proxies off (a proxy
//! would connect somewhere the policy never saw). Tokens travel only in
//! headers and are scrubbed from any error detail.

use std::error::Error as _;
use std::time::Duration;

use reqwest::{Response, StatusCode, Url};
use serde::Deserialize;
use serde_json::{Value, json};

use super::TargetCloud;
use super::catalog::Catalog;
use super::policy::{OutboundPolicy, PolicyError, display_url};
use crate::secret::Secret;

/// Connection timeout: a target that does not accept within this is down.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Whole-request timeout: Keystone answers in well under a second.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a Keystone call failed. No variant carries a token, password or
/// secret; URLs are shown without user info.
#[derive(Debug, thiserror::Error)]
pub enum KeystoneError {
    /// The URL is refused by the outbound policy. Caller's fault (or the
    /// operator's policy); retrying does not help.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// The auth URL does not parse. Caller's fault; retrying does not help.
    #[error("Keystone URL '{url}' is invalid: {reason}")]
    BadUrl {
        /// The URL as given.
        url: String,
        /// The parse error.
        reason: String,
    },
    /// The CA bundle given for the target is not usable PEM. Caller's fault.
    #[error("the CA certificate for {url} is not a usable PEM bundle: {reason}")]
    BadCa {
        /// The Keystone URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// The HTTP client could not be built. Bug or environment fault.
    #[error("cannot build an HTTP client for {url}: {reason}")]
    Client {
        /// The Keystone URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// TLS failed: certificate not trusted, wrong host name, or handshake
    /// error. Caller's fault (give the CA that signed the server's
    /// certificate); retrying does not help.
    #[error(
        "TLS/certificate problem talking to {url}: {detail} (is the right CA certificate given for this target?)"
    )]
    Tls {
        /// The Keystone URL.
        url: String,
        /// The TLS library's reason.
        detail: String,
    },
    /// Could not connect (refused, unreachable) or the connection broke.
    /// The target may be down: a retry later may help.
    #[error("cannot reach {url}: {detail}")]
    Connect {
        /// The Keystone URL.
        url: String,
        /// Why.
        detail: String,
    },
    /// No answer in time. A retry may help.
    #[error("timed out talking to {url}")]
    Timeout {
        /// The Keystone URL.
        url: String,
    },
    /// 401: Keystone rejected the token or credentials (expired, revoked,
    /// wrong password, not issued by this cloud). Caller's fault: a fresh
    /// token is needed; retrying the same does not help.
    #[error("{what} rejected by {url} (401 Unauthorized)")]
    Unauthorized {
        /// `token` or `credentials`.
        what: &'static str,
        /// The Keystone URL.
        url: String,
    },
    /// 404 on validation: the token is unknown to this Keystone (expired,
    /// revoked, garbage, or from another cloud). Caller's fault.
    #[error("token rejected by {url}: not found (expired, revoked, or not issued by this cloud)")]
    TokenNotFound {
        /// The Keystone URL.
        url: String,
    },
    /// 403: the token is valid but may not do this. Caller's fault (roles).
    #[error("forbidden by {url} (403): {detail}")]
    Forbidden {
        /// The Keystone URL.
        url: String,
        /// Keystone's message.
        detail: String,
    },
    /// Keystone failed (5xx). The target's fault: a retry may help.
    #[error("{url} failed with {status}: {detail}")]
    Server {
        /// The Keystone URL.
        url: String,
        /// The status.
        status: StatusCode,
        /// Keystone's message.
        detail: String,
    },
    /// Any other unexpected status (400, 409, ...). Usually the caller's
    /// request; retrying does not help.
    #[error("{url} answered {status}: {detail}")]
    Status {
        /// The Keystone URL.
        url: String,
        /// The status.
        status: StatusCode,
        /// Keystone's message.
        detail: String,
    },
    /// The answer is not what Keystone v3 sends (not JSON, no
    /// `X-Subject-Token`): the URL is probably not a Keystone v3 endpoint.
    #[error("unexpected answer from {url}: {detail}")]
    BadResponse {
        /// The Keystone URL.
        url: String,
        /// What was wrong.
        detail: String,
    },
}

impl KeystoneError {
    /// Whether retrying the same call later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::Connect { .. } | Self::Timeout { .. } | Self::Server { .. }
        )
    }
}

/// A user, project or domain reference in a token body.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Reference {
    /// Its id.
    #[serde(default)]
    pub id: String,
    /// Its name.
    #[serde(default)]
    pub name: Option<String>,
    /// Its domain (users and projects).
    #[serde(default)]
    pub domain: Option<DomainReference>,
}

/// A domain reference.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct DomainReference {
    /// Its id.
    #[serde(default)]
    pub id: Option<String>,
    /// Its name.
    #[serde(default)]
    pub name: Option<String>,
}

/// What Keystone says about a token (the body of `GET /v3/auth/tokens`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct TokenInfo {
    /// The token's user (the trustor for an impersonating trust).
    pub user: Reference,
    /// The project it is scoped to, if any.
    #[serde(default)]
    pub project: Option<Reference>,
    /// The roles it carries.
    #[serde(default)]
    pub roles: Vec<Reference>,
    /// When it expires (ISO 8601, as Keystone writes it).
    pub expires_at: String,
    /// When it was issued.
    #[serde(default)]
    pub issued_at: Option<String>,
    /// How it was obtained (`password`, `token`, `application_credential`).
    #[serde(default)]
    pub methods: Vec<String>,
    /// Its service catalog (empty when the token is unscoped).
    #[serde(default)]
    pub catalog: Catalog,
    /// The trust, for a trust-scoped token.
    #[serde(default, rename = "OS-TRUST:trust")]
    pub trust: Option<Value>,
}

impl TokenInfo {
    /// The role names.
    pub fn role_names(&self) -> Vec<&str> {
        self.roles
            .iter()
            .filter_map(|role| role.name.as_deref())
            .collect()
    }
}

/// A Keystone v3 client for one cloud.
#[derive(Debug, Clone)]
pub struct KeystoneClient {
    /// `.../v3/`, with the trailing slash so joins stay under it.
    base: Url,
    /// The auth URL for messages (no user info).
    shown: String,
    client: reqwest::Client,
}

/// `http://k:5000`, `http://k:5000/`, `http://k:5000/v3/` -> `http://k:5000/v3/`.
fn normalise(auth_url: &str) -> Result<Url, KeystoneError> {
    let mut url = Url::parse(auth_url.trim()).map_err(|error| KeystoneError::BadUrl {
        url: auth_url.to_owned(),
        reason: error.to_string(),
    })?;
    let path = url.path().trim_end_matches('/').to_owned();
    let path = if path.ends_with("/v3") {
        path
    } else {
        format!("{path}/v3")
    };
    url.set_path(&format!("{path}/"));
    url.set_query(None);
    url.set_fragment(None);
    Ok(url)
}

/// Whether a reqwest error was caused by TLS (walks the source chain: the
/// rustls error sits a few levels under hyper's and reqwest's).
fn is_tls_error(error: &reqwest::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = error.source();
    while let Some(cause) = source {
        if cause.downcast_ref::<rustls::Error>().is_some() {
            return true;
        }
        let text = cause.to_string().to_ascii_lowercase();
        if ["certificate", "tls", "handshake", "invalid peer"]
            .iter()
            .any(|word| text.contains(word))
        {
            return true;
        }
        source = cause.source();
    }
    false
}

/// An HTTP client for one URL a target supplied: the URL must pass
/// `policy` and the client connects only to the addresses checked; it
/// trusts the platform roots plus `ca_pem` (this client only); `insecure`
/// only where the policy allows it; no redirects, no proxy. `shown` names
/// the URL in errors.
pub async fn target_client(
    url: &Url,
    shown: &str,
    ca_pem: Option<&[u8]>,
    insecure: bool,
    policy: &OutboundPolicy,
) -> Result<reqwest::Client, KeystoneError> {
    let checked = policy.check(url).await?;
    let mut builder = checked
        .pin(crate::http::client_builder())
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT);
    if let Some(pem) = ca_pem {
        let certificates =
            reqwest::Certificate::from_pem_bundle(pem).map_err(|error| KeystoneError::BadCa {
                url: shown.to_owned(),
                reason: error.to_string(),
            })?;
        if certificates.is_empty() {
            return Err(KeystoneError::BadCa {
                url: shown.to_owned(),
                reason: "no certificate in it".into(),
            });
        }
        builder = builder.tls_certs_merge(certificates);
    }
    if insecure {
        policy.check_insecure(url)?;
        builder = builder.tls_danger_accept_invalid_certs(true);
    }
    builder.build().map_err(|error| KeystoneError::Client {
        url: shown.to_owned(),
        reason: cause_chain(&error),
    })
}

/// A failed request to `shown` as an error: TLS, timeout or connection.
pub fn transport_error(shown: &str, error: reqwest::Error) -> KeystoneError {
    let url = shown.to_owned();
    if is_tls_error(&error) {
        KeystoneError::Tls {
            url,
            detail: cause_chain(&error),
        }
    } else if error.is_timeout() {
        KeystoneError::Timeout { url }
    } else {
        KeystoneError::Connect {
            url,
            detail: cause_chain(&error),
        }
    }
}

/// The innermost causes of an error, joined, for a readable detail.
fn cause_chain(error: &reqwest::Error) -> String {
    let mut parts = Vec::new();
    let mut source: Option<&(dyn std::error::Error + 'static)> = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !parts.contains(&text) {
            parts.push(text);
        }
        source = cause.source();
    }
    if parts.is_empty() {
        parts.push(error.without_url_ref());
    }
    parts.join(": ")
}

/// reqwest's own message without the URL (we name the URL ourselves).
trait WithoutUrlRef {
    fn without_url_ref(&self) -> String;
}

impl WithoutUrlRef for reqwest::Error {
    fn without_url_ref(&self) -> String {
        let text = self.to_string();
        match text.split_once(" for url (") {
            Some((head, _)) => head.to_owned(),
            None => text,
        }
    }
}

/// Remove secrets from text that came from the server, and shorten it.
fn scrub(text: &str, secrets: &[&str]) -> String {
    let mut text = text.to_owned();
    for secret in secrets.iter().filter(|secret| secret.len() >= 4) {
        text = text.replace(secret, "***");
    }
    if text.chars().count() > 300 {
        text = text.chars().take(300).collect::<String>() + "...";
    }
    text
}

impl KeystoneClient {
    /// A client for the Keystone at `auth_url` (with or without `/v3`),
    /// trusting the platform roots plus `ca_pem` (for this client only).
    /// `insecure` is honoured only when `policy` allows it; the URL must
    /// pass `policy`.
    pub async fn new(
        auth_url: &str,
        ca_pem: Option<&[u8]>,
        insecure: bool,
        policy: &OutboundPolicy,
    ) -> Result<Self, KeystoneError> {
        let base = normalise(auth_url)?;
        let shown = display_url(&base).trim_end_matches('/').to_owned();
        let client = target_client(&base, &shown, ca_pem, insecure, policy).await?;
        Ok(Self {
            base,
            shown,
            client,
        })
    }

    /// A client for a target's Keystone, with its CA and insecure flag.
    pub async fn for_target(
        target: &TargetCloud,
        policy: &OutboundPolicy,
    ) -> Result<Self, KeystoneError> {
        Self::new(
            &target.auth_url,
            target.ca_pem.as_deref(),
            target.insecure,
            policy,
        )
        .await
    }

    /// The normalised auth URL (`.../v3`), as shown in messages.
    pub fn auth_url(&self) -> &str {
        &self.shown
    }

    fn tokens_url(&self) -> Url {
        self.base
            .join("auth/tokens")
            .expect("a relative path joins onto an http(s) URL")
    }

    fn transport_error(&self, error: reqwest::Error) -> KeystoneError {
        transport_error(&self.shown, error)
    }

    /// Map a non-success status to an error; `what` names what a 401 rejects.
    async fn check_status(
        &self,
        response: Response,
        what: &'static str,
        secrets: &[&str],
    ) -> Result<Response, KeystoneError> {
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let url = self.shown.clone();
        let body = response.text().await.unwrap_or_default();
        let message = serde_json::from_str::<Value>(&body)
            .ok()
            .and_then(|json| {
                json.pointer("/error/message")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .unwrap_or(body);
        let detail = scrub(&message, secrets);
        Err(match status {
            StatusCode::UNAUTHORIZED => KeystoneError::Unauthorized { what, url },
            StatusCode::NOT_FOUND if what == "token" => KeystoneError::TokenNotFound { url },
            StatusCode::FORBIDDEN => KeystoneError::Forbidden { url, detail },
            status if status.is_server_error() => KeystoneError::Server {
                url,
                status,
                detail,
            },
            status => KeystoneError::Status {
                url,
                status,
                detail,
            },
        })
    }

    async fn token_body(&self, response: Response) -> Result<TokenInfo, KeystoneError> {
        #[derive(Deserialize)]
        struct Body {
            token: TokenInfo,
        }
        let bytes = response
            .bytes()
            .await
            .map_err(|error| self.transport_error(error))?;
        serde_json::from_slice::<Body>(&bytes)
            .map(|body| body.token)
            .map_err(|error| KeystoneError::BadResponse {
                url: self.shown.clone(),
                detail: format!("not a Keystone v3 token body ({error})"),
            })
    }

    /// Validate `token` (`GET /v3/auth/tokens`, the token authenticating
    /// itself) and return its user, project, roles, expiry and catalog.
    pub async fn validate_token(&self, token: &Secret) -> Result<TokenInfo, KeystoneError> {
        self.validate_token_as(token, token).await
    }

    /// Validate `subject` authenticated by another token `auth`. Keystone's
    /// default policy lets a plain user validate only tokens of its own
    /// user, and refuses a trust-scoped token validating itself (403); an
    /// impersonating trust token may validate its trustor's tokens.
    pub async fn validate_token_as(
        &self,
        auth: &Secret,
        subject: &Secret,
    ) -> Result<TokenInfo, KeystoneError> {
        let response = self
            .client
            .get(self.tokens_url())
            .header("X-Auth-Token", auth.expose())
            .header("X-Subject-Token", subject.expose())
            .send()
            .await
            .map_err(|error| self.transport_error(error))?;
        let response = self
            .check_status(response, "token", &[auth.expose(), subject.expose()])
            .await?;
        self.token_body(response).await
    }

    /// `POST /v3/auth/tokens` with `auth`; returns the new token and its info.
    async fn issue(
        &self,
        auth: Value,
        secrets: &[&str],
    ) -> Result<(Secret, TokenInfo), KeystoneError> {
        let response = self
            .client
            .post(self.tokens_url())
            .json(&json!({ "auth": auth }))
            .send()
            .await
            .map_err(|error| self.transport_error(error))?;
        let response = self.check_status(response, "credentials", secrets).await?;
        let token = response
            .headers()
            .get("X-Subject-Token")
            .and_then(|value| value.to_str().ok())
            .map(Secret::new)
            .ok_or_else(|| KeystoneError::BadResponse {
                url: self.shown.clone(),
                detail: "no X-Subject-Token header in the answer".into(),
            })?;
        Ok((token, self.token_body(response).await?))
    }

    /// A project-scoped token from a user name and password (names, not
    /// ids, for user, project and their domains).
    pub async fn password_auth(
        &self,
        user_name: &str,
        user_domain_name: &str,
        password: &Secret,
        project_name: &str,
        project_domain_name: &str,
    ) -> Result<(Secret, TokenInfo), KeystoneError> {
        let auth = json!({
            "identity": {"methods": ["password"], "password": {"user": {
                "name": user_name,
                "domain": {"name": user_domain_name},
                "password": password.expose(),
            }}},
            "scope": {"project": {"name": project_name, "domain": {"name": project_domain_name}}},
        });
        self.issue(auth, &[password.expose()]).await
    }

    /// A token from an application credential. No scope is sent: the
    /// credential carries its own, and Keystone answers 401 to a scope.
    pub async fn application_credential_auth(
        &self,
        id: &str,
        secret: &Secret,
    ) -> Result<(Secret, TokenInfo), KeystoneError> {
        let auth = json!({
            "identity": {"methods": ["application_credential"], "application_credential": {
                "id": id,
                "secret": secret.expose(),
            }},
        });
        self.issue(auth, &[secret.expose()]).await
    }

    /// A trust-scoped token: the trustee authenticates with its own token
    /// and asks for the trust's scope. With impersonation the token's user
    /// is the trustor.
    pub async fn trust_scoped_auth(
        &self,
        trustee_token: &Secret,
        trust_id: &Secret,
    ) -> Result<(Secret, TokenInfo), KeystoneError> {
        let auth = json!({
            "identity": {"methods": ["token"], "token": {"id": trustee_token.expose()}},
            "scope": {"OS-TRUST:trust": {"id": trust_id.expose()}},
        });
        self.issue(auth, &[trustee_token.expose(), trust_id.expose()])
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_urls_are_normalised_to_v3() {
        for given in [
            "http://k:5000",
            "http://k:5000/",
            "http://k:5000/v3",
            "http://k:5000/v3/",
        ] {
            assert_eq!(
                normalise(given).unwrap().as_str(),
                "http://k:5000/v3/",
                "{given}"
            );
        }
        assert_eq!(
            normalise("https://k/identity").unwrap().as_str(),
            "https://k/identity/v3/"
        );
        assert!(normalise("not a url").is_err());
    }

    #[test]
    fn scrub_removes_secrets_and_shortens() {
        assert_eq!(
            scrub("Could not find token: gAAAA1234.", &["gAAAA1234"]),
            "Could not find token: ***."
        );
        assert!(scrub(&"x".repeat(1000), &[]).len() < 400);
    }

    #[tokio::test]
    async fn insecure_is_refused_unless_the_policy_allows_it() {
        let strict = OutboundPolicy::from_values(Some("127.0.0.0/8"), None).unwrap();
        let error = KeystoneClient::new("https://127.0.0.1:1/v3", None, true, &strict)
            .await
            .unwrap_err();
        assert!(
            matches!(error, KeystoneError::Policy(PolicyError::Insecure { .. })),
            "{error}"
        );
        let lenient = OutboundPolicy::from_values(Some("127.0.0.0/8"), Some("true")).unwrap();
        assert!(
            KeystoneClient::new("https://127.0.0.1:1/v3", None, true, &lenient)
                .await
                .is_ok()
        );
    }

    #[tokio::test]
    async fn an_unreachable_keystone_is_a_retryable_connect_error() {
        let policy = OutboundPolicy::from_values(Some("127.0.0.0/8"), None).unwrap();
        // Port 1 on loopback: nothing listens, the connection is refused.
        let client = KeystoneClient::new("http://127.0.0.1:1", None, false, &policy)
            .await
            .unwrap();
        let error = client
            .validate_token(&Secret::new("tok-12345"))
            .await
            .unwrap_err();
        assert!(matches!(error, KeystoneError::Connect { .. }), "{error}");
        assert!(error.is_retryable());
        assert!(
            error.to_string().contains("http://127.0.0.1:1/v3"),
            "{error}"
        );
    }
}
