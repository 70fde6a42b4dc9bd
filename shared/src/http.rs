//! Outbound HTTP clients. Every reqwest client in bora is built here, so
//! that the TLS stack is the same everywhere: rustls on ring, nothing else.

use std::sync::Once;

/// Install ring as rustls' process-wide crypto provider (once; later calls
/// do nothing). reqwest is built with `rustls-no-provider`, so a client
/// cannot be built before this ran.
pub fn ensure_crypto_provider() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        // An error means another provider is already installed: fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// A client builder on rustls with the platform's roots.
pub fn client_builder() -> reqwest::ClientBuilder {
    ensure_crypto_provider();
    reqwest::Client::builder()
}
