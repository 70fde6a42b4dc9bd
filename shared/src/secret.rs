//! A string secret (token, password, trust id, application-credential
//! secret) that cannot leak by accident.
//!
//! `Debug` and `Display` print `***`; the text is zeroized when dropped
//! (it lives in a `secrecy::SecretString`); there is no `Serialize`, so a
//! secret cannot land in an API response or a stored context without going
//! through [`crate::seal`] first. The one way to read it is
//! [`Secret::expose`], which makes every use greppable.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};

/// A string secret whose `Debug`/`Display` print `***`.
#[derive(Clone)]
pub struct Secret(SecretString);

impl Secret {
    /// Wrap a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(SecretString::from(value.into()))
    }

    /// The secret text, for the one place that must send it (an HTTP
    /// header, the sealer). Never format it into a message.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// Whether the secret is the empty string (an empty token is as good
    /// as a missing one).
    pub fn is_empty(&self) -> bool {
        self.expose().is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self::new(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self::new(value)
    }
}

/// Comparing secrets is needed in tests and for "is this the same token"
/// checks; it is not constant-time, so do not use it to check a guess.
impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        self.expose() == other.expose()
    }
}

impl Eq for Secret {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_hide_the_value() {
        let secret = Secret::new("gAAAAAB-very-secret");
        assert_eq!(format!("{secret:?}"), "***");
        assert_eq!(format!("{secret}"), "***");
        assert_eq!(format!("{:?}", Some(secret.clone())), "Some(***)");
        assert_eq!(secret.expose(), "gAAAAAB-very-secret");
    }

    #[test]
    fn empty_secret_is_detected() {
        assert!(Secret::new("").is_empty());
        assert!(!Secret::new("x").is_empty());
    }
}
