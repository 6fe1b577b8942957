use super::{EmailProblem, NameProblem, PhoneProblem};
use super::{LEDGER_REFERENCE_MAX_CHARS, PASSWORD_MAX_CHARS, PASSWORD_MIN_CHARS};

/// Why an input was refused. One variant per rule (the email, name and phone variants carry which
/// of their rules failed); tests match variants, the API reports [`ValueError::code`] and the
/// Display message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    /// The email address broke one of the rules of [`crate::Email::parse`].
    #[error("invalid email address: {0}")]
    InvalidEmail(EmailProblem),
    /// The name broke one of the rules of [`crate::PersonName::parse`].
    #[error("invalid name: {0}")]
    InvalidName(NameProblem),
    /// The phone number broke one of the rules of [`crate::Phone::parse`].
    #[error("invalid phone number: {0}")]
    InvalidPhone(PhoneProblem),
    /// The password has fewer than [`PASSWORD_MIN_CHARS`] characters.
    #[error("the password must be at least {min} characters long", min = PASSWORD_MIN_CHARS)]
    PasswordTooShort,
    /// The password has more than [`PASSWORD_MAX_CHARS`] characters.
    #[error("the password must be at most {max} characters long", max = PASSWORD_MAX_CHARS)]
    PasswordTooLong,
    /// The password is on the built-in list of commonly used passwords.
    #[error("the password is too common; choose one that is harder to guess")]
    PasswordTooCommon,
    /// The password contains the local part of the account's email address.
    #[error("the password must not contain your email address")]
    PasswordContainsEmail,
    /// The password is one character repeated.
    #[error("the password must not be a single repeated character")]
    PasswordRepetitive,
    /// The role name is not one of [`crate::Role::ALL`].
    #[error("unknown role: expected one of customer, support, billing, admin, auditor")]
    UnknownRole,
    /// Not an assigned ISO 3166-1 alpha-2 country code.
    #[error("unknown country: expected an ISO 3166-1 alpha-2 code such as DE or US")]
    InvalidCountry,
    /// The identity document number has the wrong length or characters.
    #[error("invalid national id: 4 to 64 letters, digits, '-', '/', '.' or single spaces")]
    InvalidNationalId,
    /// The reason is empty, too long or holds control characters.
    #[error("invalid reason: 1 to 500 characters of text")]
    InvalidReason,
    /// The ledger reference broke the rules of [`crate::LedgerReference::parse`].
    #[error("invalid reference: expected 1 to {max} printable ASCII characters without spaces", max = LEDGER_REFERENCE_MAX_CHARS)]
    InvalidLedgerReference,
}

impl ValueError {
    /// Stable machine-readable code for API error bodies. Never change an existing code: clients
    /// branch on it.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidEmail(_) => "invalid_email",
            Self::InvalidName(_) => "invalid_name",
            Self::InvalidPhone(_) => "invalid_phone",
            Self::PasswordTooShort => "password_too_short",
            Self::PasswordTooLong => "password_too_long",
            Self::PasswordTooCommon => "password_too_common",
            Self::PasswordContainsEmail => "password_contains_email",
            Self::PasswordRepetitive => "password_repetitive",
            Self::UnknownRole => "unknown_role",
            Self::InvalidCountry => "invalid_country",
            Self::InvalidNationalId => "invalid_national_id",
            Self::InvalidReason => "invalid_reason",
            Self::InvalidLedgerReference => "invalid_reference",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_error_has_its_pinned_code() {
        let cases = [
            (
                ValueError::InvalidEmail(EmailProblem::Empty),
                "invalid_email",
            ),
            (ValueError::InvalidName(NameProblem::Empty), "invalid_name"),
            (
                ValueError::InvalidPhone(PhoneProblem::MissingPlus),
                "invalid_phone",
            ),
            (ValueError::PasswordTooShort, "password_too_short"),
            (ValueError::PasswordTooLong, "password_too_long"),
            (ValueError::PasswordTooCommon, "password_too_common"),
            (ValueError::PasswordContainsEmail, "password_contains_email"),
            (ValueError::PasswordRepetitive, "password_repetitive"),
            (ValueError::UnknownRole, "unknown_role"),
            (ValueError::InvalidCountry, "invalid_country"),
            (ValueError::InvalidNationalId, "invalid_national_id"),
            (ValueError::InvalidReason, "invalid_reason"),
            (ValueError::InvalidLedgerReference, "invalid_reference"),
        ];

        for (error, code) in cases {
            assert_eq!(error.code(), code, "{error:?}");
        }
    }

    #[test]
    fn messages_name_the_limits_they_enforce() {
        let short = ValueError::PasswordTooShort.to_string();
        let long = ValueError::PasswordTooLong.to_string();
        let email = ValueError::InvalidEmail(EmailProblem::DomainWithoutDot).to_string();

        assert!(short.contains("10"), "{short}");
        assert!(long.contains("128"), "{long}");
        assert!(email.starts_with("invalid email address: "), "{email}");
    }
}
