//! The ordering part of [`crate::settings::Settings`]: how long an unpaid order may be paid, how
//! often expired orders are swept, and the VAT rates per country.
//!
//! Environment variables: `STRATUS_ORDER_PAYMENT_WINDOW_MINUTES` (default 1440, a day),
//! `STRATUS_ORDER_EXPIRY_SWEEP_SECONDS` (default 60), `STRATUS_TAX_HOME_COUNTRY` (the provider's
//! country, whose VAT applies when the customer's is unknown; unset: none), `STRATUS_VAT_RATES`
//! (`DE=19,FR=20,NL=21`; a country without a rate pays no VAT). In the TOML file the same names
//! without the prefix sit under `[orders]`, with `vat_rates` as a table (`DE = "19"`).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use stratus_commands::orders::TaxPolicy;
use stratus_domain::pricing::Percent;
use stratus_domain::Country;

use crate::settings::SettingsError;

/// Default time to pay an order: a day covers a customer who tops up by card later the same day.
pub const DEFAULT_PAYMENT_WINDOW_MINUTES: u32 = 24 * 60;
/// Longest payment window accepted: 30 days; longer holds catalog capacity and codes too long.
pub const MAX_PAYMENT_WINDOW_MINUTES: u32 = 30 * 24 * 60;
/// Default pause between expiry sweeps: an order expires at most a minute late.
pub const DEFAULT_EXPIRY_SWEEP_SECONDS: u32 = 60;

/// Ordering settings.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderSettings {
    pub payment_window_minutes: u32,
    pub expiry_sweep_seconds: u32,
    pub tax_home_country: Option<Country>,
    pub vat_rates: BTreeMap<Country, Percent>,
}

impl Default for OrderSettings {
    fn default() -> Self {
        Self {
            payment_window_minutes: DEFAULT_PAYMENT_WINDOW_MINUTES,
            expiry_sweep_seconds: DEFAULT_EXPIRY_SWEEP_SECONDS,
            tax_home_country: None,
            vat_rates: BTreeMap::new(),
        }
    }
}

/// The `[orders]` table of the settings file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct OrdersFileLayer {
    payment_window_minutes: Option<u32>,
    expiry_sweep_seconds: Option<u32>,
    tax_home_country: Option<String>,
    vat_rates: Option<BTreeMap<String, String>>,
}

impl OrderSettings {
    /// The payment window as a duration.
    pub fn payment_window(&self) -> Duration {
        Duration::from_secs(u64::from(self.payment_window_minutes) * 60)
    }

    /// The pause between expiry sweeps.
    pub fn expiry_sweep(&self) -> Duration {
        Duration::from_secs(u64::from(self.expiry_sweep_seconds))
    }

    /// The tax policy the ordering service applies.
    pub fn tax_policy(&self) -> TaxPolicy {
        TaxPolicy {
            home_country: self.tax_home_country.clone(),
            rates: self.vat_rates.clone(),
        }
    }

    pub(crate) fn apply_file(&mut self, layer: OrdersFileLayer) -> Result<(), SettingsError> {
        if let Some(minutes) = layer.payment_window_minutes {
            self.payment_window_minutes = minutes;
        }
        if let Some(seconds) = layer.expiry_sweep_seconds {
            self.expiry_sweep_seconds = seconds;
        }
        if let Some(country) = layer.tax_home_country {
            self.tax_home_country = Some(parse_country("orders.tax_home_country", &country)?);
        }
        if let Some(rates) = layer.vat_rates {
            self.vat_rates = rates
                .iter()
                .map(|(country, rate)| parse_rate("orders.vat_rates", country, rate))
                .collect::<Result<_, _>>()?;
        }
        Ok(())
    }

    pub(crate) fn apply_env(
        &mut self,
        get: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(), SettingsError> {
        if let Some(text) = get("STRATUS_ORDER_PAYMENT_WINDOW_MINUTES") {
            self.payment_window_minutes =
                parse_number("STRATUS_ORDER_PAYMENT_WINDOW_MINUTES", &text)?;
        }
        if let Some(text) = get("STRATUS_ORDER_EXPIRY_SWEEP_SECONDS") {
            self.expiry_sweep_seconds = parse_number("STRATUS_ORDER_EXPIRY_SWEEP_SECONDS", &text)?;
        }
        if let Some(country) = get("STRATUS_TAX_HOME_COUNTRY") {
            self.tax_home_country = Some(parse_country("STRATUS_TAX_HOME_COUNTRY", &country)?);
        }
        if let Some(list) = get("STRATUS_VAT_RATES") {
            self.vat_rates = list
                .split(',')
                .map(str::trim)
                .filter(|pair| !pair.is_empty())
                .map(|pair| {
                    let (country, rate) = pair.split_once('=').ok_or(SettingsError::Variable {
                        name: "STRATUS_VAT_RATES",
                        message: format!("{pair:?} is not COUNTRY=RATE, e.g. DE=19"),
                    })?;
                    parse_rate("STRATUS_VAT_RATES", country.trim(), rate.trim())
                })
                .collect::<Result<_, _>>()?;
        }
        Ok(())
    }

    pub(crate) fn check(&self) -> Result<(), SettingsError> {
        if self.payment_window_minutes == 0
            || self.payment_window_minutes > MAX_PAYMENT_WINDOW_MINUTES
        {
            return Err(SettingsError::Variable {
                name: "STRATUS_ORDER_PAYMENT_WINDOW_MINUTES",
                message: format!("must be from 1 to {MAX_PAYMENT_WINDOW_MINUTES}"),
            });
        }
        if self.expiry_sweep_seconds == 0 {
            return Err(SettingsError::Variable {
                name: "STRATUS_ORDER_EXPIRY_SWEEP_SECONDS",
                message: "must be at least 1".to_owned(),
            });
        }
        Ok(())
    }
}

fn parse_number(name: &'static str, text: &str) -> Result<u32, SettingsError> {
    text.trim().parse().map_err(|_| SettingsError::Variable {
        name,
        message: format!("{text:?} is not a whole number"),
    })
}

fn parse_country(name: &'static str, text: &str) -> Result<Country, SettingsError> {
    Country::parse(text).map_err(|e| SettingsError::Variable {
        name,
        message: e.to_string(),
    })
}

fn parse_rate(
    name: &'static str,
    country: &str,
    rate: &str,
) -> Result<(Country, Percent), SettingsError> {
    let country = parse_country(name, country)?;
    let rate = Percent::parse(rate).map_err(|e| SettingsError::Variable {
        name,
        message: format!("the rate of {country}: {e}"),
    })?;
    Ok((country, rate))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::collections::HashMap;

    use super::*;

    fn from_env(pairs: &[(&str, &str)]) -> Result<OrderSettings, SettingsError> {
        let env: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let mut settings = OrderSettings::default();
        settings.apply_env(&|name| env.get(name).cloned())?;
        settings.check()?;
        Ok(settings)
    }

    #[test]
    fn vat_rates_and_the_home_country_are_read_from_the_environment() {
        let settings = from_env(&[
            ("STRATUS_VAT_RATES", "DE=19, fr=20,NL=21,"),
            ("STRATUS_TAX_HOME_COUNTRY", "de"),
            ("STRATUS_ORDER_PAYMENT_WINDOW_MINUTES", "90"),
        ])
        .unwrap();

        let de = Country::parse("DE").unwrap();
        assert_eq!(settings.vat_rates.len(), 3);
        assert_eq!(settings.vat_rates[&de], Percent::parse("19").unwrap());
        assert_eq!(settings.tax_home_country, Some(de.clone()));
        assert_eq!(settings.payment_window(), Duration::from_secs(90 * 60));
        let policy = settings.tax_policy();
        assert_eq!(policy.rate_for(None).country, Some(de));
        let us = Country::parse("US").unwrap();
        assert_eq!(policy.rate_for(Some(&us)).rate, Percent::ZERO);
    }

    #[test]
    fn malformed_ordering_settings_are_refused_by_name() {
        for (name, value) in [
            ("STRATUS_VAT_RATES", "DE19"),
            ("STRATUS_VAT_RATES", "XX=19"),
            ("STRATUS_VAT_RATES", "DE=101"),
            ("STRATUS_TAX_HOME_COUNTRY", "Germany"),
            ("STRATUS_ORDER_PAYMENT_WINDOW_MINUTES", "0"),
            ("STRATUS_ORDER_PAYMENT_WINDOW_MINUTES", "soon"),
            ("STRATUS_ORDER_PAYMENT_WINDOW_MINUTES", "50000"),
            ("STRATUS_ORDER_EXPIRY_SWEEP_SECONDS", "0"),
        ] {
            let error = from_env(&[(name, value)]).unwrap_err();
            assert!(
                matches!(error, SettingsError::Variable { name: n, .. } if n == name),
                "{name}={value}: {error}"
            );
        }
    }
}
