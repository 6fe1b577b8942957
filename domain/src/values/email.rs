use std::fmt;

use serde::{Deserialize, Serialize};

use super::ValueError;

/// Longest accepted address, in characters: the practical limit of SMTP paths (RFC 5321 §4.5.3.1).
pub const EMAIL_MAX_CHARS: usize = 254;
/// Longest accepted local part (before the `@`), in characters (RFC 5321 §4.5.3.1.1).
pub const EMAIL_LOCAL_PART_MAX_CHARS: usize = 64;
/// Longest DNS label, in characters (RFC 1035 §2.3.4).
const DOMAIN_LABEL_MAX_CHARS: usize = 63;
/// Shortest top-level domain: every real TLD has at least two letters.
const TLD_MIN_CHARS: usize = 2;

/// A syntactically plausible email address, trimmed and lowercased as a whole so that two
/// spellings of the same address compare equal (and collide in uniqueness checks).
///
/// Deliberately stricter than RFC 5322: no quoted local parts, no IP-literal domains, ASCII domains
/// only (internationalised domains must arrive in their `xn--` form).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

/// Which rule of [`Email::parse`] an input broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EmailProblem {
    /// Nothing but whitespace was given.
    #[error("it is empty")]
    Empty,
    /// Longer than [`EMAIL_MAX_CHARS`].
    #[error("it is longer than {max} characters", max = EMAIL_MAX_CHARS)]
    TooLong,
    /// Zero or several `@`.
    #[error("it must contain exactly one @")]
    AtSignCount,
    /// Nothing before the `@`.
    #[error("the part before the @ is empty")]
    EmptyLocalPart,
    /// The part before the `@` is longer than [`EMAIL_LOCAL_PART_MAX_CHARS`].
    #[error("the part before the @ is longer than {max} characters", max = EMAIL_LOCAL_PART_MAX_CHARS)]
    LocalPartTooLong,
    /// The part before the `@` contains whitespace or a control character.
    #[error("the part before the @ contains a space or control character")]
    LocalPartInvalidCharacter,
    /// The domain has no dot.
    #[error("the domain must contain a dot")]
    DomainWithoutDot,
    /// A domain label is empty, too long, uses characters other than a-z, 0-9 and `-`, or starts
    /// or ends with `-`.
    #[error("the domain has an invalid label")]
    InvalidDomainLabel,
    /// The last label is shorter than two characters or not alphabetic.
    #[error("the top-level domain must be at least two letters")]
    InvalidTopLevelDomain,
}

impl Email {
    /// Trims, lowercases and checks an address.
    ///
    /// # Errors
    /// [`ValueError::InvalidEmail`] naming the first rule the address breaks.
    pub fn parse(input: &str) -> Result<Self, ValueError> {
        let address = input.trim().to_lowercase();
        check(&address).map_err(ValueError::InvalidEmail)?;
        Ok(Self(address))
    }

    /// The normalised address.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part before the `@` (already lowercase).
    pub fn local_part(&self) -> &str {
        self.0.split_once('@').map_or("", |(local, _)| local)
    }

    /// The part after the `@`.
    pub fn domain(&self) -> &str {
        self.0.split_once('@').map_or("", |(_, domain)| domain)
    }
}

fn check(address: &str) -> Result<(), EmailProblem> {
    if address.is_empty() {
        return Err(EmailProblem::Empty);
    }
    if address.chars().count() > EMAIL_MAX_CHARS {
        return Err(EmailProblem::TooLong);
    }
    let (local, domain) = match address.split_once('@') {
        Some((local, domain)) if !domain.contains('@') => (local, domain),
        _ => return Err(EmailProblem::AtSignCount),
    };
    if local.is_empty() {
        return Err(EmailProblem::EmptyLocalPart);
    }
    if local.chars().count() > EMAIL_LOCAL_PART_MAX_CHARS {
        return Err(EmailProblem::LocalPartTooLong);
    }
    if local.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(EmailProblem::LocalPartInvalidCharacter);
    }
    let labels: Vec<&str> = domain.split('.').collect();
    let Some((tld, _)) = labels.split_last().filter(|_| labels.len() >= 2) else {
        return Err(EmailProblem::DomainWithoutDot);
    };
    if !labels.iter().all(|label| is_valid_label(label)) {
        return Err(EmailProblem::InvalidDomainLabel);
    }
    if tld.len() < TLD_MIN_CHARS || !tld.chars().all(|c| c.is_ascii_alphabetic()) {
        return Err(EmailProblem::InvalidTopLevelDomain);
    }
    Ok(())
}

fn is_valid_label(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= DOMAIN_LABEL_MAX_CHARS
        && !label.starts_with('-')
        && !label.ends_with('-')
        && label
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Email {
    type Error = ValueError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Email> for String {
    fn from(email: Email) -> Self {
        email.0
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn problem(input: &str) -> EmailProblem {
        match Email::parse(input) {
            Err(ValueError::InvalidEmail(problem)) => problem,
            other => panic!("expected an invalid email for {input:?}, got {other:?}"),
        }
    }

    #[test]
    fn a_plain_address_is_accepted_as_given() {
        let email = Email::parse("ada@example.com").unwrap();

        assert_eq!(email.as_str(), "ada@example.com");
        assert_eq!(email.local_part(), "ada");
        assert_eq!(email.domain(), "example.com");
    }

    #[test]
    fn an_uppercase_address_is_lowercased_as_a_whole() {
        let email = Email::parse("Ada.Lovelace+Notes@Example.CO.UK").unwrap();

        assert_eq!(email.as_str(), "ada.lovelace+notes@example.co.uk");
    }

    #[test]
    fn surrounding_whitespace_is_trimmed() {
        let email = Email::parse("  \tada@example.com \n").unwrap();

        assert_eq!(email.to_string(), "ada@example.com");
    }

    #[test]
    fn a_blank_address_is_refused_as_empty() {
        assert_eq!(problem("   "), EmailProblem::Empty);
    }

    #[test]
    fn an_address_of_254_characters_is_accepted_and_255_is_refused() {
        let domain = format!(
            "{}.{}.{}.com",
            "a".repeat(63),
            "b".repeat(63),
            "c".repeat(63)
        );
        let fits = format!(
            "{}@{domain}",
            "x".repeat(EMAIL_MAX_CHARS - 1 - domain.len())
        );
        let too_long = format!("x{fits}");

        assert_eq!(fits.len(), 254);
        assert!(Email::parse(&fits).is_ok());
        assert_eq!(problem(&too_long), EmailProblem::TooLong);
    }

    #[test]
    fn an_address_without_an_at_sign_is_refused() {
        assert_eq!(problem("ada.example.com"), EmailProblem::AtSignCount);
    }

    #[test]
    fn an_address_with_two_at_signs_is_refused() {
        assert_eq!(problem("ada@home@example.com"), EmailProblem::AtSignCount);
    }

    #[test]
    fn an_empty_local_part_is_refused() {
        assert_eq!(problem("@example.com"), EmailProblem::EmptyLocalPart);
    }

    #[test]
    fn a_local_part_of_64_characters_is_accepted_and_65_is_refused() {
        let fits = format!("{}@example.com", "a".repeat(64));
        let too_long = format!("{}@example.com", "a".repeat(65));

        assert!(Email::parse(&fits).is_ok());
        assert_eq!(problem(&too_long), EmailProblem::LocalPartTooLong);
    }

    #[test]
    fn a_local_part_with_a_space_or_control_character_is_refused() {
        assert_eq!(
            problem("ada lovelace@example.com"),
            EmailProblem::LocalPartInvalidCharacter
        );
        assert_eq!(
            problem("ada\u{7}@example.com"),
            EmailProblem::LocalPartInvalidCharacter
        );
    }

    #[test]
    fn a_unicode_local_part_is_accepted() {
        let email = Email::parse("JÖRG@example.de").unwrap();

        assert_eq!(email.local_part(), "jörg");
    }

    #[test]
    fn a_domain_without_a_dot_is_refused() {
        assert_eq!(problem("ada@localhost"), EmailProblem::DomainWithoutDot);
        assert_eq!(problem("ada@"), EmailProblem::DomainWithoutDot);
    }

    #[test]
    fn a_domain_label_starting_or_ending_with_a_hyphen_is_refused() {
        assert_eq!(
            problem("ada@-example.com"),
            EmailProblem::InvalidDomainLabel
        );
        assert_eq!(
            problem("ada@example-.com"),
            EmailProblem::InvalidDomainLabel
        );
    }

    #[test]
    fn a_hyphen_inside_a_domain_label_is_accepted() {
        assert!(Email::parse("ada@my-example.com").is_ok());
    }

    #[test]
    fn a_domain_label_with_other_characters_is_refused() {
        assert_eq!(
            problem("ada@exa_mple.com"),
            EmailProblem::InvalidDomainLabel
        );
        assert_eq!(problem("ada@exämple.com"), EmailProblem::InvalidDomainLabel);
        assert_eq!(
            problem("ada@exa mple.com"),
            EmailProblem::InvalidDomainLabel
        );
    }

    #[test]
    fn an_empty_domain_label_is_refused() {
        assert_eq!(
            problem("ada@example..com"),
            EmailProblem::InvalidDomainLabel
        );
        assert_eq!(
            problem("ada@.example.com"),
            EmailProblem::InvalidDomainLabel
        );
        assert_eq!(
            problem("ada@example.com."),
            EmailProblem::InvalidDomainLabel
        );
    }

    #[test]
    fn a_domain_label_longer_than_63_characters_is_refused() {
        let input = format!("ada@{}.com", "a".repeat(64));

        assert_eq!(problem(&input), EmailProblem::InvalidDomainLabel);
    }

    #[test]
    fn a_one_letter_top_level_domain_is_refused() {
        assert_eq!(
            problem("ada@example.c"),
            EmailProblem::InvalidTopLevelDomain
        );
    }

    #[test]
    fn a_numeric_top_level_domain_is_refused() {
        assert_eq!(
            problem("ada@192.168.0.1"),
            EmailProblem::InvalidTopLevelDomain
        );
        assert_eq!(
            problem("ada@example.c0m"),
            EmailProblem::InvalidTopLevelDomain
        );
    }

    #[test]
    fn an_email_serialises_as_its_normalised_string() {
        let email = Email::parse("Ada@Example.com").unwrap();

        let json = serde_json::to_string(&email).unwrap();

        assert_eq!(json, "\"ada@example.com\"");
    }

    #[test]
    fn deserialising_an_email_normalises_it_again() {
        let email: Email = serde_json::from_str("\" ADA@EXAMPLE.COM \"").unwrap();

        assert_eq!(email.as_str(), "ada@example.com");
    }

    #[test]
    fn deserialising_an_invalid_email_fails() {
        let result = serde_json::from_str::<Email>("\"not-an-email\"");

        assert!(result.is_err());
    }
}
