use std::fmt;

use serde::{Deserialize, Serialize};

use super::ValueError;

/// Fewest digits after the `+`: the shortest numbers in national plans that E.164 carries.
pub const PHONE_MIN_DIGITS: usize = 8;
/// Most digits after the `+`: the E.164 maximum (ITU-T E.164 §6).
pub const PHONE_MAX_DIGITS: usize = 15;

/// A phone number in E.164 form, stored normalised: `+` then 8 to 15 digits, no separators
/// (`+4915112345678`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Phone(String);

/// Which rule of [`Phone::parse`] an input broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PhoneProblem {
    /// Does not start with `+` and a country code.
    #[error("it must start with + and the country code")]
    MissingPlus,
    /// Contains something other than digits, spaces, dashes and parentheses after the `+`.
    #[error("it may only contain digits after the +")]
    NonDigit,
    /// Fewer than [`PHONE_MIN_DIGITS`] or more than [`PHONE_MAX_DIGITS`] digits.
    #[error("it must have between {min} and {max} digits", min = PHONE_MIN_DIGITS, max = PHONE_MAX_DIGITS)]
    WrongLength,
    /// The country code starts with 0, which no country code does.
    #[error("the country code cannot start with 0")]
    LeadingZero,
}

impl Phone {
    /// Strips spaces, dashes and parentheses, then checks for E.164.
    ///
    /// # Errors
    /// [`ValueError::InvalidPhone`] naming the rule the number breaks.
    pub fn parse(input: &str) -> Result<Self, ValueError> {
        let compact: String = input
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '(' | ')'))
            .collect();
        let Some(digits) = compact.strip_prefix('+') else {
            return Err(ValueError::InvalidPhone(PhoneProblem::MissingPlus));
        };
        if !digits.chars().all(|c| c.is_ascii_digit()) {
            return Err(ValueError::InvalidPhone(PhoneProblem::NonDigit));
        }
        if !(PHONE_MIN_DIGITS..=PHONE_MAX_DIGITS).contains(&digits.len()) {
            return Err(ValueError::InvalidPhone(PhoneProblem::WrongLength));
        }
        if digits.starts_with('0') {
            return Err(ValueError::InvalidPhone(PhoneProblem::LeadingZero));
        }
        Ok(Self(compact))
    }

    /// The normalised number, e.g. `+4915112345678`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Phone {
    type Error = ValueError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Phone> for String {
    fn from(phone: Phone) -> Self {
        phone.0
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn problem(input: &str) -> PhoneProblem {
        match Phone::parse(input) {
            Err(ValueError::InvalidPhone(problem)) => problem,
            other => panic!("expected an invalid phone for {input:?}, got {other:?}"),
        }
    }

    #[test]
    fn a_compact_e164_number_is_accepted_as_given() {
        let phone = Phone::parse("+4915112345678").unwrap();

        assert_eq!(phone.as_str(), "+4915112345678");
    }

    #[test]
    fn spaces_dashes_and_parentheses_are_stripped() {
        let phone = Phone::parse(" +49 (151) 123-456 78 ").unwrap();

        assert_eq!(phone.to_string(), "+4915112345678");
    }

    #[test]
    fn a_number_without_a_plus_is_refused() {
        assert_eq!(problem("004915112345678"), PhoneProblem::MissingPlus);
        assert_eq!(problem(""), PhoneProblem::MissingPlus);
    }

    #[test]
    fn a_number_with_letters_or_dots_is_refused() {
        assert_eq!(problem("+49151CALLME"), PhoneProblem::NonDigit);
        assert_eq!(problem("+49.151.1234.5678"), PhoneProblem::NonDigit);
        assert_eq!(problem("+49+15112345678"), PhoneProblem::NonDigit);
    }

    #[test]
    fn eight_to_fifteen_digits_are_accepted() {
        assert!(Phone::parse("+12345678").is_ok());
        assert!(Phone::parse("+123456789012345").is_ok());
    }

    #[test]
    fn fewer_than_eight_or_more_than_fifteen_digits_are_refused() {
        assert_eq!(problem("+1234567"), PhoneProblem::WrongLength);
        assert_eq!(problem("+1234567890123456"), PhoneProblem::WrongLength);
        assert_eq!(problem("+"), PhoneProblem::WrongLength);
    }

    #[test]
    fn a_country_code_starting_with_zero_is_refused() {
        assert_eq!(problem("+0491511234567"), PhoneProblem::LeadingZero);
    }

    #[test]
    fn deserialising_a_phone_normalises_it_again() {
        let phone: Phone = serde_json::from_str("\"+49 151 1234 5678\"").unwrap();
        let invalid = serde_json::from_str::<Phone>("\"12345\"");

        assert_eq!(phone.as_str(), "+4915112345678");
        assert!(invalid.is_err());
        assert_eq!(serde_json::to_string(&phone).unwrap(), "\"+4915112345678\"");
    }
}
