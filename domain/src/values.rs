//! Parse-don't-validate value types.
//!
//! Every type here has private fields and a fallible constructor; holding one is proof that the
//! input passed the rules, so aggregates and handlers never re-check. Deserialising goes through the
//! same constructor (`#[serde(try_from = "String")]`), so an event or request body cannot smuggle in
//! an invalid value either.
//!
//! [`Money`] has its own error type, [`MoneyError`], because arithmetic fails too, not only parsing.
//!
//! Passwords are the exception: the plaintext must never be stored or enter an event, so there is
//! no `Password` type, only the pure policy [`check_password_strength`].

mod email;
mod error;
mod kyc;
mod ledger_reference;
mod money;
mod password;
mod person_name;
mod phone;
mod role;

pub use email::{Email, EmailProblem, EMAIL_LOCAL_PART_MAX_CHARS, EMAIL_MAX_CHARS};
pub use error::ValueError;
pub use kyc::{
    Country, NationalId, Reason, NATIONAL_ID_MAX_CHARS, NATIONAL_ID_MIN_CHARS, REASON_MAX_CHARS,
};
pub use ledger_reference::{LedgerReference, LEDGER_REFERENCE_MAX_CHARS};
pub use money::{Currency, Money, MoneyError, MICROS_PER_UNIT, MONEY_DECIMALS};
pub use password::{
    check_password_strength, PASSWORD_EMAIL_LOCAL_PART_MIN_CHARS, PASSWORD_MAX_CHARS,
    PASSWORD_MIN_CHARS,
};
pub use person_name::{NameProblem, PersonName, PERSON_NAME_MAX_CHARS};
pub use phone::{Phone, PhoneProblem, PHONE_MAX_DIGITS, PHONE_MIN_DIGITS};
pub use role::Role;
