//! The inputs of an identity check (KYC): a country, a national identity document number and a
//! free-text reason that staff give when they decide.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::ValueError;

/// Longest national identity number accepted (passport and ID card numbers are far shorter).
pub const NATIONAL_ID_MAX_CHARS: usize = 64;
/// Shortest national identity number accepted.
pub const NATIONAL_ID_MIN_CHARS: usize = 4;
/// Longest reason staff may write (it is shown to the customer and kept in the log forever).
pub const REASON_MAX_CHARS: usize = 500;

/// ISO 3166-1 alpha-2 codes that are assigned, as one string of pairs (kept compact on purpose).
const ASSIGNED_COUNTRIES: &str = "ADAEAFAGAIALAMAOAQARASATAUAWAXAZBABBBDBEBFBGBHBIBJBLBMBNBOBQBRBSBTBVBWBYBZ\
CACCCDCFCGCHCICKCLCMCNCOCRCUCVCWCXCYCZDEDJDKDMDODZECEEEGEHERESETFIFJFKFMFOFRGAGBGDGEGFGGGHGIGLGMGNGP\
GQGRGSGTGUGWGYHKHMHNHRHTHUIDIEILIMINIOIQIRISITJEJMJOJPKEKGKHKIKMKNKPKRKWKYKZLALBLCLILKLRLSLTLULVLYMA\
MCMDMEMFMGMHMKMLMMMNMOMPMQMRMSMTMUMVMWMXMYMZNANCNENFNGNINLNONPNRNUNZOMPAPEPFPGPHPKPLPMPNPRPSPTPWPYQA\
RERORSRURWSASBSCSDSESGSHSISJSKSLSMSNSOSRSSSTSVSXSYSZTCTDTFTGTHTJTKTLTMTNTOTRTTTVTWTZUAUGUMUSUYUZVAVC\
VEVGVIVNVUWFWSYEYTZAZMZW";

/// An assigned ISO 3166-1 alpha-2 country code, upper case (`"DE"`, `"US"`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Country(String);

impl Country {
    /// Accepts a two-letter code in any case, if it is assigned.
    pub fn parse(input: &str) -> Result<Self, ValueError> {
        let code = input.trim().to_ascii_uppercase();
        let assigned = code.len() == 2
            && code.bytes().all(|b| b.is_ascii_uppercase())
            && ASSIGNED_COUNTRIES
                .as_bytes()
                .chunks(2)
                .any(|pair| pair == code.as_bytes());
        if assigned {
            Ok(Self(code))
        } else {
            Err(ValueError::InvalidCountry)
        }
    }

    /// The upper-case code.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Country {
    type Error = ValueError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Country> for String {
    fn from(value: Country) -> Self {
        value.0
    }
}

impl fmt::Display for Country {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The number of a national identity document: letters, digits, and `-`, `/`, `.` or single
/// spaces between them, upper-cased.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct NationalId(String);

impl NationalId {
    /// Trims, upper-cases and checks the characters and the length.
    pub fn parse(input: &str) -> Result<Self, ValueError> {
        let value = input.trim().to_uppercase();
        let chars = value.chars().count();
        let allowed = value
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '/' | '.' | ' '))
            && !value.contains("  ");
        if !(NATIONAL_ID_MIN_CHARS..=NATIONAL_ID_MAX_CHARS).contains(&chars) || !allowed {
            return Err(ValueError::InvalidNationalId);
        }
        Ok(Self(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for NationalId {
    type Error = ValueError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<NationalId> for String {
    fn from(value: NationalId) -> Self {
        value.0
    }
}

/// Why staff decided something (a rejection, a suspension): 1 to [`REASON_MAX_CHARS`] characters
/// of text without control characters other than line breaks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Reason(String);

impl Reason {
    pub fn parse(input: &str) -> Result<Self, ValueError> {
        let value = input.trim();
        let chars = value.chars().count();
        if chars == 0
            || chars > REASON_MAX_CHARS
            || value.chars().any(|c| c.is_control() && c != '\n')
        {
            return Err(ValueError::InvalidReason);
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Reason {
    type Error = ValueError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Reason> for String {
    fn from(value: Reason) -> Self {
        value.0
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn assigned_country_codes_are_accepted_in_any_case() {
        assert_eq!(Country::parse("de").unwrap().as_str(), "DE");
        assert_eq!(Country::parse(" US ").unwrap().as_str(), "US");
        assert_eq!(Country::parse("ZW").unwrap().as_str(), "ZW");
    }

    #[test]
    fn unassigned_or_malformed_country_codes_are_refused() {
        for input in ["", "D", "DEU", "XX", "ZZ", "1A", "É1", "AA"] {
            assert_eq!(
                Country::parse(input),
                Err(ValueError::InvalidCountry),
                "{input}"
            );
        }
    }

    #[test]
    fn the_country_table_is_made_of_pairs() {
        assert_eq!(ASSIGNED_COUNTRIES.len() % 2, 0);
        assert_eq!(ASSIGNED_COUNTRIES.len() / 2, 249);
    }

    #[test]
    fn national_ids_are_normalised_and_checked() {
        assert_eq!(
            NationalId::parse(" l01x00t47 ").unwrap().as_str(),
            "L01X00T47"
        );
        assert!(NationalId::parse("AB-123/45.6 7").is_ok());
        for input in ["", "abc", "AB<123>", "AB  123", &"9".repeat(65)] {
            assert_eq!(
                NationalId::parse(input),
                Err(ValueError::InvalidNationalId),
                "{input}"
            );
        }
    }

    #[test]
    fn reasons_must_be_short_printable_text() {
        assert_eq!(
            Reason::parse("  document unreadable \n").unwrap().as_str(),
            "document unreadable"
        );
        assert!(Reason::parse("line one\nline two").is_ok());
        for input in ["", "   ", "bell\u{7}", &"x".repeat(501)] {
            assert_eq!(Reason::parse(input), Err(ValueError::InvalidReason));
        }
    }

    #[test]
    fn deserialising_goes_through_the_same_rules() {
        let ok: Result<Country, _> = serde_json::from_str("\"fr\"");
        assert_eq!(ok.unwrap().as_str(), "FR");
        let bad: Result<Country, _> = serde_json::from_str("\"XX\"");
        assert!(bad.is_err());
    }
}
