//! The manual gateway: top-ups by bank transfer, confirmed by billing staff.
//!
//! Nothing is called remotely. The customer is shown Stratus's bank account and a reference to
//! quote ([`BankTransferInstructions`]); the top-up stays pending until billing staff see the
//! transfer on the bank statement, find the payment by its reference ([`BankReference::parse`])
//! and confirm the amount that actually arrived (the wallet's `CompleteTopUp`).
//!
//! ## The reference
//!
//! `STR-` followed by 10 characters that identify the payment and 1 check character, all from
//! Crockford's base 32 alphabet (`0-9 A-Z` without `I L O U`, so nothing reads as another
//! letter): `STR-7K3M9QX2ZB4`. The 10 characters are 50 bits of SHA-256 of the payment id, so the
//! same payment always gets the same reference and a reference reveals nothing about the id. The
//! check character (Luhn mod 32) catches every single mistyped character and every swap of two
//! neighbouring characters but `0` and `Z`. Parsing forgives what people and banks do to it: lower case, spaces, hyphens,
//! `O` for `0`, `I` or `L` for `1`, a missing `STR`.
//!
//! 50 bits are enough to make two payments sharing a reference unlikely (about one chance in
//! 2 000 after a million bank transfers), not impossible: the code that stores references must
//! claim each one as a unique value and refuse a top-up whose reference is taken.

use std::fmt;

use futures::future::BoxFuture;
use serde::Serialize;
use sha2::{Digest, Sha256};
use stratus_domain::{Money, PaymentId};

use super::{
    chargeable_minor_units, Checkout, GatewayError, GatewayKind, Intent, IntentId, IntentRequest,
    IntentStatus, PaymentGateway,
};

/// What every reference starts with, so that it stands out in a bank statement line.
pub const BANK_REFERENCE_PREFIX: &str = "STR";
/// Characters that identify the payment: 50 bits, short enough to type without a mistake.
pub const BANK_REFERENCE_DATA_CHARS: usize = 10;
/// Longest beneficiary name: the SEPA credit transfer scheme's limit for a creditor name.
pub const BENEFICIARY_MAX_CHARS: usize = 70;
/// Crockford's base 32: digits and capitals without I, L, O and U.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/// Hashed with the payment id, so that a reference cannot be matched to hashes made elsewhere.
const REFERENCE_DERIVATION_CONTEXT: &[u8] = b"stratus bank transfer reference v1:";
/// Shortest and longest IBAN of any country (Norway, Saint Lucia), in characters.
const IBAN_MIN_CHARS: usize = 15;
const IBAN_MAX_CHARS: usize = 34;

/// The reference a customer quotes on a bank transfer, in its canonical form `STR-XXXXXXXXXXC`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(into = "String")]
pub struct BankReference(String);

impl BankReference {
    /// The reference of a payment; always the same for the same payment.
    pub fn for_payment(payment_id: &PaymentId) -> Self {
        let digest = Sha256::new()
            .chain_update(REFERENCE_DERIVATION_CONTEXT)
            .chain_update(payment_id.as_uuid().as_bytes())
            .finalize();
        let mut leading = [0_u8; 8];
        leading.copy_from_slice(&digest[..8]);
        let bits = u64::from_be_bytes(leading);
        let digits: Vec<u8> = (0..BANK_REFERENCE_DATA_CHARS)
            .map(|position| {
                let shift = 64 - 5 * (position + 1);
                // Masked to five bits: always a valid index into the alphabet.
                ((bits >> shift) & 0b1_1111) as u8
            })
            .collect();
        Self::from_digits(&digits)
    }

    /// Reads a reference as a person typed it or a bank printed it: case, spaces and hyphens do
    /// not matter, `O` reads as `0` and `I`/`L` as `1`, and the `STR` prefix may be left out.
    ///
    /// # Errors
    /// [`BankReferenceError::WrongLength`] when there are not 11 characters after the prefix,
    /// [`BankReferenceError::InvalidCharacter`] for a character outside the alphabet,
    /// [`BankReferenceError::CheckCharacterMismatch`] when the check character does not match
    /// (a typo).
    pub fn parse(input: &str) -> Result<Self, BankReferenceError> {
        let compact: String = input
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '-')
            .map(|c| c.to_ascii_uppercase())
            .collect();
        let body = if compact.len() == BANK_REFERENCE_PREFIX.len() + BANK_REFERENCE_DATA_CHARS + 1 {
            compact
                .strip_prefix(BANK_REFERENCE_PREFIX)
                .ok_or(BankReferenceError::WrongLength)?
        } else {
            compact.as_str()
        };
        if body.chars().count() != BANK_REFERENCE_DATA_CHARS + 1 {
            return Err(BankReferenceError::WrongLength);
        }
        let values = body
            .chars()
            .map(digit_value)
            .collect::<Option<Vec<u8>>>()
            .ok_or(BankReferenceError::InvalidCharacter)?;
        let (digits, check) = values.split_at(BANK_REFERENCE_DATA_CHARS);
        if check != [check_digit(digits)] {
            return Err(BankReferenceError::CheckCharacterMismatch);
        }
        Ok(Self::from_digits(digits))
    }

    /// The canonical form, `STR-XXXXXXXXXXC`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Builds the canonical text from data digits (values 0–31) and appends their check digit.
    fn from_digits(digits: &[u8]) -> Self {
        let mut text = String::with_capacity(BANK_REFERENCE_PREFIX.len() + 2 + digits.len());
        text.push_str(BANK_REFERENCE_PREFIX);
        text.push('-');
        for &digit in digits.iter().chain([check_digit(digits)].iter()) {
            text.push(char::from(ALPHABET[usize::from(digit)]));
        }
        Self(text)
    }
}

impl fmt::Display for BankReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<BankReference> for String {
    fn from(reference: BankReference) -> Self {
        reference.0
    }
}

/// Why a text is not a bank reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BankReferenceError {
    /// Not `STR` and 11 characters, or 11 characters alone.
    #[error("a payment reference has 11 characters after STR-, such as STR-7K3M9QX2ZB4")]
    WrongLength,
    /// A character that no reference contains (such as `U` or `*`).
    #[error("a payment reference has only digits and letters other than U")]
    InvalidCharacter,
    /// Well formed, but the last character does not match the others: a typo.
    #[error("the payment reference has a typo: its check character does not match")]
    CheckCharacterMismatch,
}

impl BankReferenceError {
    /// Stable machine-readable code for API error bodies. Never change an existing code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::WrongLength => "reference_wrong_length",
            Self::InvalidCharacter => "reference_invalid_character",
            Self::CheckCharacterMismatch => "reference_check_mismatch",
        }
    }
}

/// The value of a typed character in Crockford's base 32 (uppercase input), with its forgiving
/// readings of `O`, `I` and `L`.
fn digit_value(c: char) -> Option<u8> {
    let c = match c {
        'O' => '0',
        'I' | 'L' => '1',
        other => other,
    };
    ALPHABET
        .iter()
        .position(|&symbol| char::from(symbol) == c)
        .and_then(|index| u8::try_from(index).ok())
}

/// Luhn mod 32 over the data digits: from the right, every other digit is doubled and its two
/// base-32 digits summed; the check digit brings the total to a multiple of 32.
fn check_digit(digits: &[u8]) -> u8 {
    const BASE: u32 = 32;
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(position, &digit)| {
            let factor = if position % 2 == 0 { 2 } else { 1 };
            let addend = u32::from(digit) * factor;
            addend / BASE + addend % BASE
        })
        .sum();
    // Below 32 by construction.
    ((BASE - sum % BASE) % BASE) as u8
}

/// Stratus's bank account that customers transfer to. Part of the configuration; checked once
/// when the configuration is loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BankAccount {
    beneficiary: String,
    iban: String,
    bic: String,
}

impl BankAccount {
    /// Checks the account holder's name, the IBAN (its length, shape and mod-97 check digits;
    /// spaces allowed) and the BIC (8 or 11 characters).
    ///
    /// # Errors
    /// [`BankAccountError`] naming the first field that is wrong.
    pub fn new(beneficiary: &str, iban: &str, bic: &str) -> Result<Self, BankAccountError> {
        let beneficiary = beneficiary.trim();
        if beneficiary.is_empty()
            || beneficiary.chars().count() > BENEFICIARY_MAX_CHARS
            || beneficiary.chars().any(char::is_control)
        {
            return Err(BankAccountError::InvalidBeneficiary);
        }
        let iban = compact_uppercase(iban);
        if !is_valid_iban(&iban) {
            return Err(BankAccountError::InvalidIban);
        }
        let bic = compact_uppercase(bic);
        if !is_valid_bic(&bic) {
            return Err(BankAccountError::InvalidBic);
        }
        Ok(Self {
            beneficiary: beneficiary.to_owned(),
            iban,
            bic,
        })
    }

    /// The account holder, as the customer's bank expects it.
    pub fn beneficiary(&self) -> &str {
        &self.beneficiary
    }

    /// The IBAN without spaces, in capitals.
    pub fn iban(&self) -> &str {
        &self.iban
    }

    /// The BIC in capitals.
    pub fn bic(&self) -> &str {
        &self.bic
    }
}

/// Which part of a [`BankAccount`] is wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BankAccountError {
    /// Empty, longer than [`BENEFICIARY_MAX_CHARS`], or with control characters.
    #[error("the beneficiary must be 1 to 70 characters")]
    InvalidBeneficiary,
    /// Wrong length or shape, or the check digits do not match.
    #[error("the IBAN is not valid")]
    InvalidIban,
    /// Not 4 letters (bank), 2 letters (country), 2 letters or digits (location) and optionally 3
    /// more (branch).
    #[error("the BIC is not valid")]
    InvalidBic,
}

fn compact_uppercase(input: &str) -> String {
    input
        .chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// ISO 13616: two letters, two check digits, up to 30 letters or digits; moved round and read
/// as a number (A = 10 … Z = 35), it leaves 1 when divided by 97.
fn is_valid_iban(iban: &str) -> bool {
    let bytes = iban.as_bytes();
    if !(IBAN_MIN_CHARS..=IBAN_MAX_CHARS).contains(&bytes.len())
        || !bytes[..2].iter().all(u8::is_ascii_uppercase)
        || !bytes[2..4].iter().all(u8::is_ascii_digit)
        || !bytes.iter().all(u8::is_ascii_alphanumeric)
    {
        return false;
    }
    let mut remainder: u32 = 0;
    for &b in bytes[4..].iter().chain(&bytes[..4]) {
        let value = if b.is_ascii_digit() {
            u32::from(b - b'0')
        } else {
            u32::from(b - b'A') + 10
        };
        let scale = if value >= 10 { 100 } else { 10 };
        remainder = (remainder * scale + value) % 97;
    }
    remainder == 1
}

fn is_valid_bic(bic: &str) -> bool {
    let bytes = bic.as_bytes();
    (bytes.len() == 8 || bytes.len() == 11)
        && bytes[..6].iter().all(u8::is_ascii_uppercase)
        && bytes[6..].iter().all(u8::is_ascii_alphanumeric)
}

/// What the customer needs to pay a top-up by bank transfer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BankTransferInstructions {
    /// The account holder to name.
    pub beneficiary: String,
    /// Where to send the money.
    pub iban: String,
    /// The bank of that account.
    pub bic: String,
    /// How much to send.
    pub amount: Money,
    /// What to write in the transfer's remittance information, so that staff can match it.
    pub reference: BankReference,
}

/// The bank-transfer gateway.
#[derive(Debug, Clone)]
pub struct ManualGateway {
    account: BankAccount,
}

impl ManualGateway {
    /// A gateway that asks customers to transfer to `account`.
    pub fn new(account: BankAccount) -> Self {
        Self { account }
    }

    /// The bank-transfer instructions of a top-up. No remote call; the same payment always gets
    /// the same reference.
    ///
    /// # Errors
    /// [`GatewayError::AmountNotChargeable`] when the amount is not positive or is finer than the
    /// currency's minor unit (a bank cannot transfer it).
    pub fn checkout(
        &self,
        payment_id: &PaymentId,
        amount: Money,
    ) -> Result<BankTransferInstructions, GatewayError> {
        chargeable_minor_units(amount)?;
        Ok(BankTransferInstructions {
            beneficiary: self.account.beneficiary.clone(),
            iban: self.account.iban.clone(),
            bic: self.account.bic.clone(),
            amount,
            reference: BankReference::for_payment(payment_id),
        })
    }
}

impl PaymentGateway for ManualGateway {
    fn kind(&self) -> GatewayKind {
        GatewayKind::Manual
    }

    /// The "intent" of a bank transfer: its reference as the id, `requires_action` (the
    /// customer must send the money) and the instructions as the checkout.
    fn create_intent(&self, request: IntentRequest) -> BoxFuture<'_, Result<Intent, GatewayError>> {
        let intent = self
            .checkout(&request.payment_id, request.amount)
            .map(|instructions| Intent {
                // A reference is `STR-` and alphanumerics: always a valid intent id.
                id: IntentId(instructions.reference.as_str().to_owned()),
                status: IntentStatus::RequiresAction,
                amount: request.amount,
                payment_id: Some(request.payment_id),
                checkout: Some(Checkout::BankTransfer(instructions)),
            });
        Box::pin(futures::future::ready(intent))
    }

    /// Unsupported: a bank transfer has no remote state; the wallet's top-up is the record.
    fn retrieve_intent<'a>(
        &'a self,
        _id: &'a IntentId,
    ) -> BoxFuture<'a, Result<Intent, GatewayError>> {
        Box::pin(futures::future::ready(Err(GatewayError::Unsupported {
            gateway: GatewayKind::Manual,
            operation: "retrieve_intent",
        })))
    }

    /// Unsupported: there is nothing remote to cancel; failing the wallet's top-up is enough.
    fn cancel_intent<'a>(
        &'a self,
        _id: &'a IntentId,
    ) -> BoxFuture<'a, Result<Intent, GatewayError>> {
        Box::pin(futures::future::ready(Err(GatewayError::Unsupported {
            gateway: GatewayKind::Manual,
            operation: "cancel_intent",
        })))
    }
}

#[cfg(test)]
mod tests;
