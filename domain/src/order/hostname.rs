//! The hostname a customer gives a new VM.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Longest hostname, in characters (RFC 1035: 253 for a full name).
pub const HOSTNAME_MAX_CHARS: usize = 253;
/// Longest label between dots (RFC 1035).
pub const HOSTNAME_LABEL_MAX_CHARS: usize = 63;

/// A host name by RFC 1123: one or more dot-separated labels of 1 to 63 letters, digits and `-`,
/// neither starting nor ending with `-`; at most 253 characters; the last label not all digits
/// (so it can never be read as an IPv4 address). Case-insensitive, stored lower case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Hostname(String);

/// Which rule a hostname broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HostnameProblem {
    #[error("the hostname is empty")]
    Empty,
    #[error("the hostname is longer than {HOSTNAME_MAX_CHARS} characters")]
    TooLong,
    #[error("a label (the part between dots) is empty or longer than {HOSTNAME_LABEL_MAX_CHARS} characters")]
    BadLabelLength,
    #[error("only letters, digits, '-' and '.' are allowed")]
    BadCharacter,
    #[error("a label must not start or end with '-'")]
    HyphenAtEdge,
    #[error("the last label must not be all digits")]
    NumericTopLabel,
}

impl Hostname {
    /// # Errors
    /// The first [`HostnameProblem`] found.
    pub fn parse(input: &str) -> Result<Self, HostnameProblem> {
        let name = input.to_ascii_lowercase();
        if name.is_empty() {
            return Err(HostnameProblem::Empty);
        }
        if name.len() > HOSTNAME_MAX_CHARS {
            return Err(HostnameProblem::TooLong);
        }
        let labels: Vec<&str> = name.split('.').collect();
        for label in &labels {
            if label.is_empty() || label.len() > HOSTNAME_LABEL_MAX_CHARS {
                return Err(HostnameProblem::BadLabelLength);
            }
            if !label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            {
                return Err(HostnameProblem::BadCharacter);
            }
            if label.starts_with('-') || label.ends_with('-') {
                return Err(HostnameProblem::HyphenAtEdge);
            }
        }
        if labels
            .last()
            .is_some_and(|last| last.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(HostnameProblem::NumericTopLabel);
        }
        Ok(Self(name))
    }

    /// The lower-case name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Hostname {
    type Error = HostnameProblem;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Hostname> for String {
    fn from(value: Hostname) -> Self {
        value.0
    }
}

impl fmt::Display for Hostname {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_hostnames_are_accepted_and_lower_cased() {
        for (input, stored) in [
            ("web-1", "web-1"),
            ("Web-1.Example.COM", "web-1.example.com"),
            ("a", "a"),
            ("1st.example.org", "1st.example.org"),
            ("x.y.z9", "x.y.z9"),
        ] {
            assert_eq!(Hostname::parse(input).map(|h| h.0), Ok(stored.to_owned()));
        }
        assert!(Hostname::parse(&format!("{}.com", "a".repeat(63))).is_ok());
    }

    #[test]
    fn malformed_hostnames_are_refused_with_the_rule_they_break() {
        use HostnameProblem::*;
        let long = ["a".repeat(60).as_str(); 5].join(".");
        for (input, problem) in [
            ("", Empty),
            (long.as_str(), TooLong),
            ("a..b", BadLabelLength),
            (".a", BadLabelLength),
            ("a.", BadLabelLength),
            (&format!("{}.com", "a".repeat(64)), BadLabelLength),
            ("web_1", BadCharacter),
            ("web 1", BadCharacter),
            ("wéb", BadCharacter),
            ("-web", HyphenAtEdge),
            ("web-.example.com", HyphenAtEdge),
            ("10.0.0.1", NumericTopLabel),
            ("host.123", NumericTopLabel),
        ] {
            assert_eq!(Hostname::parse(input), Err(problem), "{input:?}");
        }
    }
}
