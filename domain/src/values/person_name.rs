use std::fmt;

use serde::{Deserialize, Serialize};

use super::ValueError;

/// Longest accepted name, in characters: generous for real names, small enough for any UI and
/// any column.
pub const PERSON_NAME_MAX_CHARS: usize = 100;

/// A person's display name: trimmed, 1 to [`PERSON_NAME_MAX_CHARS`] characters, any script, no
/// control characters (they break logs, terminals and CSV exports).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PersonName(String);

/// Which rule of [`PersonName::parse`] an input broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NameProblem {
    /// Nothing but whitespace was given.
    #[error("it is empty")]
    Empty,
    /// Longer than [`PERSON_NAME_MAX_CHARS`] characters after trimming.
    #[error("it is longer than {max} characters", max = PERSON_NAME_MAX_CHARS)]
    TooLong,
    /// Contains a control character such as a newline or tab.
    #[error("it contains a control character")]
    ControlCharacter,
}

impl PersonName {
    /// Trims and checks a name.
    ///
    /// # Errors
    /// [`ValueError::InvalidName`] naming the rule the name breaks.
    pub fn parse(input: &str) -> Result<Self, ValueError> {
        let name = input.trim();
        if name.is_empty() {
            return Err(ValueError::InvalidName(NameProblem::Empty));
        }
        if name.chars().count() > PERSON_NAME_MAX_CHARS {
            return Err(ValueError::InvalidName(NameProblem::TooLong));
        }
        if name.chars().any(char::is_control) {
            return Err(ValueError::InvalidName(NameProblem::ControlCharacter));
        }
        Ok(Self(name.to_owned()))
    }

    /// The trimmed name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PersonName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for PersonName {
    type Error = ValueError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<PersonName> for String {
    fn from(name: PersonName) -> Self {
        name.0
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn a_name_is_trimmed() {
        let name = PersonName::parse("  Ada Lovelace \n").unwrap();

        assert_eq!(name.as_str(), "Ada Lovelace");
    }

    #[test]
    fn names_in_any_script_are_accepted() {
        for input in [
            "Zoë Ñúñez",
            "李小龍",
            "Владимир",
            "محمد",
            "Łukasz O'Brien-Smith",
        ] {
            let name = PersonName::parse(input).unwrap();

            assert_eq!(name.to_string(), input);
        }
    }

    #[test]
    fn a_blank_name_is_refused() {
        assert_eq!(
            PersonName::parse(" \t "),
            Err(ValueError::InvalidName(NameProblem::Empty))
        );
    }

    #[test]
    fn a_name_of_100_characters_is_accepted_and_101_is_refused() {
        // Multi-byte characters: the limit counts characters, not bytes.
        let fits = "é".repeat(100);
        let too_long = "é".repeat(101);

        assert!(PersonName::parse(&fits).is_ok());
        assert_eq!(
            PersonName::parse(&too_long),
            Err(ValueError::InvalidName(NameProblem::TooLong))
        );
    }

    #[test]
    fn a_name_with_a_control_character_is_refused() {
        for input in ["Ada\nLovelace", "Ada\tLovelace", "Ada\u{0}"] {
            assert_eq!(
                PersonName::parse(input),
                Err(ValueError::InvalidName(NameProblem::ControlCharacter)),
                "{input:?}"
            );
        }
    }

    #[test]
    fn deserialising_a_name_re_validates_it() {
        let ok: PersonName = serde_json::from_str("\" Ada \"").unwrap();
        let blank = serde_json::from_str::<PersonName>("\"  \"");

        assert_eq!(ok.as_str(), "Ada");
        assert!(blank.is_err());
        assert_eq!(serde_json::to_string(&ok).unwrap(), "\"Ada\"");
    }
}
