//! Reading catalog request bodies into domain values, collecting a field error (with its JSON
//! path, `prices.monthly.amount`, `custom.min.vcpus`, `datacenter_ids[0]`) for every problem
//! instead of stopping at the first.
//!
//! Prices are exact (up to six decimals: an hourly price may be finer than a cent) and must be in
//! the settlement currency. Percentages are decimal strings (`"7.5"`).

use serde_json::{Map, Value};
use stratus_domain::catalog::{
    describe_bounds_problems, CatalogValueError, PlanDatacenters, PlanResources,
};
use stratus_domain::pricing::{
    CustomPricing, Percent, PeriodDiscounts, PeriodPrice, PriceTable, PricingError, Resource,
    ResourceBounds, Resources, UnitPrices,
};
use stratus_domain::{Currency, DatacenterId, Money, MoneyError};

use crate::error::FieldError;

/// `path.key`, or `key` at the top.
pub(crate) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// Collects the field errors of one body.
#[derive(Debug, Default)]
pub(crate) struct Reader {
    pub errors: Vec<FieldError>,
}

/// A field of a PATCH body: absent (unchanged), `null`, or a value.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Patch<'a> {
    Absent,
    Null,
    Value(&'a Value),
}

/// Reads a PATCH field.
pub(crate) fn patch<'a>(body: &'a Map<String, Value>, key: &str) -> Patch<'a> {
    match body.get(key) {
        None => Patch::Absent,
        Some(Value::Null) => Patch::Null,
        Some(value) => Patch::Value(value),
    }
}

impl Reader {
    fn push(&mut self, field: impl Into<String>, code: &str, message: impl Into<String>) {
        self.errors
            .push(FieldError::new(field, code.to_owned(), message.into()));
    }

    /// A field error for a refused catalog value.
    pub fn refuse(&mut self, field: &str, err: &CatalogValueError) {
        self.push(field, err.code(), err.to_string());
    }

    /// Flags every key of `object` that is not in `allowed`.
    pub fn only(&mut self, path: &str, object: &Map<String, Value>, allowed: &[&str]) {
        for key in object.keys() {
            if !allowed.contains(&key.as_str()) {
                self.push(
                    join(path, key),
                    "unknown_field",
                    format!("not a field here; expected one of {}", allowed.join(", ")),
                );
            }
        }
    }

    /// A PATCH field that must not be sent (it cannot change).
    pub fn immutable(&mut self, body: &Map<String, Value>, key: &str, why: &str) {
        if body.contains_key(key) {
            self.push(key, "immutable_field", why);
        }
    }

    /// `value` as a JSON object whose keys are all `allowed`.
    pub fn object<'a>(
        &mut self,
        path: &str,
        value: Option<&'a Value>,
        allowed: &[&str],
    ) -> Option<&'a Map<String, Value>> {
        match value {
            None | Some(Value::Null) => {
                self.errors.push(FieldError::required(path));
                None
            }
            Some(Value::Object(object)) => {
                self.only(path, object, allowed);
                Some(object)
            }
            Some(_) => {
                self.push(path, "invalid_type", "expected an object");
                None
            }
        }
    }

    /// A required text field parsed by `parse`.
    pub fn text<T>(
        &mut self,
        path: &str,
        value: Option<&Value>,
        parse: impl FnOnce(&str) -> Result<T, CatalogValueError>,
    ) -> Option<T> {
        let text = self.string(path, value)?;
        match parse(text) {
            Ok(parsed) => Some(parsed),
            Err(e) => {
                self.refuse(path, &e);
                None
            }
        }
    }

    /// A required ISO country code.
    pub fn country(
        &mut self,
        path: &str,
        value: Option<&Value>,
    ) -> Option<stratus_domain::Country> {
        let text = self.string(path, value)?;
        match stratus_domain::Country::parse(text) {
            Ok(country) => Some(country),
            Err(e) => {
                self.errors.push(FieldError::from_value(path, &e));
                None
            }
        }
    }

    fn string<'a>(&mut self, path: &str, value: Option<&'a Value>) -> Option<&'a str> {
        match value {
            None | Some(Value::Null) => {
                self.errors.push(FieldError::required(path));
                None
            }
            Some(Value::String(text)) => Some(text),
            Some(_) => {
                self.push(path, "invalid_type", "expected a string");
                None
            }
        }
    }

    /// A boolean; `default` when absent.
    pub fn boolean(&mut self, path: &str, value: Option<&Value>, default: bool) -> Option<bool> {
        match value {
            None => Some(default),
            Some(Value::Bool(flag)) => Some(*flag),
            Some(_) => {
                self.push(path, "invalid_type", "expected true or false");
                None
            }
        }
    }

    /// A required whole number from 0 to `u32::MAX`.
    pub fn count(&mut self, path: &str, value: Option<&Value>) -> Option<u32> {
        match value {
            None | Some(Value::Null) => {
                self.errors.push(FieldError::required(path));
                None
            }
            Some(value) => match value.as_u64().and_then(|n| u32::try_from(n).ok()) {
                Some(n) => Some(n),
                None => {
                    self.push(
                        path,
                        "invalid_count",
                        format!("expected a whole number from 0 to {}", u32::MAX),
                    );
                    None
                }
            },
        }
    }

    /// `{vcpus, memory_mib, disk_gib, ipv4, traffic_gib}`, every one required.
    pub fn resources(&mut self, path: &str, value: Option<&Value>) -> Option<Resources> {
        let fields: Vec<&str> = Resource::ALL.iter().map(Resource::field).collect();
        let object = self.object(path, value, &fields)?;
        let mut read = |resource: Resource| {
            let field = resource.field();
            self.count(&join(path, field), object.get(field))
        };
        // Every field is read before any `?`, so that each problem is reported.
        let [vcpus, memory_mib, disk_gib, ipv4, traffic_gib] = Resource::ALL.map(&mut read);
        Some(Resources {
            vcpus: vcpus?,
            memory_mib: memory_mib?,
            disk_gib: disk_gib?,
            ipv4: ipv4?,
            traffic_gib: traffic_gib?,
        })
    }

    /// A plan's resources, each within the plan limits.
    pub fn plan_resources(&mut self, path: &str, value: Option<&Value>) -> Option<PlanResources> {
        let resources = self.resources(path, value)?;
        match PlanResources::new(resources) {
            Ok(resources) => Some(resources),
            Err(CatalogValueError::ResourcesOutOfBounds(problems)) => {
                for (resource, problem) in problems {
                    self.push(
                        join(path, resource.field()),
                        "out_of_bounds",
                        problem.to_string(),
                    );
                }
                None
            }
            Err(other) => {
                self.refuse(path, &other);
                None
            }
        }
    }

    /// An exact amount in `settlement`: `{"amount": "0.012", "currency": "EUR"}` (or a bare
    /// decimal string in `settlement`). Positive, or with `zero_allowed` not negative.
    pub fn price(
        &mut self,
        path: &str,
        value: Option<&Value>,
        settlement: Currency,
        zero_allowed: bool,
    ) -> Option<Money> {
        let amount_path = join(path, "amount");
        let (text, text_path, currency) = match value {
            None | Some(Value::Null) => {
                self.errors.push(FieldError::required(path));
                return None;
            }
            Some(Value::String(text)) => (text.as_str(), path.to_owned(), settlement),
            Some(Value::Object(object)) => {
                self.only(path, object, &["amount", "currency"]);
                let Some(Value::String(text)) = object.get("amount") else {
                    self.push(
                        amount_path,
                        "invalid_amount",
                        "the amount is a decimal string such as \"7.00\"",
                    );
                    return None;
                };
                let currency = match object.get("currency") {
                    None | Some(Value::Null) => settlement,
                    Some(Value::String(code)) => match Currency::parse(code) {
                        Ok(currency) => currency,
                        Err(e) => {
                            self.push(join(path, "currency"), e.code(), e.to_string());
                            return None;
                        }
                    },
                    Some(_) => {
                        self.push(
                            join(path, "currency"),
                            "invalid_currency",
                            "the currency is an ISO 4217 code such as \"EUR\"",
                        );
                        return None;
                    }
                };
                (text.as_str(), amount_path, currency)
            }
            Some(_) => {
                self.push(
                    path,
                    "invalid_amount",
                    "a price is {\"amount\": \"7.00\", \"currency\": \"EUR\"}, never a JSON number",
                );
                return None;
            }
        };
        if currency != settlement {
            let err = MoneyError::CurrencyMismatch {
                expected: settlement,
                found: currency,
            };
            self.push(join(path, "currency"), err.code(), err.to_string());
            return None;
        }
        let money = match Money::from_decimal_str(text, currency) {
            Ok(money) => money,
            Err(e) => {
                self.push(text_path, e.code(), e.to_string());
                return None;
            }
        };
        let refusal = if money.is_negative() {
            Some(PricingError::PriceNegative)
        } else if money.is_zero() && !zero_allowed {
            Some(PricingError::PriceNotPositive)
        } else {
            None
        };
        if let Some(err) = refusal {
            self.push(text_path, err.code(), err.to_string());
            return None;
        }
        Some(money)
    }

    /// A percentage as a decimal string; zero when absent or `null`.
    pub fn percent(&mut self, path: &str, value: Option<&Value>) -> Option<Percent> {
        match value {
            None | Some(Value::Null) => Some(Percent::ZERO),
            Some(Value::String(text)) => match Percent::parse(text) {
                Ok(percent) => Some(percent),
                Err(e) => {
                    self.push(path, e.code(), e.to_string());
                    None
                }
            },
            Some(_) => {
                let err = PricingError::InvalidPercent;
                self.push(
                    path,
                    err.code(),
                    format!("{err}, as a string such as \"7.5\""),
                );
                None
            }
        }
    }

    /// A longer period's rule: `{"discount_percent": "5"}` or `{"price": money}`; no discount
    /// when absent or `null`.
    fn period_price(
        &mut self,
        path: &str,
        value: Option<&Value>,
        settlement: Currency,
    ) -> Option<PeriodPrice> {
        let Some(value) = value.filter(|v| !v.is_null()) else {
            return Some(PeriodPrice::Discount {
                percent: Percent::ZERO,
            });
        };
        let object = self.object(path, Some(value), &["discount_percent", "price"])?;
        match (object.get("discount_percent"), object.get("price")) {
            (Some(discount), None) => {
                let percent = self.percent(&join(path, "discount_percent"), Some(discount))?;
                Some(PeriodPrice::Discount { percent })
            }
            (None, Some(price)) => {
                let amount = self.price(&join(path, "price"), Some(price), settlement, false)?;
                Some(PeriodPrice::Price { amount })
            }
            _ => {
                self.push(
                    path,
                    "invalid_period_price",
                    "give exactly one of discount_percent or price",
                );
                None
            }
        }
    }

    /// A plan's price table: `hourly` and `monthly` amounts, and optional rules for `quarterly`,
    /// `semiannual` and `annual`.
    pub fn price_table(
        &mut self,
        path: &str,
        value: Option<&Value>,
        settlement: Currency,
    ) -> Option<PriceTable> {
        let object = self.object(
            path,
            value,
            &["hourly", "monthly", "quarterly", "semiannual", "annual"],
        )?;
        let hourly = self.price(
            &join(path, "hourly"),
            object.get("hourly"),
            settlement,
            false,
        );
        let monthly = self.price(
            &join(path, "monthly"),
            object.get("monthly"),
            settlement,
            false,
        );
        let mut rule = |key: &str| self.period_price(&join(path, key), object.get(key), settlement);
        let quarterly = rule("quarterly");
        let semiannual = rule("semiannual");
        let annual = rule("annual");
        let table = PriceTable::new(hourly?, monthly?, quarterly?, semiannual?, annual?);
        match table {
            Ok(table) => Some(table),
            Err(e) => {
                self.push(path, e.code(), e.to_string());
                None
            }
        }
    }

    /// A datacenter's custom pricing: `unit_prices`, `min`, `max` and optional
    /// `period_discounts`.
    pub fn custom_pricing(
        &mut self,
        path: &str,
        value: Option<&Value>,
        settlement: Currency,
    ) -> Option<CustomPricing> {
        let object = self.object(
            path,
            value,
            &["unit_prices", "min", "max", "period_discounts"],
        )?;
        let unit_prices = self.unit_prices(
            &join(path, "unit_prices"),
            object.get("unit_prices"),
            settlement,
        );
        let min = self.resources(&join(path, "min"), object.get("min"));
        let max = self.resources(&join(path, "max"), object.get("max"));
        let discounts = self.period_discounts(
            &join(path, "period_discounts"),
            object.get("period_discounts"),
        );
        let bounds = ResourceBounds {
            min: min?,
            max: max?,
        };
        let problems = describe_bounds_problems(&bounds);
        for problem in &problems {
            let field = join(&join(path, problem.side.field()), problem.resource.field());
            self.push(field, "invalid_bounds", problem.message);
        }
        if !problems.is_empty() {
            return None;
        }
        match CustomPricing::new(unit_prices?, bounds, discounts?) {
            Ok(pricing) => Some(pricing),
            Err(e) => {
                self.push(path, e.code(), e.to_string());
                None
            }
        }
    }

    fn unit_prices(
        &mut self,
        path: &str,
        value: Option<&Value>,
        settlement: Currency,
    ) -> Option<UnitPrices> {
        let keys = ["vcpu", "memory_gib", "disk_gib", "ipv4", "traffic_gib"];
        let object = self.object(path, value, &keys)?;
        let mut read = |key: &str| self.price(&join(path, key), object.get(key), settlement, true);
        let (vcpu, memory_gib, disk_gib, ipv4, traffic_gib) = (
            read("vcpu"),
            read("memory_gib"),
            read("disk_gib"),
            read("ipv4"),
            read("traffic_gib"),
        );
        Some(UnitPrices {
            vcpu: vcpu?,
            memory_gib: memory_gib?,
            disk_gib: disk_gib?,
            ipv4: ipv4?,
            traffic_gib: traffic_gib?,
        })
    }

    fn period_discounts(&mut self, path: &str, value: Option<&Value>) -> Option<PeriodDiscounts> {
        let Some(value) = value.filter(|v| !v.is_null()) else {
            return Some(PeriodDiscounts::default());
        };
        let object = self.object(path, Some(value), &["quarterly", "semiannual", "annual"])?;
        let mut read = |key: &str| self.percent(&join(path, key), object.get(key));
        let (quarterly, semiannual, annual) =
            (read("quarterly"), read("semiannual"), read("annual"));
        Some(PeriodDiscounts {
            quarterly: quarterly?,
            semiannual: semiannual?,
            annual: annual?,
        })
    }

    /// A non-empty array of datacenter ids, as given (order and repeats kept, for naming a
    /// problem by its index) and as the plan's set.
    pub fn datacenter_ids(
        &mut self,
        path: &str,
        value: Option<&Value>,
    ) -> Option<(Vec<DatacenterId>, PlanDatacenters)> {
        let items = match value {
            None | Some(Value::Null) => {
                self.errors.push(FieldError::required(path));
                return None;
            }
            Some(Value::Array(items)) => items,
            Some(_) => {
                self.push(path, "invalid_type", "expected an array of datacenter ids");
                return None;
            }
        };
        let mut ids = Vec::with_capacity(items.len());
        let mut valid = true;
        for (index, item) in items.iter().enumerate() {
            let parsed = item.as_str().map(str::parse::<DatacenterId>);
            match parsed {
                Some(Ok(id)) => ids.push(id),
                Some(Err(e)) => {
                    self.push(format!("{path}[{index}]"), e.code(), e.to_string());
                    valid = false;
                }
                None => {
                    self.push(
                        format!("{path}[{index}]"),
                        "invalid_id",
                        "expected a UUID string",
                    );
                    valid = false;
                }
            }
        }
        if !valid {
            return None;
        }
        match PlanDatacenters::new(ids.iter().copied()) {
            Ok(set) => Some((ids, set)),
            Err(e) => {
                self.refuse(path, &e);
                None
            }
        }
    }
}
