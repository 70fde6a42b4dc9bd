//! Outbound policy for URLs a caller supplies (a target's Keystone URL and
//! the endpoints of its catalog).
//!
//! A target URL comes from whoever calls the API, so without a policy bora
//! could be made to fetch instance metadata or poke at services on its own
//! network (SSRF). Rules, in order:
//! 1. only `http` and `https`;
//! 2. link-local and instance-metadata addresses (169.254.0.0/16, fe80::/10,
//!    fd00:ec2::254) are always refused, whatever the configuration;
//! 3. an address inside a CIDR of `BORA_TARGET_ALLOW_CIDRS` is allowed;
//! 4. other non-global addresses (loopback, private, unique-local,
//!    unspecified, shared, documentation, multicast, ...) are refused;
//! 5. public addresses are allowed.
//!
//! The host is resolved and every address must pass. To defeat DNS
//! rebinding (a name that resolves to a public address for the check and to
//! a private one for the connection), [`CheckedUrl::pin`] makes a client
//! connect only to the checked addresses.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use ipnet::IpNet;
use reqwest::Url;

/// Environment variable: comma-separated CIDRs that target URLs may reach
/// even though they are not public (e.g. `127.0.0.0/8,::1/128` in tests).
pub const ALLOW_CIDRS_VAR: &str = "BORA_TARGET_ALLOW_CIDRS";
/// Environment variable: `true` lets a target ask for TLS without
/// verification (`X-Target-Insecure: True`); default false.
pub const ALLOW_INSECURE_VAR: &str = "BORA_ALLOW_INSECURE_TARGETS";

/// Which addresses caller-supplied URLs may reach.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutboundPolicy {
    allowed: Vec<IpNet>,
    allow_insecure: bool,
}

/// Why a URL is refused, or the policy could not be configured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// The URL's scheme is not http or https. Caller's fault.
    #[error("refusing {url}: scheme '{scheme}' is not http or https")]
    Scheme {
        /// The URL (without user info).
        url: String,
        /// Its scheme.
        scheme: String,
    },
    /// The URL has no host, or it does not parse. Caller's fault.
    #[error("refusing {url}: {reason}")]
    BadUrl {
        /// The URL as given (without user info when it parsed).
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// The host does not resolve. Caller's fault, or DNS trouble: a retry
    /// may help.
    #[error("refusing {url}: cannot resolve '{host}': {reason}")]
    Resolve {
        /// The URL.
        url: String,
        /// The host name.
        host: String,
        /// The resolver's error.
        reason: String,
    },
    /// The host resolves to an address the policy refuses. Caller's fault
    /// (or the operator's, if the address should be allowed).
    #[error("refusing {url}: '{host}' resolves to {address}, {reason}")]
    Address {
        /// The URL.
        url: String,
        /// The host name.
        host: String,
        /// The refused address.
        address: IpAddr,
        /// Which rule refused it and how to allow it, if it can be.
        reason: String,
    },
    /// Insecure TLS was asked for and the policy does not allow it.
    /// Caller's fault (give the CA instead) or operator's choice.
    #[error(
        "refusing insecure TLS to {url}: insecure targets are not allowed here \
         (give the CA certificate instead, or set {ALLOW_INSECURE_VAR}=true)"
    )]
    Insecure {
        /// The URL.
        url: String,
    },
    /// The policy's environment is malformed. Operator's fault.
    #[error("{variable}: {reason}")]
    Config {
        /// The variable.
        variable: &'static str,
        /// What is wrong.
        reason: String,
    },
}

/// A URL that passed the policy, with the addresses it was checked at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedUrl {
    /// The URL.
    pub url: Url,
    /// The addresses the host resolved to, all allowed.
    pub addresses: Vec<SocketAddr>,
}

impl CheckedUrl {
    /// Make `builder` connect to this URL's host only at the checked
    /// addresses (a later DNS answer cannot redirect it). Hosts given as IP
    /// literals need no pinning.
    pub fn pin(&self, builder: reqwest::ClientBuilder) -> reqwest::ClientBuilder {
        match self.url.host() {
            Some(url::Host::Domain(domain)) => builder.resolve_to_addrs(domain, &self.addresses),
            _ => builder,
        }
    }
}

/// A URL for messages: without user info (it may carry a password).
pub fn display_url(url: &Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.to_string()
}

/// Addresses that are never reachable: link-local (which includes the
/// 169.254.169.254 metadata service) and AWS's IPv6 metadata address.
fn always_refused(address: IpAddr) -> bool {
    match address {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => {
            (v6.segments()[0] & 0xffc0) == 0xfe80
                || v6 == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)
        }
    }
}

/// Why an address is not public, or None when it is.
fn non_global_reason(address: IpAddr) -> Option<&'static str> {
    match address {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            if v4.is_loopback() {
                Some("a loopback address")
            } else if v4.is_private() {
                Some("a private address")
            } else if v4.is_unspecified() || a == 0 {
                Some("an unspecified address")
            } else if a == 100 && (64..128).contains(&b) {
                Some("a shared (carrier-grade NAT) address")
            } else if v4.is_broadcast() || v4.is_multicast() || a >= 240 {
                Some("a broadcast, multicast or reserved address")
            } else if v4.is_documentation()
                || (a == 192 && b == 0 && v4.octets()[2] == 0)
                || (a == 198 && (18..20).contains(&b))
            {
                Some("a documentation, benchmarking or protocol address")
            } else {
                None
            }
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            if v6.is_loopback() {
                Some("a loopback address")
            } else if v6.is_unspecified() {
                Some("an unspecified address")
            } else if (first & 0xfe00) == 0xfc00 {
                Some("a private (unique local) address")
            } else if v6.is_multicast() {
                Some("a multicast address")
            } else if first == 0x2001 && v6.segments()[1] == 0xdb8 {
                Some("a documentation address")
            } else {
                None
            }
        }
    }
}

/// IPv4-mapped IPv6 (`::ffff:10.0.0.1`) is judged as the IPv4 address.
fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(address),
        v4 => v4,
    }
}

impl OutboundPolicy {
    /// A policy allowing `allowed` non-public networks (and insecure TLS
    /// when `allow_insecure`).
    pub fn new(allowed: Vec<IpNet>, allow_insecure: bool) -> Self {
        Self {
            allowed,
            allow_insecure,
        }
    }

    /// Read [`ALLOW_CIDRS_VAR`] and [`ALLOW_INSECURE_VAR`]; unset means the
    /// strict default (public addresses only, no insecure TLS).
    pub fn from_env() -> Result<Self, PolicyError> {
        Self::from_values(
            std::env::var(ALLOW_CIDRS_VAR).ok().as_deref(),
            std::env::var(ALLOW_INSECURE_VAR).ok().as_deref(),
        )
    }

    /// [`OutboundPolicy::from_env`] on given values (testable without
    /// touching the process environment).
    pub fn from_values(cidrs: Option<&str>, insecure: Option<&str>) -> Result<Self, PolicyError> {
        let mut allowed = Vec::new();
        for part in cidrs
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            let net = part.parse::<IpNet>().map_err(|_| PolicyError::Config {
                variable: ALLOW_CIDRS_VAR,
                reason: format!("'{part}' is not a CIDR such as 127.0.0.0/8 or ::1/128"),
            })?;
            allowed.push(net);
        }
        let allow_insecure = match insecure.map(str::trim) {
            None | Some("") => false,
            Some(text) if text.eq_ignore_ascii_case("true") => true,
            Some(text) if text.eq_ignore_ascii_case("false") => false,
            Some(text) => {
                return Err(PolicyError::Config {
                    variable: ALLOW_INSECURE_VAR,
                    reason: format!("must be true or false, got '{text}'"),
                });
            }
        };
        Ok(Self::new(allowed, allow_insecure))
    }

    /// Whether targets may ask for TLS without verification.
    pub fn allows_insecure(&self) -> bool {
        self.allow_insecure
    }

    /// Check one address; the error is the reason for the message.
    pub fn check_address(&self, address: IpAddr) -> Result<(), String> {
        let address = canonical(address);
        if always_refused(address) {
            return Err("a link-local or instance-metadata address, which is never allowed".into());
        }
        if self.allowed.iter().any(|net| net.contains(&address)) {
            return Ok(());
        }
        match non_global_reason(address) {
            Some(reason) => Err(format!("{reason}; allow it with {ALLOW_CIDRS_VAR}")),
            None => Ok(()),
        }
    }

    /// Check a URL: scheme, then every address its host resolves to.
    pub async fn check(&self, url: &Url) -> Result<CheckedUrl, PolicyError> {
        let shown = display_url(url);
        if !matches!(url.scheme(), "http" | "https") {
            return Err(PolicyError::Scheme {
                url: shown,
                scheme: url.scheme().to_owned(),
            });
        }
        let (Some(host), Some(port)) = (url.host(), url.port_or_known_default()) else {
            return Err(PolicyError::BadUrl {
                url: shown,
                reason: "the URL has no host".into(),
            });
        };
        let addresses: Vec<SocketAddr> = match host {
            url::Host::Ipv4(v4) => vec![SocketAddr::new(IpAddr::V4(v4), port)],
            url::Host::Ipv6(v6) => vec![SocketAddr::new(IpAddr::V6(v6), port)],
            url::Host::Domain(domain) => tokio::net::lookup_host((domain, port))
                .await
                .map_err(|error| PolicyError::Resolve {
                    url: shown.clone(),
                    host: domain.to_owned(),
                    reason: error.to_string(),
                })?
                .collect(),
        };
        if addresses.is_empty() {
            return Err(PolicyError::Resolve {
                url: shown,
                host: host.to_string(),
                reason: "no addresses".into(),
            });
        }
        for address in &addresses {
            self.check_address(address.ip())
                .map_err(|reason| PolicyError::Address {
                    url: shown.clone(),
                    host: host.to_string(),
                    address: address.ip(),
                    reason,
                })?;
        }
        Ok(CheckedUrl {
            url: url.clone(),
            addresses,
        })
    }

    /// Refuse insecure TLS unless allowed.
    pub fn check_insecure(&self, url: &Url) -> Result<(), PolicyError> {
        if self.allow_insecure {
            Ok(())
        } else {
            Err(PolicyError::Insecure {
                url: display_url(url),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strict() -> OutboundPolicy {
        OutboundPolicy::default()
    }

    fn loopback_allowed() -> OutboundPolicy {
        OutboundPolicy::from_values(Some("127.0.0.0/8, ::1/128"), Some("TRUE")).unwrap()
    }

    fn url(text: &str) -> Url {
        Url::parse(text).unwrap()
    }

    #[tokio::test]
    async fn only_http_and_https_are_allowed() {
        let error = strict().check(&url("ftp://8.8.8.8/x")).await.unwrap_err();
        assert_eq!(
            error.to_string(),
            "refusing ftp://8.8.8.8/x: scheme 'ftp' is not http or https"
        );
        assert!(strict().check(&url("https://8.8.8.8/v3")).await.is_ok());
    }

    #[tokio::test]
    async fn metadata_and_link_local_are_refused_even_when_allowed() {
        let everything = OutboundPolicy::from_values(Some("0.0.0.0/0,::/0"), None).unwrap();
        for text in [
            "http://169.254.169.254/latest",
            "http://[fe80::1]/",
            "http://[fd00:ec2::254]/",
            "http://[::ffff:169.254.169.254]/",
        ] {
            let error = everything.check(&url(text)).await.unwrap_err().to_string();
            assert!(error.contains("never allowed"), "{text}: {error}");
        }
    }

    #[tokio::test]
    async fn loopback_and_private_are_refused_unless_allowed() {
        for text in [
            "http://127.0.0.1:5000/v3",
            "http://[::1]/",
            "http://10.1.2.3/",
            "http://172.16.0.1/",
            "http://192.168.1.1/",
            "http://[fd12::1]/",
            "http://0.0.0.0/",
            "http://100.64.0.1/",
        ] {
            let error = strict().check(&url(text)).await.unwrap_err().to_string();
            assert!(error.starts_with(&format!("refusing {text}")), "{error}");
            assert!(error.contains(ALLOW_CIDRS_VAR), "{error}");
        }
        assert!(
            loopback_allowed()
                .check(&url("http://127.0.0.1:5000/v3"))
                .await
                .is_ok()
        );
        assert!(
            loopback_allowed()
                .check(&url("http://[::1]:5000/v3"))
                .await
                .is_ok()
        );
        assert!(
            loopback_allowed()
                .check(&url("http://10.0.0.1/"))
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn a_name_is_judged_by_the_addresses_it_resolves_to() {
        let error = strict()
            .check(&url("http://localhost:5000/v3"))
            .await
            .unwrap_err();
        assert!(matches!(error, PolicyError::Address { .. }), "{error}");
        let checked = loopback_allowed()
            .check(&url("http://localhost:5000/v3"))
            .await
            .unwrap();
        assert!(
            checked
                .addresses
                .iter()
                .all(|a| a.ip().is_loopback() && a.port() == 5000)
        );
    }

    #[tokio::test]
    async fn a_pinned_client_connects_to_the_checked_address_without_dns() {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        // GIVEN a local HTTP server and a name that no DNS resolves
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut buffer = [0u8; 1024];
            let _ = socket.read(&mut buffer).await;
            let _ = socket
                .write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-length: 6\r\nconnection: close\r\n\r\npinned",
                )
                .await;
        });
        let checked = CheckedUrl {
            url: url(&format!(
                "http://keystone.bora-test.invalid:{}/v3",
                address.port()
            )),
            addresses: vec![address],
        };
        // WHEN a client pinned to the checked address fetches the URL
        let client = checked
            .pin(crate::http::client_builder().no_proxy())
            .build()
            .unwrap();
        let body = client
            .get(checked.url.clone())
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        // THEN it reached the checked address, not whatever DNS would say.
        assert_eq!(body, "pinned");
    }

    #[test]
    fn public_addresses_are_allowed() {
        for address in ["8.8.8.8", "2606:4700::1111", "1.1.1.1"] {
            assert!(
                strict().check_address(address.parse().unwrap()).is_ok(),
                "{address}"
            );
        }
    }

    #[test]
    fn insecure_needs_the_policy_flag() {
        let target = url("https://user:pw@k.example.com/v3");
        let error = strict().check_insecure(&target).unwrap_err().to_string();
        assert!(
            error.contains("https://k.example.com/v3") && !error.contains("pw"),
            "{error}"
        );
        assert!(loopback_allowed().check_insecure(&target).is_ok());
    }

    #[test]
    fn malformed_environment_names_the_variable() {
        let error = OutboundPolicy::from_values(Some("127.0.0.1/33"), None)
            .unwrap_err()
            .to_string();
        assert!(error.starts_with(ALLOW_CIDRS_VAR), "{error}");
        let error = OutboundPolicy::from_values(None, Some("yes"))
            .unwrap_err()
            .to_string();
        assert!(error.starts_with(ALLOW_INSECURE_VAR), "{error}");
    }
}
