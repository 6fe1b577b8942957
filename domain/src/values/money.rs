//! Money without floating point: signed `i64` micro-units of an ISO 4217 currency.
//!
//! A micro-unit is a millionth of the currency's major unit (0.000001 EUR), fine enough to meter
//! a VM by the hour without losing value; an `i64` of them still holds ±9.2 trillion units. Every
//! arithmetic step is checked: overflow and mixing currencies are errors, never a wrap or a guess.
//! Rounding to the currency's minor unit (cents) is not done here; it is refused where it would be
//! inexact (`to_minor_units`) and left to invoicing, which carries the remainder.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Micro-units in one major unit of any currency.
pub const MICROS_PER_UNIT: i64 = 1_000_000;
/// Decimal places of the micro-unit representation, and of the wire format (`"12.345600"`).
pub const MONEY_DECIMALS: u8 = 6;

/// The currencies Stratus accepts, with their ISO 4217 minor-unit exponent. Small on purpose: a
/// currency is added when a gateway and the invoicing can handle it, and never removed, because
/// stored events name it.
const KNOWN_CURRENCIES: &[Currency] = &[
    Currency::new("AUD", 2),
    Currency::new("BHD", 3),
    Currency::new("CAD", 2),
    Currency::CHF,
    Currency::new("CZK", 2),
    Currency::new("DKK", 2),
    Currency::EUR,
    Currency::GBP,
    Currency::new("HUF", 2),
    Currency::new("ISK", 0),
    Currency::JPY,
    Currency::new("KWD", 3),
    Currency::new("NOK", 2),
    Currency::new("NZD", 2),
    Currency::new("PLN", 2),
    Currency::new("SEK", 2),
    Currency::USD,
];

/// An ISO 4217 currency from the table of known currencies, with its minor-unit exponent
/// (2 for EUR: cents; 0 for JPY). Serialised as its three-letter code; deserialising goes through
/// [`Currency::parse`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency {
    code: &'static str,
    minor_units: u8,
}

impl Currency {
    /// Euro, 2 decimals.
    pub const EUR: Currency = Currency::new("EUR", 2);
    /// US dollar, 2 decimals.
    pub const USD: Currency = Currency::new("USD", 2);
    /// Pound sterling, 2 decimals.
    pub const GBP: Currency = Currency::new("GBP", 2);
    /// Swiss franc, 2 decimals.
    pub const CHF: Currency = Currency::new("CHF", 2);
    /// Japanese yen, no minor unit.
    pub const JPY: Currency = Currency::new("JPY", 0);

    /// Every currency [`Currency::parse`] accepts, ordered by code.
    pub const ALL: &'static [Currency] = KNOWN_CURRENCIES;

    const fn new(code: &'static str, minor_units: u8) -> Self {
        Self { code, minor_units }
    }

    /// Looks up an ISO 4217 code: exactly three uppercase ASCII letters, in the table of known
    /// currencies.
    ///
    /// # Errors
    /// [`MoneyError::InvalidCurrency`] when the input is not three uppercase letters,
    /// [`MoneyError::UnknownCurrency`] when it is but Stratus does not handle that currency.
    pub fn parse(code: &str) -> Result<Self, MoneyError> {
        if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(MoneyError::InvalidCurrency);
        }
        KNOWN_CURRENCIES
            .iter()
            .copied()
            .find(|currency| currency.code == code)
            .ok_or(MoneyError::UnknownCurrency)
    }

    /// The ISO 4217 code, e.g. `"EUR"`.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// Digits after the decimal point of the smallest coin or cent (2 for EUR, 0 for JPY).
    pub fn minor_units(&self) -> u8 {
        self.minor_units
    }

    /// Micro-units in one minor unit (10 000 for EUR, 1 000 000 for JPY).
    fn micros_per_minor_unit(&self) -> i64 {
        10_i64.pow(u32::from(MONEY_DECIMALS - self.minor_units))
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code)
    }
}

impl TryFrom<String> for Currency {
    type Error = MoneyError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Currency> for String {
    fn from(currency: Currency) -> Self {
        currency.code.to_owned()
    }
}

// Written by hand: the derive would tie the deserialiser's lifetime to the `&'static str` field.
impl Serialize for Currency {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.code)
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let code = String::deserialize(deserializer)?;
        Self::parse(&code).map_err(serde::de::Error::custom)
    }
}

/// Why an amount or currency was refused, or why an arithmetic step failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// Not a plain decimal number: optional `-`, digits, optionally `.` and digits.
    #[error("not a decimal amount: expected digits with an optional '-' and '.', such as 25.00")]
    InvalidAmount,
    /// More digits after the decimal point than allowed here.
    #[error("too many decimals: at most {max_decimals} allowed")]
    TooManyDecimals {
        /// The most decimals accepted in this place (6 internally, the minor unit for payments).
        max_decimals: u8,
    },
    /// The amount, or the result of an arithmetic step, does not fit in an `i64` of micro-units.
    #[error("the amount is too large")]
    AmountOverflow,
    /// Two amounts in different currencies were combined.
    #[error("currency mismatch: expected {expected}, got {found}")]
    CurrencyMismatch {
        /// The currency of the left-hand amount (or of the wallet).
        expected: Currency,
        /// The currency that was offered.
        found: Currency,
    },
    /// The currency code is not three uppercase letters.
    #[error("not a currency code: expected three uppercase letters such as EUR")]
    InvalidCurrency,
    /// A well-formed ISO 4217 code that Stratus does not handle.
    #[error("unknown or unsupported currency")]
    UnknownCurrency,
    /// Zero or negative where only a positive amount makes sense.
    #[error("the amount must be greater than zero")]
    AmountNotPositive,
}

impl MoneyError {
    /// Stable machine-readable code for API error bodies. Never change an existing code: clients
    /// branch on it.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidAmount => "invalid_amount",
            Self::TooManyDecimals { .. } => "too_many_decimals",
            Self::AmountOverflow => "amount_overflow",
            Self::CurrencyMismatch { .. } => "currency_mismatch",
            Self::InvalidCurrency => "invalid_currency",
            Self::UnknownCurrency => "unknown_currency",
            Self::AmountNotPositive => "amount_not_positive",
        }
    }
}

/// An amount of one currency in micro-units. Serialised as
/// `{"amount":"12.345600","currency":"EUR"}` (DESIGN.md §7), never as a JSON number.
///
/// Deliberately not `Ord`: amounts of different currencies have no order. Compare
/// [`Money::micros`] after checking the currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "MoneyWire", into = "MoneyWire")]
pub struct Money {
    micros: i64,
    currency: Currency,
}

impl Money {
    /// Any count of micro-units is a valid amount.
    pub fn from_micros(micros: i64, currency: Currency) -> Self {
        Self { micros, currency }
    }

    /// Nothing, in `currency`.
    pub fn zero(currency: Currency) -> Self {
        Self::from_micros(0, currency)
    }

    /// Parses a decimal string strictly: an optional leading `-`, one or more ASCII digits,
    /// optionally a `.` followed by one to [`MONEY_DECIMALS`] digits. No `+`, no exponent, no
    /// spaces, no thousands separators, no bare `.5` or `5.`. Leading zeros are accepted.
    ///
    /// This is the internal and wire precision; for amounts a client pays or is paid, use
    /// [`Money::from_client_input`], which also enforces the currency's minor unit.
    ///
    /// # Errors
    /// [`MoneyError::InvalidAmount`] for anything else, [`MoneyError::TooManyDecimals`] for a 7th
    /// decimal, [`MoneyError::AmountOverflow`] when the value does not fit in `i64` micro-units.
    pub fn from_decimal_str(input: &str, currency: Currency) -> Result<Self, MoneyError> {
        parse_micros(input).map(|micros| Self::from_micros(micros, currency))
    }

    /// Parses an amount a client typed or a gateway reported: like
    /// [`Money::from_decimal_str`], and the value must be a whole number of minor units
    /// (`"1.001"` EUR is refused, `"1.010"` EUR is 1.01 EUR; `"100.5"` JPY is refused).
    ///
    /// # Errors
    /// As [`Money::from_decimal_str`], and [`MoneyError::TooManyDecimals`] carrying the
    /// currency's minor unit when the value is finer than that.
    pub fn from_client_input(input: &str, currency: Currency) -> Result<Self, MoneyError> {
        let money = Self::from_decimal_str(input, currency)?;
        if !money.fits_minor_unit() {
            return Err(MoneyError::TooManyDecimals {
                max_decimals: currency.minor_units(),
            });
        }
        Ok(money)
    }

    /// An amount given in the currency's minor unit (cents for EUR), as gateways report it.
    ///
    /// # Errors
    /// [`MoneyError::AmountOverflow`] when it does not fit in `i64` micro-units.
    pub fn from_minor_units(minor_units: i64, currency: Currency) -> Result<Self, MoneyError> {
        minor_units
            .checked_mul(currency.micros_per_minor_unit())
            .map(|micros| Self::from_micros(micros, currency))
            .ok_or(MoneyError::AmountOverflow)
    }

    /// The amount in micro-units.
    pub fn micros(&self) -> i64 {
        self.micros
    }

    /// The currency of the amount.
    pub fn currency(&self) -> Currency {
        self.currency
    }

    /// Exactly zero.
    pub fn is_zero(&self) -> bool {
        self.micros == 0
    }

    /// Greater than zero.
    pub fn is_positive(&self) -> bool {
        self.micros > 0
    }

    /// Less than zero.
    pub fn is_negative(&self) -> bool {
        self.micros < 0
    }

    /// Returns the amount if it is greater than zero.
    ///
    /// # Errors
    /// [`MoneyError::AmountNotPositive`] for zero or a negative amount.
    pub fn require_positive(self) -> Result<Self, MoneyError> {
        if self.is_positive() {
            Ok(self)
        } else {
            Err(MoneyError::AmountNotPositive)
        }
    }

    /// Whether the amount is a whole number of the currency's minor unit (whole cents for EUR,
    /// whole yen for JPY), i.e. whether a gateway can charge or pay it exactly.
    pub fn fits_minor_unit(&self) -> bool {
        self.micros % self.currency.micros_per_minor_unit() == 0
    }

    /// The amount in the currency's minor unit (cents for EUR), for gateways.
    ///
    /// # Errors
    /// [`MoneyError::TooManyDecimals`] when that would round: rounding is the invoice's job.
    pub fn to_minor_units(&self) -> Result<i64, MoneyError> {
        if !self.fits_minor_unit() {
            return Err(MoneyError::TooManyDecimals {
                max_decimals: self.currency.minor_units(),
            });
        }
        Ok(self.micros / self.currency.micros_per_minor_unit())
    }

    /// The wire form of the amount: optional `-`, the whole units, `.`, exactly six decimals
    /// (`"12.345600"`, `"-0.000001"`, `"0.000000"`).
    pub fn to_decimal_string(&self) -> String {
        let sign = if self.micros < 0 { "-" } else { "" };
        // `unsigned_abs` so that `i64::MIN` has a magnitude too.
        let magnitude = self.micros.unsigned_abs();
        let per_unit = MICROS_PER_UNIT.unsigned_abs();
        let units = magnitude / per_unit;
        let fraction = magnitude % per_unit;
        format!(
            "{sign}{units}.{fraction:0width$}",
            width = usize::from(MONEY_DECIMALS)
        )
    }

    /// `self + other`.
    ///
    /// # Errors
    /// [`MoneyError::CurrencyMismatch`] or [`MoneyError::AmountOverflow`].
    pub fn checked_add(self, other: Money) -> Result<Self, MoneyError> {
        self.same_currency(other)?;
        self.micros
            .checked_add(other.micros)
            .map(|micros| Self::from_micros(micros, self.currency))
            .ok_or(MoneyError::AmountOverflow)
    }

    /// `self - other`.
    ///
    /// # Errors
    /// [`MoneyError::CurrencyMismatch`] or [`MoneyError::AmountOverflow`].
    pub fn checked_sub(self, other: Money) -> Result<Self, MoneyError> {
        self.same_currency(other)?;
        self.micros
            .checked_sub(other.micros)
            .map(|micros| Self::from_micros(micros, self.currency))
            .ok_or(MoneyError::AmountOverflow)
    }

    /// `-self`.
    ///
    /// # Errors
    /// [`MoneyError::AmountOverflow`] for the one amount without a positive counterpart.
    pub fn checked_neg(self) -> Result<Self, MoneyError> {
        self.micros
            .checked_neg()
            .map(|micros| Self::from_micros(micros, self.currency))
            .ok_or(MoneyError::AmountOverflow)
    }

    /// `self × factor`.
    ///
    /// # Errors
    /// [`MoneyError::AmountOverflow`].
    pub fn checked_mul(self, factor: i64) -> Result<Self, MoneyError> {
        self.micros
            .checked_mul(factor)
            .map(|micros| Self::from_micros(micros, self.currency))
            .ok_or(MoneyError::AmountOverflow)
    }

    /// `self × numerator / denominator`, rounded to the nearest micro-unit, halves away from zero
    /// (a price per GiB times MiB over 1024, a monthly price over the hours of a month, a
    /// percentage). Computed in 128 bits, so only the result can overflow.
    ///
    /// # Errors
    /// [`MoneyError::AmountOverflow`] when the result does not fit, or `denominator` is zero.
    pub fn checked_scale(self, numerator: i64, denominator: i64) -> Result<Self, MoneyError> {
        let product = i128::from(self.micros) * i128::from(numerator);
        let micros = divide_rounding_half_away(product, i128::from(denominator))
            .ok_or(MoneyError::AmountOverflow)?;
        i64::try_from(micros)
            .map(|micros| Self::from_micros(micros, self.currency))
            .map_err(|_| MoneyError::AmountOverflow)
    }

    /// The amount rounded to the currency's minor unit (cents for EUR), halves away from zero
    /// (commercial rounding: 0.005 → 0.01, −0.005 → −0.01). Only invoicing calls this
    /// (DESIGN.md §5); everywhere else amounts stay exact in micro-units.
    ///
    /// # Errors
    /// [`MoneyError::AmountOverflow`] when rounding up passes `i64::MAX` micro-units.
    pub fn round_to_minor_unit(self) -> Result<Self, MoneyError> {
        let step = i128::from(self.currency.micros_per_minor_unit());
        let units = divide_rounding_half_away(i128::from(self.micros), step)
            .ok_or(MoneyError::AmountOverflow)?;
        i64::try_from(units * step)
            .map(|micros| Self::from_micros(micros, self.currency))
            .map_err(|_| MoneyError::AmountOverflow)
    }

    fn same_currency(&self, other: Money) -> Result<(), MoneyError> {
        if self.currency == other.currency {
            Ok(())
        } else {
            Err(MoneyError::CurrencyMismatch {
                expected: self.currency,
                found: other.currency,
            })
        }
    }
}

/// `value / divisor` rounded to the nearest integer, halves away from zero; `None` for a zero
/// divisor.
fn divide_rounding_half_away(value: i128, divisor: i128) -> Option<i128> {
    if divisor == 0 {
        return None;
    }
    let quotient = value / divisor;
    let remainder = value % divisor;
    if remainder.abs() * 2 >= divisor.abs() {
        let away = if (value < 0) == (divisor < 0) { 1 } else { -1 };
        Some(quotient + away)
    } else {
        Some(quotient)
    }
}

impl fmt::Display for Money {
    /// `12.345600 EUR`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.to_decimal_string(), self.currency)
    }
}

/// The serde shape of [`Money`]; deserialising goes through [`Money::from_decimal_str`].
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct MoneyWire {
    amount: String,
    currency: Currency,
}

impl From<Money> for MoneyWire {
    fn from(money: Money) -> Self {
        Self {
            amount: money.to_decimal_string(),
            currency: money.currency,
        }
    }
}

impl TryFrom<MoneyWire> for Money {
    type Error = MoneyError;

    fn try_from(wire: MoneyWire) -> Result<Self, Self::Error> {
        Self::from_decimal_str(&wire.amount, wire.currency)
    }
}

/// The grammar of [`Money::from_decimal_str`], returning micro-units.
fn parse_micros(input: &str) -> Result<i64, MoneyError> {
    let (negative, unsigned) = match input.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, input),
    };
    let (whole, fraction) = match unsigned.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (unsigned, None),
    };
    if !is_digits(whole) || !fraction.is_none_or(is_digits) {
        return Err(MoneyError::InvalidAmount);
    }
    let fraction = fraction.unwrap_or("");
    if fraction.len() > usize::from(MONEY_DECIMALS) {
        return Err(MoneyError::TooManyDecimals {
            max_decimals: MONEY_DECIMALS,
        });
    }

    // Reading the whole part, the fraction and the zeros that pad it to six places as one run of
    // digits gives the micro-units. The magnitude is accumulated in u128 and bounded after every
    // digit, so that neither an absurdly long input nor `i64::MIN` (whose magnitude is not an
    // i64) can overflow.
    let padding = std::iter::repeat_n(b'0', usize::from(MONEY_DECIMALS) - fraction.len());
    let limit = u128::from(i64::MIN.unsigned_abs());
    let mut magnitude: u128 = 0;
    for digit in whole.bytes().chain(fraction.bytes()).chain(padding) {
        magnitude = magnitude * 10 + u128::from(digit - b'0');
        if magnitude > limit {
            return Err(MoneyError::AmountOverflow);
        }
    }
    let signed = i128::try_from(magnitude).map_err(|_| MoneyError::AmountOverflow)?;
    let signed = if negative { -signed } else { signed };
    i64::try_from(signed).map_err(|_| MoneyError::AmountOverflow)
}

/// One or more ASCII digits.
fn is_digits(part: &str) -> bool {
    !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests;
