use super::{Email, ValueError};

/// Fewest characters a password may have (NIST SP 800-63B asks for at least 8; we ask for 10).
pub const PASSWORD_MIN_CHARS: usize = 10;
/// Most characters a password may have: long enough for passphrases and password managers, short
/// enough that hashing an attacker's input stays cheap.
pub const PASSWORD_MAX_CHARS: usize = 128;
/// An email local part shorter than this (`"al"`) is too likely to appear in a password by chance
/// to be refused for it.
pub const PASSWORD_EMAIL_LOCAL_PART_MIN_CHARS: usize = 3;

/// Passwords at the top of public breach lists that also meet the length rule (shorter ones are
/// already refused by [`PASSWORD_MIN_CHARS`]). Lowercase; compared case-insensitively.
const COMMON_PASSWORDS: &[&str] = &[
    "0123456789",
    "1234567890",
    "12345678910",
    "1234567890a",
    "123456789a",
    "1q2w3e4r5t",
    "1qaz2wsx3edc",
    "abc1234567",
    "abcdefghij",
    "admin12345",
    "administrator",
    "asdfghjkl1",
    "baseball123",
    "changeme123",
    "dragon1234",
    "football123",
    "iloveyou12",
    "iloveyou123",
    "letmein123",
    "monkey1234",
    "passw0rd123",
    "password12",
    "password123",
    "password1234",
    "p@ssw0rd123",
    "princess123",
    "qwerty1234",
    "qwerty12345",
    "qwertyuiop",
    "sunshine123",
    "welcome123",
    "welcome1234",
    "zxcvbnm123",
];

/// Checks a candidate password against the policy. Pure: the plaintext is only read here, never
/// stored, and never enters a command or an event (those carry the hash).
///
/// Rules, in the order they are checked: at least [`PASSWORD_MIN_CHARS`] and at most
/// [`PASSWORD_MAX_CHARS`] characters (not bytes); not a single repeated character; not containing
/// the email's local part (case-insensitive) when that is at least
/// [`PASSWORD_EMAIL_LOCAL_PART_MIN_CHARS`] long; not on a built-in list of common passwords.
///
/// # Errors
/// The [`ValueError`] of the first rule the password breaks.
pub fn check_password_strength(password: &str, email: Option<&Email>) -> Result<(), ValueError> {
    let length = password.chars().count();
    if length < PASSWORD_MIN_CHARS {
        return Err(ValueError::PasswordTooShort);
    }
    if length > PASSWORD_MAX_CHARS {
        return Err(ValueError::PasswordTooLong);
    }
    let mut chars = password.chars();
    if let Some(first) = chars.next() {
        if chars.all(|c| c == first) {
            return Err(ValueError::PasswordRepetitive);
        }
    }
    let lowered = password.to_lowercase();
    if let Some(email) = email {
        // `Email` is already lowercase, so this is a case-insensitive comparison.
        let local = email.local_part();
        if local.chars().count() >= PASSWORD_EMAIL_LOCAL_PART_MIN_CHARS && lowered.contains(local) {
            return Err(ValueError::PasswordContainsEmail);
        }
    }
    if COMMON_PASSWORDS.contains(&lowered.as_str()) {
        return Err(ValueError::PasswordTooCommon);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    const GOOD: &str = "correct horse battery";

    fn email(address: &str) -> Email {
        Email::parse(address).unwrap()
    }

    #[test]
    fn a_long_uncommon_password_is_accepted() {
        let result = check_password_strength(GOOD, Some(&email("ada@example.com")));

        assert_eq!(result, Ok(()));
    }

    #[test]
    fn a_password_of_nine_characters_is_refused_as_too_short() {
        assert_eq!(
            check_password_strength("tr0ub4dor", None),
            Err(ValueError::PasswordTooShort)
        );
    }

    #[test]
    fn a_password_of_ten_characters_is_accepted() {
        assert_eq!(check_password_strength("tr0ub4dor&", None), Ok(()));
    }

    #[test]
    fn password_length_counts_characters_not_bytes() {
        // Five two-byte characters: ten bytes but five characters.
        let short = "éàüöß";
        // 128 characters but 256 bytes.
        let long_enough = "éà".repeat(64);

        assert_eq!(
            check_password_strength(short, None),
            Err(ValueError::PasswordTooShort)
        );
        assert_eq!(check_password_strength(&long_enough, None), Ok(()));
    }

    #[test]
    fn a_password_of_129_characters_is_refused_as_too_long() {
        let too_long = "ab".repeat(64) + "c";

        assert_eq!(
            check_password_strength(&too_long, None),
            Err(ValueError::PasswordTooLong)
        );
    }

    #[test]
    fn a_single_repeated_character_is_refused() {
        assert_eq!(
            check_password_strength("zzzzzzzzzzzz", None),
            Err(ValueError::PasswordRepetitive)
        );
    }

    #[test]
    fn two_alternating_characters_are_not_repetitive() {
        assert_eq!(check_password_strength("zyzyzyzyzyzy", None), Ok(()));
    }

    #[test]
    fn a_password_containing_the_email_local_part_is_refused_whatever_its_case() {
        let email = email("Lovelace@example.com");

        assert_eq!(
            check_password_strength("my-LOVELACE-2024", Some(&email)),
            Err(ValueError::PasswordContainsEmail)
        );
    }

    #[test]
    fn a_local_part_shorter_than_three_characters_is_not_checked() {
        let email = email("al@example.com");

        assert_eq!(
            check_password_strength("always-pal-47", Some(&email)),
            Ok(())
        );
    }

    #[test]
    fn the_email_rule_only_applies_when_an_email_is_given() {
        assert_eq!(check_password_strength("my-lovelace-2024", None), Ok(()));
    }

    #[test]
    fn common_passwords_are_refused_whatever_their_case() {
        for password in [
            "password123",
            "QwertyUIOP",
            "1234567890",
            "letmein123",
            "iloveyou12",
        ] {
            assert_eq!(
                check_password_strength(password, None),
                Err(ValueError::PasswordTooCommon),
                "{password}"
            );
        }
    }

    #[test]
    fn every_common_password_is_lowercase_and_long_enough_to_matter() {
        for password in COMMON_PASSWORDS {
            assert_eq!(*password, password.to_lowercase());
            assert!(password.chars().count() >= PASSWORD_MIN_CHARS, "{password}");
        }
    }
}
