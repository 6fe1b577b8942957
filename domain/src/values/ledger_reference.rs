use std::fmt;

use serde::{Deserialize, Serialize};

use super::ValueError;

/// Longest accepted reference, in characters: room for a prefix, a UUID and a period
/// (`vm_hour:0190f3a1-7c2e-7d3b-9a4e-2f1c5b8d6e70:2025-03-01T09`) many times over, while keeping
/// the wallet's remembered references small.
pub const LEDGER_REFERENCE_MAX_CHARS: usize = 128;

/// The idempotency key of one wallet movement, chosen by the caller from what the movement is for
/// (`order:<id>`, `invoice:<id>`, `vm_hour:<vm>:<hour>`, `refund:order:<id>`), so that a retry, a
/// redelivered event or a replayed reactor names the same movement again.
///
/// 1 to [`LEDGER_REFERENCE_MAX_CHARS`] printable ASCII characters with no spaces. Not trimmed nor
/// case-folded: it is machine-made, and two references are the same only when byte-equal.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct LedgerReference(String);

impl LedgerReference {
    /// Checks a reference.
    ///
    /// # Errors
    /// [`ValueError::InvalidLedgerReference`] when it is empty, too long, or contains anything
    /// but printable ASCII without spaces.
    pub fn parse(input: &str) -> Result<Self, ValueError> {
        if input.is_empty()
            || input.len() > LEDGER_REFERENCE_MAX_CHARS
            || !input.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(ValueError::InvalidLedgerReference);
        }
        Ok(Self(input.to_owned()))
    }

    /// The reference as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for LedgerReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for LedgerReference {
    type Error = ValueError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<LedgerReference> for String {
    fn from(reference: LedgerReference) -> Self {
        reference.0
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn a_prefixed_id_is_accepted_as_given() {
        let input = "vm_hour:0190f3a1-7c2e-7d3b-9a4e-2f1c5b8d6e70:2025-03-01T09";

        let reference = LedgerReference::parse(input).unwrap();

        assert_eq!(reference.as_str(), input);
        assert_eq!(reference.to_string(), input);
    }

    #[test]
    fn references_differing_only_in_case_are_different() {
        let lower = LedgerReference::parse("order:abc").unwrap();
        let upper = LedgerReference::parse("ORDER:ABC").unwrap();

        assert_ne!(lower, upper);
    }

    #[test]
    fn an_empty_reference_is_refused() {
        assert_eq!(
            LedgerReference::parse(""),
            Err(ValueError::InvalidLedgerReference)
        );
    }

    #[test]
    fn a_reference_of_128_characters_is_accepted_and_129_is_refused() {
        let fits = "r".repeat(LEDGER_REFERENCE_MAX_CHARS);
        let too_long = "r".repeat(LEDGER_REFERENCE_MAX_CHARS + 1);

        assert!(LedgerReference::parse(&fits).is_ok());
        assert_eq!(
            LedgerReference::parse(&too_long),
            Err(ValueError::InvalidLedgerReference)
        );
    }

    #[test]
    fn spaces_control_characters_and_non_ascii_are_refused() {
        for input in [
            " order:1",
            "order:1 ",
            "order 1",
            "order:\t1",
            "order:\n",
            "ordér:1",
        ] {
            assert_eq!(
                LedgerReference::parse(input),
                Err(ValueError::InvalidLedgerReference),
                "{input:?}"
            );
        }
    }

    #[test]
    fn deserialising_a_reference_checks_it_again() {
        let ok: LedgerReference = serde_json::from_str("\"invoice:2025-0001\"").unwrap();
        let blank = serde_json::from_str::<LedgerReference>("\" \"");

        assert_eq!(ok.as_str(), "invoice:2025-0001");
        assert!(blank.is_err());
        assert_eq!(serde_json::to_string(&ok).unwrap(), "\"invoice:2025-0001\"");
    }
}
