//! The payment part of [`crate::settings::Settings`]: the settlement currency, top-up bounds, and
//! the gateways (Stripe and bank transfer). A gateway without its settings is not offered.
//!
//! Environment variables: `STRATUS_CURRENCY` (ISO 4217, default `EUR`), `STRATUS_TOP_UP_MIN` and
//! `STRATUS_TOP_UP_MAX` (decimal amounts in that currency, default `1.00` and `10000.00`),
//! `STRATUS_STRIPE_SECRET_KEY`, `STRATUS_STRIPE_PUBLISHABLE_KEY`, `STRATUS_STRIPE_API_BASE`
//! (default Stripe's own), `STRATUS_STRIPE_WEBHOOK_SECRETS` (comma-separated, several during a
//! rotation), `STRATUS_BANK_BENEFICIARY`, `STRATUS_BANK_IBAN`, `STRATUS_BANK_BIC`. In the TOML
//! file the same names without the prefix sit under `[payments]`.

use serde::Deserialize;
use stratus_commands::payments::manual::BankAccount;
use stratus_domain::{Currency, Money};

use crate::settings::{Secret, SettingsError};

/// Default smallest top-up: below this, card fees eat the payment.
pub const DEFAULT_TOP_UP_MIN: &str = "1.00";
/// Default largest top-up: larger sums go through billing staff.
pub const DEFAULT_TOP_UP_MAX: &str = "10000.00";

/// How customers pay money in, and in which currency wallets are kept.
#[derive(Debug, Clone, PartialEq)]
pub struct PaymentSettings {
    pub currency: Currency,
    pub top_up_min: Money,
    pub top_up_max: Money,
    pub stripe_secret_key: Option<Secret>,
    pub stripe_publishable_key: Option<String>,
    pub stripe_api_base: Option<String>,
    pub stripe_webhook_secrets: Vec<Secret>,
    pub bank_beneficiary: Option<String>,
    pub bank_iban: Option<String>,
    pub bank_bic: Option<String>,
}

impl Default for PaymentSettings {
    fn default() -> Self {
        // The default amounts are constants known to parse (a unit test below checks them).
        let currency = Currency::EUR;
        Self {
            currency,
            top_up_min: Money::from_decimal_str(DEFAULT_TOP_UP_MIN, currency)
                .unwrap_or_else(|_| Money::zero(currency)),
            top_up_max: Money::from_decimal_str(DEFAULT_TOP_UP_MAX, currency)
                .unwrap_or_else(|_| Money::zero(currency)),
            stripe_secret_key: None,
            stripe_publishable_key: None,
            stripe_api_base: None,
            stripe_webhook_secrets: Vec::new(),
            bank_beneficiary: None,
            bank_iban: None,
            bank_bic: None,
        }
    }
}

/// The `[payments]` table of the settings file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PaymentsFileLayer {
    currency: Option<String>,
    top_up_min: Option<String>,
    top_up_max: Option<String>,
    stripe_secret_key: Option<Secret>,
    stripe_publishable_key: Option<String>,
    stripe_api_base: Option<String>,
    stripe_webhook_secrets: Option<Vec<Secret>>,
    bank_beneficiary: Option<String>,
    bank_iban: Option<String>,
    bank_bic: Option<String>,
}

/// Raw amounts are kept as text until the currency is known, then parsed in [`PaymentSettings::finish`].
#[derive(Debug, Default)]
pub(crate) struct PendingAmounts {
    min: Option<(&'static str, String)>,
    max: Option<(&'static str, String)>,
}

impl PaymentSettings {
    pub(crate) fn apply_file(
        &mut self,
        layer: PaymentsFileLayer,
        pending: &mut PendingAmounts,
    ) -> Result<(), SettingsError> {
        if let Some(code) = layer.currency {
            self.currency = parse_currency("payments.currency", &code)?;
        }
        if let Some(v) = layer.top_up_min {
            pending.min = Some(("payments.top_up_min", v));
        }
        if let Some(v) = layer.top_up_max {
            pending.max = Some(("payments.top_up_max", v));
        }
        set(&mut self.stripe_secret_key, layer.stripe_secret_key);
        set(
            &mut self.stripe_publishable_key,
            layer.stripe_publishable_key,
        );
        set(&mut self.stripe_api_base, layer.stripe_api_base);
        if let Some(secrets) = layer.stripe_webhook_secrets {
            self.stripe_webhook_secrets = secrets;
        }
        set(&mut self.bank_beneficiary, layer.bank_beneficiary);
        set(&mut self.bank_iban, layer.bank_iban);
        set(&mut self.bank_bic, layer.bank_bic);
        Ok(())
    }

    pub(crate) fn apply_env(
        &mut self,
        get: &dyn Fn(&str) -> Option<String>,
        pending: &mut PendingAmounts,
    ) -> Result<(), SettingsError> {
        if let Some(code) = get("STRATUS_CURRENCY") {
            self.currency = parse_currency("STRATUS_CURRENCY", &code)?;
        }
        if let Some(v) = get("STRATUS_TOP_UP_MIN") {
            pending.min = Some(("STRATUS_TOP_UP_MIN", v));
        }
        if let Some(v) = get("STRATUS_TOP_UP_MAX") {
            pending.max = Some(("STRATUS_TOP_UP_MAX", v));
        }
        set(
            &mut self.stripe_secret_key,
            get("STRATUS_STRIPE_SECRET_KEY").map(Secret::new),
        );
        set(
            &mut self.stripe_publishable_key,
            get("STRATUS_STRIPE_PUBLISHABLE_KEY"),
        );
        set(&mut self.stripe_api_base, get("STRATUS_STRIPE_API_BASE"));
        if let Some(list) = get("STRATUS_STRIPE_WEBHOOK_SECRETS") {
            self.stripe_webhook_secrets = list
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(Secret::new)
                .collect();
        }
        set(&mut self.bank_beneficiary, get("STRATUS_BANK_BENEFICIARY"));
        set(&mut self.bank_iban, get("STRATUS_BANK_IBAN"));
        set(&mut self.bank_bic, get("STRATUS_BANK_BIC"));
        Ok(())
    }

    /// Parses the top-up bounds in the final currency (defaults follow a changed currency) and
    /// checks that each gateway is either fully configured or not at all.
    pub(crate) fn finish(&mut self, pending: PendingAmounts) -> Result<(), SettingsError> {
        let (min_name, min) = pending
            .min
            .unwrap_or(("STRATUS_TOP_UP_MIN", DEFAULT_TOP_UP_MIN.to_owned()));
        let (max_name, max) = pending
            .max
            .unwrap_or(("STRATUS_TOP_UP_MAX", DEFAULT_TOP_UP_MAX.to_owned()));
        self.top_up_min = parse_amount(min_name, &min, self.currency)?;
        self.top_up_max = parse_amount(max_name, &max, self.currency)?;
        if self.top_up_max.micros() < self.top_up_min.micros() {
            return Err(SettingsError::Variable {
                name: "STRATUS_TOP_UP_MAX",
                message: "must not be below STRATUS_TOP_UP_MIN".to_owned(),
            });
        }
        if self.stripe_secret_key.is_some() && self.stripe_webhook_secrets.is_empty() {
            return Err(SettingsError::Variable {
                name: "STRATUS_STRIPE_WEBHOOK_SECRETS",
                message: "must be set with STRATUS_STRIPE_SECRET_KEY: without it no payment \
                          would ever be credited"
                    .to_owned(),
            });
        }
        let bank = [&self.bank_beneficiary, &self.bank_iban, &self.bank_bic];
        let given = bank.iter().filter(|v| v.is_some()).count();
        if given != 0 && given != bank.len() {
            return Err(SettingsError::Variable {
                name: "STRATUS_BANK_IBAN",
                message: "STRATUS_BANK_BENEFICIARY, STRATUS_BANK_IBAN and STRATUS_BANK_BIC \
                          go together"
                    .to_owned(),
            });
        }
        self.bank_account()?;
        Ok(())
    }

    /// The account bank transfers go to, when configured.
    pub fn bank_account(&self) -> Result<Option<BankAccount>, SettingsError> {
        let (Some(beneficiary), Some(iban), Some(bic)) =
            (&self.bank_beneficiary, &self.bank_iban, &self.bank_bic)
        else {
            return Ok(None);
        };
        BankAccount::new(beneficiary, iban, bic)
            .map(Some)
            .map_err(|e| SettingsError::Variable {
                name: "STRATUS_BANK_IBAN",
                message: e.to_string(),
            })
    }
}

fn set<T>(slot: &mut Option<T>, value: Option<T>) {
    if value.is_some() {
        *slot = value;
    }
}

fn parse_currency(name: &'static str, code: &str) -> Result<Currency, SettingsError> {
    Currency::parse(code).map_err(|e| SettingsError::Variable {
        name,
        message: e.to_string(),
    })
}

fn parse_amount(
    name: &'static str,
    text: &str,
    currency: Currency,
) -> Result<Money, SettingsError> {
    Money::from_client_input(text, currency)
        .and_then(Money::require_positive)
        .map_err(|e| SettingsError::Variable {
            name,
            message: e.to_string(),
        })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: std::collections::HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    fn load(pairs: &[(&str, &str)]) -> Result<PaymentSettings, SettingsError> {
        let mut settings = PaymentSettings::default();
        let mut pending = PendingAmounts::default();
        settings.apply_env(&env(pairs), &mut pending)?;
        settings.finish(pending)?;
        Ok(settings)
    }

    #[test]
    fn the_defaults_are_euro_with_bounds_and_no_gateway() {
        let settings = load(&[]).unwrap();
        assert_eq!(settings.currency.code(), "EUR");
        assert_eq!(settings.top_up_min.to_decimal_string(), "1.000000");
        assert_eq!(settings.top_up_max.to_decimal_string(), "10000.000000");
        assert!(settings.stripe_secret_key.is_none());
        assert!(settings.bank_account().unwrap().is_none());
    }

    #[test]
    fn the_bounds_follow_the_configured_currency() {
        let settings = load(&[("STRATUS_CURRENCY", "JPY"), ("STRATUS_TOP_UP_MIN", "100")]).unwrap();
        assert_eq!(settings.top_up_min.currency().code(), "JPY");
        assert_eq!(settings.top_up_max.currency().code(), "JPY");
        let err = load(&[("STRATUS_CURRENCY", "JPY"), ("STRATUS_TOP_UP_MIN", "1.50")]).unwrap_err();
        assert!(err.to_string().contains("STRATUS_TOP_UP_MIN"), "{err}");
    }

    #[test]
    fn bad_payment_settings_name_the_variable() {
        let cases: [(&[(&str, &str)], &str); 5] = [
            (&[("STRATUS_CURRENCY", "XXY")], "STRATUS_CURRENCY"),
            (&[("STRATUS_TOP_UP_MIN", "-1")], "STRATUS_TOP_UP_MIN"),
            (
                &[("STRATUS_TOP_UP_MIN", "50"), ("STRATUS_TOP_UP_MAX", "10")],
                "STRATUS_TOP_UP_MAX",
            ),
            (
                &[("STRATUS_STRIPE_SECRET_KEY", "sk_test_1")],
                "STRATUS_STRIPE_WEBHOOK_SECRETS",
            ),
            (
                &[("STRATUS_BANK_IBAN", "DE89370400440532013000")],
                "STRATUS_BANK_IBAN",
            ),
        ];
        for (pairs, name) in cases {
            let err = load(pairs).unwrap_err();
            assert!(err.to_string().contains(name), "{pairs:?}: {err}");
        }
    }

    #[test]
    fn webhook_secrets_are_a_comma_separated_list() {
        let settings = load(&[
            ("STRATUS_STRIPE_SECRET_KEY", "sk_test_1"),
            ("STRATUS_STRIPE_WEBHOOK_SECRETS", "whsec_new, whsec_old,"),
        ])
        .unwrap();
        let secrets: Vec<&str> = settings
            .stripe_webhook_secrets
            .iter()
            .map(Secret::expose)
            .collect();
        assert_eq!(secrets, ["whsec_new", "whsec_old"]);
    }
}
