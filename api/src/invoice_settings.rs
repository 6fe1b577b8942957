//! The invoicing part of [`crate::settings::Settings`]: the seller printed on every invoice.
//!
//! Environment variables: `STRATUS_INVOICE_SELLER_NAME` (default `Stratus`),
//! `STRATUS_INVOICE_SELLER_ADDRESS` (lines separated by line breaks or `;`),
//! `STRATUS_INVOICE_SELLER_VAT_ID`. In the TOML file the same names without the prefix sit under
//! `[invoicing]` (`seller_name`, `seller_address`, `seller_vat_id`).

use serde::Deserialize;

use crate::settings::SettingsError;

/// The seller's name when none is configured: neutral, so that a development invoice never looks
/// like a real company's.
pub const DEFAULT_SELLER_NAME: &str = "Stratus";
/// Longest seller name, address or VAT id accepted, in characters (each must fit on the page).
pub const SELLER_TEXT_MAX_CHARS: usize = 300;

/// Who issues the invoices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoiceSettings {
    pub seller_name: String,
    /// Lines separated by line breaks (`;` in the settings is read as a line break).
    pub seller_address: Option<String>,
    pub seller_vat_id: Option<String>,
}

impl Default for InvoiceSettings {
    fn default() -> Self {
        Self {
            seller_name: DEFAULT_SELLER_NAME.to_owned(),
            seller_address: None,
            seller_vat_id: None,
        }
    }
}

/// The `[invoicing]` table of the settings file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct InvoicingFileLayer {
    seller_name: Option<String>,
    seller_address: Option<String>,
    seller_vat_id: Option<String>,
}

impl InvoiceSettings {
    pub(crate) fn apply_file(&mut self, layer: InvoicingFileLayer) {
        self.apply(layer.seller_name, layer.seller_address, layer.seller_vat_id);
    }

    pub(crate) fn apply_env(&mut self, get: &dyn Fn(&str) -> Option<String>) {
        self.apply(
            get("STRATUS_INVOICE_SELLER_NAME"),
            get("STRATUS_INVOICE_SELLER_ADDRESS"),
            get("STRATUS_INVOICE_SELLER_VAT_ID"),
        );
    }

    fn apply(&mut self, name: Option<String>, address: Option<String>, vat_id: Option<String>) {
        if let Some(name) = name {
            self.seller_name = name.trim().to_owned();
        }
        if let Some(address) = address {
            let lines: Vec<&str> = address
                .split(['\n', ';'])
                .map(str::trim)
                .filter(|line| !line.is_empty())
                .collect();
            self.seller_address = Some(lines.join("\n")).filter(|a| !a.is_empty());
        }
        if let Some(vat_id) = vat_id {
            self.seller_vat_id = Some(vat_id.trim().to_owned()).filter(|v| !v.is_empty());
        }
    }

    pub(crate) fn check(&self) -> Result<(), SettingsError> {
        let fields = [
            ("STRATUS_INVOICE_SELLER_NAME", Some(&self.seller_name)),
            (
                "STRATUS_INVOICE_SELLER_ADDRESS",
                self.seller_address.as_ref(),
            ),
            ("STRATUS_INVOICE_SELLER_VAT_ID", self.seller_vat_id.as_ref()),
        ];
        for (name, value) in fields {
            let Some(value) = value else { continue };
            let bad = value.chars().count() > SELLER_TEXT_MAX_CHARS
                || value.chars().any(|c| c.is_control() && c != '\n');
            if bad {
                return Err(SettingsError::Variable {
                    name,
                    message: format!(
                        "at most {SELLER_TEXT_MAX_CHARS} characters without control characters"
                    ),
                });
            }
        }
        if self.seller_name.is_empty() {
            return Err(SettingsError::Variable {
                name: "STRATUS_INVOICE_SELLER_NAME",
                message: "must not be blank".to_owned(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::collections::HashMap;

    use crate::settings::Settings;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn the_seller_defaults_to_a_neutral_name_without_address_or_vat_id() {
        let s = Settings::from_sources(None, &HashMap::new()).unwrap();

        assert_eq!(s.invoicing.seller_name, "Stratus");
        assert_eq!(s.invoicing.seller_address, None);
        assert_eq!(s.invoicing.seller_vat_id, None);
    }

    #[test]
    fn the_seller_comes_from_the_file_and_the_environment() {
        let dir =
            std::env::temp_dir().join(format!("stratus-settings-invoice-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("stratus.toml");
        std::fs::write(
            &file,
            "[invoicing]\nseller_name = \"Example Hosting GmbH\"\nseller_vat_id = \"DE123456789\"\n",
        )
        .unwrap();

        let s = Settings::from_sources(
            Some(&file),
            &env(&[(
                "STRATUS_INVOICE_SELLER_ADDRESS",
                "Hauptstr. 1; 10115 Berlin ;Germany",
            )]),
        )
        .unwrap();
        std::fs::remove_dir_all(&dir).ok();

        assert_eq!(s.invoicing.seller_name, "Example Hosting GmbH");
        assert_eq!(
            s.invoicing.seller_address.as_deref(),
            Some("Hauptstr. 1\n10115 Berlin\nGermany")
        );
        assert_eq!(s.invoicing.seller_vat_id.as_deref(), Some("DE123456789"));
    }

    #[test]
    fn a_blank_or_oversized_seller_names_the_variable() {
        let long = "x".repeat(super::SELLER_TEXT_MAX_CHARS + 1);
        for (name, value) in [
            ("STRATUS_INVOICE_SELLER_NAME", "   "),
            ("STRATUS_INVOICE_SELLER_NAME", long.as_str()),
            ("STRATUS_INVOICE_SELLER_VAT_ID", "DE\u{7}1"),
        ] {
            let err = Settings::from_sources(None, &env(&[(name, value)])).unwrap_err();
            assert!(err.to_string().contains(name), "{err}");
        }
    }
}
