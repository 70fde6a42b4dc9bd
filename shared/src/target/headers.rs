//! Parsing the target cloud of `POST /v2/executions`, from `X-Target-*`
//! headers (Mistral's multi-VIM headers) or from the body's
//! `params.target` (a clouds.yaml-like entry).
//!
//! Both forms give the same [`TargetCloud`] and the same rules: nothing
//! given is the legacy mode (`None`); auth URL and token both given is a
//! target; anything else is a [`TargetError`] naming the header or field.
//! Error texts never contain the token, since they reach API responses and
//! logs.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use reqwest::Url;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;
use serde_json::Value;

use super::TargetCloud;
use super::catalog::Catalog;
use crate::secret::Secret;

const AUTH_URI: &str = "X-Target-Auth-Uri";
const AUTH_TOKEN: &str = "X-Target-Auth-Token";
const CA_CERT: &str = "X-Target-Ca-Cert";
const INSECURE: &str = "X-Target-Insecure";
const SERVICE_CATALOG: &str = "X-Target-Service-Catalog";
const REGION_NAME: &str = "X-Target-Region-Name";
const PROJECT_ID: &str = "X-Target-Project-Id";
const USER_ID: &str = "X-Target-User-Id";
const USER_NAME: &str = "X-Target-User-Name";
const USER_DOMAIN_NAME: &str = "X-Target-User-Domain-Name";
const PROJECT_DOMAIN_NAME: &str = "X-Target-Project-Domain-Name";

/// Every header this module understands, in canonical spelling.
const KNOWN_HEADERS: [&str; 11] = [
    AUTH_URI,
    AUTH_TOKEN,
    CA_CERT,
    INSECURE,
    SERVICE_CATALOG,
    REGION_NAME,
    PROJECT_ID,
    USER_ID,
    USER_NAME,
    USER_DOMAIN_NAME,
    PROJECT_DOMAIN_NAME,
];

/// Why the target given at execution create is rejected. Always the
/// caller's fault (HTTP 400); retrying the same request does not help. The
/// message names the header or body field and never contains the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// A required header or field is missing given the others present.
    #[error("{field} is required when {present} is set")]
    Missing {
        /// The missing header or field.
        field: String,
        /// A header or field that was given and needs it.
        present: String,
    },
    /// A header or field has a malformed value.
    #[error("{field} {problem}")]
    Invalid {
        /// The header or field.
        field: String,
        /// What is wrong, e.g. `must be True or False, got 'yes'`.
        problem: String,
    },
}

fn invalid(field: &str, problem: impl Into<String>) -> TargetError {
    TargetError::Invalid {
        field: field.to_owned(),
        problem: problem.into(),
    }
}

/// Quote a caller value for an error message, cut to a readable length.
fn quoted(value: &str) -> String {
    let mut shown: String = value.chars().take(80).collect();
    if shown.len() < value.len() {
        shown.push_str("...");
    }
    format!("'{shown}'")
}

/// Parse the target from request headers (names compared
/// case-insensitively). `Ok(None)`: no `X-Target-*` header, legacy mode.
pub fn parse_target_headers<'a, I>(headers: I) -> Result<Option<TargetCloud>, TargetError>
where
    I: IntoIterator<Item = (&'a str, &'a str)>,
{
    let mut given: BTreeMap<&'static str, &'a str> = BTreeMap::new();
    for (name, value) in headers {
        if !name.to_ascii_lowercase().starts_with("x-target-") {
            continue;
        }
        let Some(known) = KNOWN_HEADERS
            .iter()
            .find(|known| known.eq_ignore_ascii_case(name))
        else {
            // A typo (X-Target-Auth-Url) must not silently mean "no target".
            return Err(invalid(
                name,
                format!(
                    "is not a known target header (known: {})",
                    KNOWN_HEADERS.join(", ")
                ),
            ));
        };
        given.insert(known, value.trim());
    }
    if given.is_empty() {
        return Ok(None);
    }
    let auth_uri = given.get(AUTH_URI).copied();
    let token = given.get(AUTH_TOKEN).copied();
    let (auth_uri, token) = match (auth_uri, token) {
        (Some(uri), Some(token)) => (uri, token),
        (Some(_), None) => return Err(missing(AUTH_TOKEN, AUTH_URI)),
        (None, Some(_)) => return Err(missing(AUTH_URI, AUTH_TOKEN)),
        (None, None) => {
            let present = given.keys().next().copied().unwrap_or(AUTH_URI);
            return Err(missing(&format!("{AUTH_URI} (with {AUTH_TOKEN})"), present));
        }
    };
    let ca_pem = match given.get(CA_CERT) {
        Some(encoded) => Some(decode_ca_header(encoded)?),
        None => None,
    };
    let insecure = match given.get(INSECURE) {
        Some(value) => parse_bool_text(INSECURE, value)?,
        None => false,
    };
    let catalog = match given.get(SERVICE_CATALOG) {
        Some(encoded) => Some(decode_catalog_header(encoded)?),
        None => None,
    };
    let text = |name: &str| {
        given
            .get(name)
            .filter(|v| !v.is_empty())
            .map(|v| (*v).to_owned())
    };
    Ok(Some(TargetCloud {
        auth_url: validate_auth_url(AUTH_URI, auth_uri)?,
        token: validate_token(AUTH_TOKEN, token)?,
        ca_pem,
        insecure,
        catalog,
        region: text(REGION_NAME),
        project_id: text(PROJECT_ID),
        user_id: text(USER_ID),
        user_name: text(USER_NAME),
        user_domain_name: text(USER_DOMAIN_NAME),
        project_domain_name: text(PROJECT_DOMAIN_NAME),
    }))
}

fn missing(field: &str, present: &str) -> TargetError {
    TargetError::Missing {
        field: field.to_owned(),
        present: present.to_owned(),
    }
}

/// Parse the body form: `params.target`, a JSON object shaped like a
/// clouds.yaml entry (`auth: {auth_url, token, ...}` or the same keys flat,
/// `cacert` as PEM text, `insecure` as a bool, `region_name`, ...).
/// `None` or JSON null is the legacy mode.
pub fn parse_body_target(target: Option<&Value>) -> Result<Option<TargetCloud>, TargetError> {
    const ROOT: &str = "params.target";
    let target = match target {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(map)) => map,
        Some(_) => return Err(invalid(ROOT, "must be an object")),
    };
    let auth = match target.get("auth") {
        None | Some(Value::Null) => None,
        Some(Value::Object(auth)) => Some(auth),
        Some(_) => return Err(invalid("params.target.auth", "must be an object")),
    };
    // A key is looked up in `auth` first (clouds.yaml), then flat; the name
    // reported is where it was found, or where it belongs.
    let lookup = |key: &str| -> Option<(String, &Value)> {
        if let Some(value) = auth.and_then(|auth| auth.get(key)) {
            return Some((format!("params.target.auth.{key}"), value));
        }
        target
            .get(key)
            .map(|value| (format!("{ROOT}.{key}"), value))
    };
    let auth_field = |key: &str| match auth {
        Some(_) => format!("params.target.auth.{key}"),
        None => format!("{ROOT}.{key}"),
    };
    let string = |key: &str| -> Result<Option<(String, String)>, TargetError> {
        match lookup(key) {
            None | Some((_, Value::Null)) => Ok(None),
            Some((field, Value::String(text))) => Ok(Some((field, text.trim().to_owned()))),
            Some((field, _)) => Err(invalid(&field, "must be a string")),
        }
    };
    let plain = |keys: &[&str]| -> Result<Option<String>, TargetError> {
        for key in keys {
            if let Some((_, text)) = string(key)?
                && !text.is_empty()
            {
                return Ok(Some(text));
            }
        }
        Ok(None)
    };

    let auth_url = string("auth_url")?;
    let token = string("token")?;
    let (auth_url, token) = match (auth_url, token) {
        (Some(url), Some(token)) => (url, token),
        (Some((field, _)), None) => return Err(missing(&auth_field("token"), &field)),
        (None, Some((field, _))) => return Err(missing(&auth_field("auth_url"), &field)),
        (None, None) => return Err(missing(&auth_field("auth_url"), ROOT)),
    };
    let ca_pem = match string("cacert")? {
        Some((field, pem)) => {
            certificate_count(pem.as_bytes()).map_err(|reason| {
                invalid(&field, format!("is not a PEM certificate bundle: {reason}"))
            })?;
            Some(pem.into_bytes())
        }
        None => None,
    };
    let insecure = match lookup("insecure") {
        None | Some((_, Value::Null)) => false,
        Some((_, Value::Bool(flag))) => *flag,
        Some((field, Value::String(text))) => parse_bool_text(&field, text)?,
        Some((field, other)) => {
            return Err(invalid(
                &field,
                format!("must be true or false, got {other}"),
            ));
        }
    };
    let catalog = match lookup("service_catalog").or_else(|| lookup("catalog")) {
        None | Some((_, Value::Null)) => None,
        Some((field, value)) => Some(catalog_list(&field, value)?),
    };
    Ok(Some(TargetCloud {
        auth_url: validate_auth_url(&auth_url.0, &auth_url.1)?,
        token: validate_token(&token.0, &token.1)?,
        ca_pem,
        insecure,
        catalog,
        region: plain(&["region_name", "region"])?,
        project_id: plain(&["project_id", "tenant_id"])?,
        user_id: plain(&["user_id"])?,
        user_name: plain(&["username", "user_name"])?,
        user_domain_name: plain(&["user_domain_name"])?,
        project_domain_name: plain(&["project_domain_name"])?,
    }))
}

fn validate_auth_url(field: &str, text: &str) -> Result<String, TargetError> {
    let bad = || {
        invalid(
            field,
            format!("must be an http or https URL, got {}", quoted(text)),
        )
    };
    let url = Url::parse(text).map_err(|_| bad())?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return Err(bad());
    }
    if !url.username().is_empty() || url.password().is_some() {
        // Not echoed: user info may carry a password.
        return Err(invalid(
            field,
            "must not contain user info (user:password@)",
        ));
    }
    Ok(text.to_owned())
}

fn validate_token(field: &str, token: &str) -> Result<Secret, TargetError> {
    if token.is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    // Header-safe characters only: a token is sent back as a header value.
    if !token.bytes().all(|byte| byte.is_ascii_graphic()) {
        return Err(invalid(field, "must be printable ASCII without spaces"));
    }
    Ok(Secret::new(token))
}

fn parse_bool_text(field: &str, value: &str) -> Result<bool, TargetError> {
    if value.eq_ignore_ascii_case("true") {
        Ok(true)
    } else if value.eq_ignore_ascii_case("false") {
        Ok(false)
    } else {
        Err(invalid(
            field,
            format!("must be True or False, got {}", quoted(value)),
        ))
    }
}

/// Decode base64 that may carry line breaks (some clients wrap it).
fn decode_base64(value: &str) -> Result<Vec<u8>, base64::DecodeError> {
    let compact: String = value.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    STANDARD.decode(compact)
}

fn decode_ca_header(value: &str) -> Result<Vec<u8>, TargetError> {
    let problem = |reason: String| {
        invalid(
            CA_CERT,
            format!("is not base64 of a PEM certificate bundle: {reason}"),
        )
    };
    let pem = decode_base64(value).map_err(|error| problem(format!("bad base64 ({error})")))?;
    certificate_count(&pem).map_err(problem)?;
    Ok(pem)
}

/// How many certificates a PEM bundle holds; an error when none, or when a
/// certificate block is malformed.
fn certificate_count(pem: &[u8]) -> Result<usize, String> {
    let mut count = 0;
    for cert in CertificateDer::pem_slice_iter(pem) {
        cert.map_err(|error| format!("malformed PEM ({error:?})"))?;
        count += 1;
    }
    if count == 0 {
        return Err("no '-----BEGIN CERTIFICATE-----' block found".into());
    }
    Ok(count)
}

/// SHA-256 fingerprints (hex) of the certificates in a PEM bundle.
pub fn certificate_fingerprints(pem: &[u8]) -> Vec<String> {
    CertificateDer::pem_slice_iter(pem)
        .filter_map(Result::ok)
        .map(|cert| hex::encode(ring::digest::digest(&ring::digest::SHA256, cert.as_ref())))
        .collect()
}

fn decode_catalog_header(value: &str) -> Result<Value, TargetError> {
    let bytes = decode_base64(value).map_err(|error| {
        invalid(
            SERVICE_CATALOG,
            format!("is not base64 of a Keystone token body or catalog: bad base64 ({error})"),
        )
    })?;
    let json: Value = serde_json::from_slice(&bytes).map_err(|error| {
        invalid(
            SERVICE_CATALOG,
            format!("is not base64 of a Keystone token body or catalog: bad JSON ({error})"),
        )
    })?;
    catalog_list(SERVICE_CATALOG, &json)
}

/// Validate a catalog in any accepted form and keep it as the bare list.
fn catalog_list(field: &str, value: &Value) -> Result<Value, TargetError> {
    let catalog = Catalog::from_value(value)
        .map_err(|error| invalid(field, format!("is invalid: {error}")))?;
    serde_json::to_value(catalog).map_err(|error| invalid(field, error.to_string()))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const TOKEN: &str = "gAAAAABsecret-token-value";
    // A throw-away self-signed certificate (openssl req -x509 -newkey ec).
    const PEM: &str = "-----BEGIN CERTIFICATE-----
MIIBfjCCASOgAwIBAgIUcXyB/h1F8GeWsaYah1IhfdAy5JEwCgYIKoZIzj0EAwIw
FDESMBAGA1UEAwwJYm9yYS10ZXN0MB4XDTI2MTEyMjE2NDgwMFoXDTM2MTExOTE2
NDgwMFowFDESMBAGA1UEAwwJYm9yYS10ZXN0MFkwEwYHKoZIzj0CAQYIKoZIzj0D
AQcDQgAEPXu5Ou24vRw4c2fGd4WryMUa4dENBFdK24zfoyD4j2F4UMdQXUn4zaCS
pS3UpyDZ+krlkeWzAPD4ZSSbgLfKfKNTMFEwHQYDVR0OBBYEFK2h/VwiTOfKGczd
CJFrlaXuxdwTMB8GA1UdIwQYMBaAFK2h/VwiTOfKGczdCJFrlaXuxdwTMA8GA1Ud
EwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDSQAwRgIhAOysOMbmqU6gYwWkMOTtqS5r
QMr4eCbbZ95PZUqvVFyEAiEA1LEjzNYHjFMlaJ5wKe1gd4koZ/bwwqfXXqDS5DUf
mjQ=
-----END CERTIFICATE-----
";

    fn headers(pairs: &[(&'static str, String)]) -> Result<Option<TargetCloud>, TargetError> {
        parse_target_headers(pairs.iter().map(|(name, value)| (*name, value.as_str())))
    }

    fn base() -> Vec<(&'static str, String)> {
        vec![
            (
                "x-target-auth-uri",
                "https://keystone.example.com:5000/v3".into(),
            ),
            ("X-TARGET-AUTH-TOKEN", TOKEN.into()),
        ]
    }

    #[test]
    fn no_target_header_is_the_legacy_mode() {
        assert_eq!(
            headers(&[("Content-Type", "application/json".into())]),
            Ok(None)
        );
    }

    #[test]
    fn auth_uri_and_token_make_a_target() {
        let mut pairs = base();
        pairs.push(("X-Target-Region-Name", "RegionTwo".into()));
        pairs.push(("X-Target-Insecure", "false".into()));
        pairs.push(("X-Target-Project-Id", "p1".into()));
        let target = headers(&pairs).unwrap().unwrap();
        assert_eq!(target.auth_url, "https://keystone.example.com:5000/v3");
        assert_eq!(target.token.expose(), TOKEN);
        assert_eq!(target.region.as_deref(), Some("RegionTwo"));
        assert_eq!(target.project_id.as_deref(), Some("p1"));
        assert!(!target.insecure);
    }

    #[test]
    fn partial_target_headers_name_the_missing_one() {
        let only_uri = headers(&base()[..1]).unwrap_err();
        assert_eq!(
            only_uri.to_string(),
            "X-Target-Auth-Token is required when X-Target-Auth-Uri is set"
        );
        let only_token = headers(&base()[1..]).unwrap_err().to_string();
        assert_eq!(
            only_token,
            "X-Target-Auth-Uri is required when X-Target-Auth-Token is set"
        );
        assert!(!only_token.contains(TOKEN));
        let only_region = headers(&[("X-Target-Region-Name", "R".into())])
            .unwrap_err()
            .to_string();
        assert!(
            only_region.contains("X-Target-Auth-Uri")
                && only_region.contains("X-Target-Region-Name")
        );
    }

    #[test]
    fn an_unknown_target_header_is_rejected() {
        let error = headers(&[("X-Target-Auth-Url", "http://k".into())])
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("X-Target-Auth-Url is not a known target header"),
            "{error}"
        );
    }

    #[test]
    fn insecure_accepts_true_false_in_any_case_only() {
        for (text, expected) in [
            ("True", true),
            ("TRUE", true),
            ("false", false),
            ("False", false),
        ] {
            let mut pairs = base();
            pairs.push(("X-Target-Insecure", text.into()));
            assert_eq!(headers(&pairs).unwrap().unwrap().insecure, expected);
        }
        let mut pairs = base();
        pairs.push(("X-Target-Insecure", "yes".into()));
        assert_eq!(
            headers(&pairs).unwrap_err().to_string(),
            "X-Target-Insecure must be True or False, got 'yes'"
        );
    }

    #[test]
    fn auth_uri_must_be_http_or_https() {
        for bad in ["ftp://k/v3", "keystone:5000", "http://user:pw@k/v3"] {
            let mut pairs = base();
            pairs[0].1 = bad.into();
            let error = headers(&pairs).unwrap_err().to_string();
            assert!(error.starts_with("X-Target-Auth-Uri must"), "{error}");
            assert!(!error.contains("pw@"), "{error}");
        }
        let mut pairs = base();
        pairs[0].1 = "ftp://k/v3".into();
        assert_eq!(
            headers(&pairs).unwrap_err().to_string(),
            "X-Target-Auth-Uri must be an http or https URL, got 'ftp://k/v3'"
        );
    }

    #[test]
    fn ca_cert_must_be_base64_of_pem() {
        let mut pairs = base();
        pairs.push(("X-Target-Ca-Cert", STANDARD.encode(PEM)));
        let target = headers(&pairs).unwrap().unwrap();
        assert_eq!(target.ca_pem.as_deref(), Some(PEM.as_bytes()));
        assert_eq!(
            target.public_view()["ca_cert"]["sha256_fingerprints"]
                .as_array()
                .unwrap()
                .len(),
            1
        );

        for bad in [
            "%%%".to_owned(),
            STANDARD.encode("just text"),
            PEM.to_owned(),
        ] {
            let mut pairs = base();
            pairs.push(("X-Target-Ca-Cert", bad));
            let error = headers(&pairs).unwrap_err().to_string();
            assert!(
                error.starts_with("X-Target-Ca-Cert is not base64 of a PEM certificate bundle: "),
                "{error}"
            );
        }
    }

    #[test]
    fn service_catalog_accepts_token_body_bare_and_list() {
        let list = json!([{"type": "compute", "endpoints": [
            {"interface": "public", "region_id": "R", "url": "http://n/v2.1"}]}]);
        for form in [
            json!({"token": {"catalog": list}}),
            json!({"catalog": list}),
            list.clone(),
        ] {
            let mut pairs = base();
            pairs.push((
                "X-Target-Service-Catalog",
                STANDARD.encode(form.to_string()),
            ));
            let target = headers(&pairs).unwrap().unwrap();
            assert_eq!(target.catalog.as_ref().unwrap()[0]["type"], "compute");
        }
        let mut pairs = base();
        pairs.push((
            "X-Target-Service-Catalog",
            STANDARD.encode("{\"token\": 1}"),
        ));
        let error = headers(&pairs).unwrap_err().to_string();
        assert!(
            error.starts_with("X-Target-Service-Catalog is invalid"),
            "{error}"
        );
    }

    #[test]
    fn errors_never_contain_the_token() {
        let mut pairs = base();
        pairs.push(("X-Target-Insecure", "maybe".into()));
        pairs.push(("X-Target-Ca-Cert", "@@".into()));
        let error = format!("{:?} {}", headers(&pairs), headers(&pairs).unwrap_err());
        assert!(!error.contains(TOKEN), "{error}");
        let mut pairs = base();
        pairs[1].1 = format!("{TOKEN} with space");
        let error = headers(&pairs).unwrap_err().to_string();
        assert!(!error.contains(TOKEN), "{error}");
    }

    #[test]
    fn body_form_reads_clouds_yaml_shapes() {
        let nested = json!({"auth": {"auth_url": "http://k:5000", "token": TOKEN, "project_id": "p"},
                            "region_name": "RegionOne", "cacert": PEM, "insecure": true});
        let target = parse_body_target(Some(&nested)).unwrap().unwrap();
        assert_eq!(target.auth_url, "http://k:5000");
        assert_eq!(target.project_id.as_deref(), Some("p"));
        assert_eq!(target.region.as_deref(), Some("RegionOne"));
        assert!(target.insecure && target.ca_pem.is_some());

        let flat = json!({"auth_url": "https://k/v3", "token": TOKEN});
        assert_eq!(
            parse_body_target(Some(&flat))
                .unwrap()
                .unwrap()
                .token
                .expose(),
            TOKEN
        );
        assert_eq!(parse_body_target(None), Ok(None));
        assert_eq!(parse_body_target(Some(&Value::Null)), Ok(None));
    }

    #[test]
    fn body_form_errors_name_the_field() {
        let error = |value: Value| parse_body_target(Some(&value)).unwrap_err().to_string();
        assert_eq!(
            error(json!({"auth": {"token": TOKEN}})),
            "params.target.auth.auth_url is required when params.target.auth.token is set"
        );
        assert_eq!(
            error(json!({"auth": {"auth_url": "gopher://k"}, "x": 1})),
            "params.target.auth.token is required when params.target.auth.auth_url is set"
        );
        assert_eq!(
            error(json!({"auth": {"auth_url": "gopher://k", "token": TOKEN}})),
            "params.target.auth.auth_url must be an http or https URL, got 'gopher://k'"
        );
        assert_eq!(
            error(json!({"auth_url": "http://k", "token": TOKEN, "insecure": "yes"})),
            "params.target.insecure must be True or False, got 'yes'"
        );
        assert!(
            error(json!({"auth_url": "http://k", "token": TOKEN, "cacert": "nope"}))
                .starts_with("params.target.cacert is not a PEM certificate bundle")
        );
        assert_eq!(error(json!("x")), "params.target must be an object");
    }
}
