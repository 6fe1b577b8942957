//! A string that must never reach a log line: API keys, signing secrets, client secrets.

use std::fmt;

/// A value that must never be printed: `Debug` and `Display` show `[redacted]`. It can be read
/// from configuration (`Deserialize`) but never written (`Serialize` is not implemented), so it
/// cannot slip into a JSON body or an event by accident. Call [`Secret::expose`] only where the
/// value is used.
#[derive(Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_prints_as_redacted_and_exposes_its_value_only_when_asked() {
        let secret = Secret::new("sk_test_123");

        assert_eq!(format!("{secret}"), "[redacted]");
        assert_eq!(format!("{secret:?}"), "[redacted]");
        assert_eq!(secret.expose(), "sk_test_123");
    }
}
