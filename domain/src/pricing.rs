//! Prices: the value types the catalog stores (a plan's [`PriceTable`], a datacenter's
//! [`CustomPricing`]), discount and tax inputs, and [`quote`], the one function that turns an
//! order's input into priced lines and totals.
//!
//! `POST /catalog/quote` and `POST /orders` both call [`quote`], and the invoice of an order holds
//! the [`Quote`] it returned, so a quote always equals the invoice of the order placed with the
//! same input.
//!
//! ## Rounding
//!
//! Catalog prices are exact micro-units. [`quote`] is where an invoice's amounts are made final
//! (DESIGN.md §5): unit prices stay exact (an hourly vCPU may cost 0.002740 EUR), and each line's
//! amount, the discount and the tax are rounded to the currency's minor unit, halves away from
//! zero. Subtotal, net and total are sums of rounded amounts, so a printed invoice always adds up.
//!
//! ## Billing periods
//!
//! `monthly` is the reference price. `quarterly`, `semiannual` and `annual` are either their own
//! price or the monthly price times the months less a period discount. `hourly` is the hourly
//! price; an hourly order is invoiced for its first hour, and later hours are metered against the
//! wallet by the VM (see ADR 0009).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::values::{Country, Currency, Money, MoneyError};

/// Hours in a billing month (365 × 24 / 12), the divisor from a monthly to an hourly price.
pub const HOURS_PER_MONTH: i64 = 730;
/// MiB in one GiB: custom memory is sized in MiB and priced per GiB.
pub const MIB_PER_GIB: u32 = 1024;
/// Basis points in 100 %.
pub const BASIS_POINTS_PER_WHOLE: u32 = 10_000;

/// How long one invoice of an order covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BillingPeriod {
    Hourly,
    Monthly,
    Quarterly,
    Semiannual,
    Annual,
}

impl BillingPeriod {
    /// Every period, shortest first.
    pub const ALL: [BillingPeriod; 5] = [
        Self::Hourly,
        Self::Monthly,
        Self::Quarterly,
        Self::Semiannual,
        Self::Annual,
    ];

    /// The wire name (`"monthly"`).
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Hourly => "hourly",
            Self::Monthly => "monthly",
            Self::Quarterly => "quarterly",
            Self::Semiannual => "semiannual",
            Self::Annual => "annual",
        }
    }

    /// Parses a wire name.
    ///
    /// # Errors
    /// [`PricingError::UnknownBillingPeriod`].
    pub fn parse(input: &str) -> Result<Self, PricingError> {
        Self::ALL
            .into_iter()
            .find(|period| period.as_str() == input)
            .ok_or(PricingError::UnknownBillingPeriod)
    }

    /// Months the period covers; `None` for `hourly`.
    pub fn months(&self) -> Option<i64> {
        match self {
            Self::Hourly => None,
            Self::Monthly => Some(1),
            Self::Quarterly => Some(3),
            Self::Semiannual => Some(6),
            Self::Annual => Some(12),
        }
    }
}

impl fmt::Display for BillingPeriod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A percentage from 0 to 100 with at most two decimals, kept as basis points (`12.5 %` is 1250).
/// Serialised in events as the number of basis points; on the wire as a decimal string through
/// [`Percent::parse`] and [`Percent::to_decimal_string`].
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
#[serde(try_from = "u32", into = "u32")]
pub struct Percent(u32);

impl Percent {
    /// No percent.
    pub const ZERO: Percent = Percent(0);

    /// # Errors
    /// [`PricingError::InvalidPercent`] above 10 000 basis points.
    pub fn from_basis_points(basis_points: u32) -> Result<Self, PricingError> {
        if basis_points > BASIS_POINTS_PER_WHOLE {
            return Err(PricingError::InvalidPercent);
        }
        Ok(Self(basis_points))
    }

    /// Parses `"19"`, `"7.5"` or `"12.25"`: digits, optionally `.` and one or two digits, from 0
    /// to 100.
    ///
    /// # Errors
    /// [`PricingError::InvalidPercent`] for anything else.
    pub fn parse(input: &str) -> Result<Self, PricingError> {
        let (whole, fraction) = input.split_once('.').unwrap_or((input, ""));
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(whole) || whole.len() > 3 || (input.contains('.') && !digits(fraction)) {
            return Err(PricingError::InvalidPercent);
        }
        if fraction.len() > 2 {
            return Err(PricingError::InvalidPercent);
        }
        let whole: u32 = whole.parse().map_err(|_| PricingError::InvalidPercent)?;
        let mut hundredths: u32 = if fraction.is_empty() {
            0
        } else {
            fraction.parse().map_err(|_| PricingError::InvalidPercent)?
        };
        if fraction.len() == 1 {
            hundredths *= 10;
        }
        Self::from_basis_points(whole * 100 + hundredths)
    }

    /// The basis points (1 % is 100).
    pub fn basis_points(&self) -> u32 {
        self.0
    }

    /// `"19"`, `"7.5"`, `"12.25"`: the shortest decimal that [`Percent::parse`] reads back.
    pub fn to_decimal_string(&self) -> String {
        let whole = self.0 / 100;
        match self.0 % 100 {
            0 => whole.to_string(),
            hundredths if hundredths % 10 == 0 => format!("{whole}.{}", hundredths / 10),
            hundredths => format!("{whole}.{hundredths:02}"),
        }
    }

    /// `amount × self`, rounded to the nearest micro-unit.
    ///
    /// # Errors
    /// [`MoneyError::AmountOverflow`].
    pub fn of(&self, amount: Money) -> Result<Money, MoneyError> {
        amount.checked_scale(i64::from(self.0), i64::from(BASIS_POINTS_PER_WHOLE))
    }

    /// `amount × (100 % − self)`: what remains after a discount of `self`.
    ///
    /// # Errors
    /// [`MoneyError::AmountOverflow`].
    pub fn off(&self, amount: Money) -> Result<Money, MoneyError> {
        amount.checked_scale(
            i64::from(BASIS_POINTS_PER_WHOLE - self.0),
            i64::from(BASIS_POINTS_PER_WHOLE),
        )
    }
}

impl TryFrom<u32> for Percent {
    type Error = PricingError;
    fn try_from(value: u32) -> Result<Self, Self::Error> {
        Self::from_basis_points(value)
    }
}

impl From<Percent> for u32 {
    fn from(value: Percent) -> Self {
        value.0
    }
}

impl fmt::Display for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} %", self.to_decimal_string())
    }
}

/// The price of a quarterly, semiannual or annual period: its own amount, or the monthly price
/// times the months less a discount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PeriodPrice {
    /// This exact amount for the whole period.
    Price { amount: Money },
    /// `monthly × months × (100 % − percent)`.
    Discount { percent: Percent },
}

/// The prices of one plan in every billing period, all in one currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriceTable {
    hourly: Money,
    monthly: Money,
    quarterly: PeriodPrice,
    semiannual: PeriodPrice,
    annual: PeriodPrice,
}

impl PriceTable {
    /// # Errors
    /// [`PricingError::PriceNotPositive`] when a price is zero or negative,
    /// [`PricingError::CurrencyMismatch`] when the prices are not all in the monthly price's
    /// currency.
    pub fn new(
        hourly: Money,
        monthly: Money,
        quarterly: PeriodPrice,
        semiannual: PeriodPrice,
        annual: PeriodPrice,
    ) -> Result<Self, PricingError> {
        let table = Self {
            hourly,
            monthly,
            quarterly,
            semiannual,
            annual,
        };
        let currency = monthly.currency();
        let mut amounts = vec![hourly, monthly];
        for period in [quarterly, semiannual, annual] {
            if let PeriodPrice::Price { amount } = period {
                amounts.push(amount);
            }
        }
        for amount in amounts {
            if amount.currency() != currency {
                return Err(PricingError::CurrencyMismatch);
            }
            if !amount.is_positive() {
                return Err(PricingError::PriceNotPositive);
            }
        }
        Ok(table)
    }

    /// The currency of every price in the table.
    pub fn currency(&self) -> Currency {
        self.monthly.currency()
    }

    /// The price of one hour.
    pub fn hourly(&self) -> Money {
        self.hourly
    }

    /// The reference price of one month.
    pub fn monthly(&self) -> Money {
        self.monthly
    }

    /// How a period longer than a month is priced; `None` for `hourly` and `monthly`.
    pub fn period(&self, period: BillingPeriod) -> Option<PeriodPrice> {
        match period {
            BillingPeriod::Hourly | BillingPeriod::Monthly => None,
            BillingPeriod::Quarterly => Some(self.quarterly),
            BillingPeriod::Semiannual => Some(self.semiannual),
            BillingPeriod::Annual => Some(self.annual),
        }
    }

    /// The exact price of one `period` (before any rounding).
    ///
    /// # Errors
    /// [`PricingError::Money`] on overflow.
    pub fn price_for(&self, period: BillingPeriod) -> Result<Money, PricingError> {
        let months = match period.months() {
            None => return Ok(self.hourly),
            Some(1) => return Ok(self.monthly),
            Some(months) => months,
        };
        match self.period(period) {
            Some(PeriodPrice::Price { amount }) => Ok(amount),
            Some(PeriodPrice::Discount { percent }) => {
                Ok(percent.off(self.monthly.checked_mul(months)?)?)
            }
            None => Ok(self.monthly.checked_mul(months)?),
        }
    }
}

/// The size of a VM: what a plan fixes or a custom configuration asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Resources {
    pub vcpus: u32,
    pub memory_mib: u32,
    pub disk_gib: u32,
    pub ipv4: u32,
    pub traffic_gib: u32,
}

/// One resource of a [`Resources`], for naming the field a problem is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Resource {
    Vcpus,
    MemoryMib,
    DiskGib,
    Ipv4,
    TrafficGib,
}

impl Resource {
    /// Every resource, in the order of [`Resources`]' fields.
    pub const ALL: [Resource; 5] = [
        Self::Vcpus,
        Self::MemoryMib,
        Self::DiskGib,
        Self::Ipv4,
        Self::TrafficGib,
    ];

    /// The field name on the wire (`"memory_mib"`).
    pub fn field(&self) -> &'static str {
        match self {
            Self::Vcpus => "vcpus",
            Self::MemoryMib => "memory_mib",
            Self::DiskGib => "disk_gib",
            Self::Ipv4 => "ipv4",
            Self::TrafficGib => "traffic_gib",
        }
    }
}

impl Resources {
    /// The amount of `resource`.
    pub fn get(&self, resource: Resource) -> u32 {
        match resource {
            Resource::Vcpus => self.vcpus,
            Resource::MemoryMib => self.memory_mib,
            Resource::DiskGib => self.disk_gib,
            Resource::Ipv4 => self.ipv4,
            Resource::TrafficGib => self.traffic_gib,
        }
    }
}

/// Monthly prices of one unit of each resource in a custom configuration: a vCPU, a GiB of
/// memory, a GiB of disk, an IPv4 address, a GiB of monthly traffic. Zero is allowed (traffic is
/// often included); negative is not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitPrices {
    pub vcpu: Money,
    pub memory_gib: Money,
    pub disk_gib: Money,
    pub ipv4: Money,
    pub traffic_gib: Money,
}

impl UnitPrices {
    fn all(&self) -> [Money; 5] {
        [
            self.vcpu,
            self.memory_gib,
            self.disk_gib,
            self.ipv4,
            self.traffic_gib,
        ]
    }

    /// The monthly price of one unit of `resource` (memory: of one GiB).
    pub fn of(&self, resource: Resource) -> Money {
        match resource {
            Resource::Vcpus => self.vcpu,
            Resource::MemoryMib => self.memory_gib,
            Resource::DiskGib => self.disk_gib,
            Resource::Ipv4 => self.ipv4,
            Resource::TrafficGib => self.traffic_gib,
        }
    }
}

/// The smallest and largest custom configuration a datacenter sells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceBounds {
    pub min: Resources,
    pub max: Resources,
}

/// The period discounts of custom configurations (they have no per-period prices of their own).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PeriodDiscounts {
    pub quarterly: Percent,
    pub semiannual: Percent,
    pub annual: Percent,
}

impl PeriodDiscounts {
    /// The discount of `period`; zero for `hourly` and `monthly`.
    pub fn of(&self, period: BillingPeriod) -> Percent {
        match period {
            BillingPeriod::Hourly | BillingPeriod::Monthly => Percent::ZERO,
            BillingPeriod::Quarterly => self.quarterly,
            BillingPeriod::Semiannual => self.semiannual,
            BillingPeriod::Annual => self.annual,
        }
    }
}

/// How a datacenter prices custom configurations: per unit, within bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomPricing {
    unit_prices: UnitPrices,
    bounds: ResourceBounds,
    period_discounts: PeriodDiscounts,
}

impl CustomPricing {
    /// # Errors
    /// [`PricingError::CurrencyMismatch`] when the unit prices are not in one currency,
    /// [`PricingError::PriceNegative`] for a negative unit price, [`PricingError::InvalidBounds`]
    /// when a minimum exceeds its maximum, the minimum has no vCPU, no memory or no disk, or a
    /// memory bound is not a whole number of GiB.
    pub fn new(
        unit_prices: UnitPrices,
        bounds: ResourceBounds,
        period_discounts: PeriodDiscounts,
    ) -> Result<Self, PricingError> {
        let currency = unit_prices.vcpu.currency();
        for price in unit_prices.all() {
            if price.currency() != currency {
                return Err(PricingError::CurrencyMismatch);
            }
            if price.is_negative() {
                return Err(PricingError::PriceNegative);
            }
        }
        let inverted = Resource::ALL
            .iter()
            .any(|&r| bounds.min.get(r) > bounds.max.get(r));
        let empty = bounds.min.vcpus == 0 || bounds.min.memory_mib == 0 || bounds.min.disk_gib == 0;
        let partial_gib =
            bounds.min.memory_mib % MIB_PER_GIB != 0 || bounds.max.memory_mib % MIB_PER_GIB != 0;
        if inverted || empty || partial_gib {
            return Err(PricingError::InvalidBounds);
        }
        Ok(Self {
            unit_prices,
            bounds,
            period_discounts,
        })
    }

    /// The currency of the unit prices.
    pub fn currency(&self) -> Currency {
        self.unit_prices.vcpu.currency()
    }

    pub fn unit_prices(&self) -> &UnitPrices {
        &self.unit_prices
    }

    pub fn bounds(&self) -> &ResourceBounds {
        &self.bounds
    }

    pub fn period_discounts(&self) -> &PeriodDiscounts {
        &self.period_discounts
    }

    /// Every way `resources` falls outside what this datacenter sells, by resource; empty when
    /// the configuration can be ordered.
    pub fn problems(&self, resources: &Resources) -> Vec<(Resource, ResourceProblem)> {
        let mut problems = Vec::new();
        for resource in Resource::ALL {
            let value = resources.get(resource);
            let (min, max) = (self.bounds.min.get(resource), self.bounds.max.get(resource));
            if value < min || value > max {
                problems.push((resource, ResourceProblem::OutOfBounds { min, max }));
            } else if resource == Resource::MemoryMib && value % MIB_PER_GIB != 0 {
                problems.push((resource, ResourceProblem::NotWholeGib));
            }
        }
        problems
    }

    /// The exact price of one unit of `resource` for one `period`.
    fn unit_price(&self, resource: Resource, period: BillingPeriod) -> Result<Money, MoneyError> {
        let monthly = self.unit_prices.of(resource);
        match period.months() {
            None => monthly.checked_scale(1, HOURS_PER_MONTH),
            Some(months) => self
                .period_discounts
                .of(period)
                .off(monthly.checked_mul(months)?),
        }
    }
}

/// Why one resource of a custom configuration cannot be ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceProblem {
    /// Below the minimum or above the maximum the datacenter sells.
    OutOfBounds { min: u32, max: u32 },
    /// Memory must be a whole number of GiB (a multiple of 1024 MiB).
    NotWholeGib,
}

impl fmt::Display for ResourceProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::OutOfBounds { min, max } => write!(f, "must be between {min} and {max}"),
            Self::NotWholeGib => write!(f, "must be a multiple of {MIB_PER_GIB}"),
        }
    }
}

/// What a discount code takes off the subtotal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DiscountValue {
    /// This share of the subtotal.
    PercentOff { percent: Percent },
    /// This amount, at most the subtotal.
    AmountOff { amount: Money },
}

/// The VAT that applies to an order: the rate of the customer's country (or of the provider's,
/// when the customer's is unknown), shown separately on the quote and invoice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaxRate {
    /// Whose rate it is; `None` when no country is known and no tax applies.
    pub country: Option<Country>,
    pub rate: Percent,
}

impl TaxRate {
    /// No tax.
    pub fn none() -> Self {
        Self {
            country: None,
            rate: Percent::ZERO,
        }
    }
}

/// What is being priced.
#[derive(Debug, Clone, Copy)]
pub enum Offer<'a> {
    /// A plan of the catalog, by its name and prices.
    Plan {
        name: &'a str,
        prices: &'a PriceTable,
    },
    /// A custom configuration priced by a datacenter.
    Custom {
        resources: Resources,
        pricing: &'a CustomPricing,
    },
}

/// A discount code that was found eligible for the order being priced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedDiscount {
    /// The code as the customer typed it, normalised (shown on the invoice).
    pub code: String,
    pub value: DiscountValue,
}

/// Everything [`quote`] needs. Lookups (the plan, the code's terms, the tax rate) happen before.
#[derive(Debug, Clone)]
pub struct PricingRequest<'a> {
    pub offer: Offer<'a>,
    pub billing_period: BillingPeriod,
    pub discount: Option<AppliedDiscount>,
    pub tax: TaxRate,
}

/// One line of a quote or invoice: `quantity × unit_price`, rounded to the minor unit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuoteLine {
    pub description: String,
    pub quantity: u32,
    /// Exact, possibly finer than the minor unit (hourly unit prices).
    pub unit_price: Money,
    /// Final: rounded to the minor unit.
    pub amount: Money,
}

/// The priced order: what the quote answers and what the invoice records. Every amount except
/// the unit prices is a whole number of minor units.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quote {
    pub currency: Currency,
    pub billing_period: BillingPeriod,
    pub lines: Vec<QuoteLine>,
    /// Σ line amounts.
    pub subtotal: Money,
    /// The code whose discount was applied, if any.
    pub discount_code: Option<String>,
    /// What the code took off (zero without a code).
    pub discount: Money,
    /// `subtotal − discount`: what the tax is computed on.
    pub net: Money,
    pub tax: TaxRate,
    /// `net × rate`, rounded.
    pub tax_amount: Money,
    /// `net + tax_amount`: what the customer pays.
    pub total: Money,
}

/// Why an offer could not be priced.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PricingError {
    #[error("unknown billing period: expected hourly, monthly, quarterly, semiannual or annual")]
    UnknownBillingPeriod,
    #[error("not a percentage: expected a number from 0 to 100 with at most two decimals")]
    InvalidPercent,
    #[error("prices, discounts and taxes must all be in one currency")]
    CurrencyMismatch,
    #[error("a price must be greater than zero")]
    PriceNotPositive,
    #[error("a unit price must not be negative")]
    PriceNegative,
    #[error("invalid bounds: each minimum at most its maximum, at least one vCPU, memory and disk, memory in whole GiB")]
    InvalidBounds,
    #[error("the configuration is outside what the datacenter sells")]
    OutOfBounds(Vec<(Resource, ResourceProblem)>),
    #[error(transparent)]
    Money(#[from] MoneyError),
}

impl PricingError {
    /// Stable machine-readable code for API error bodies.
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnknownBillingPeriod => "unknown_billing_period",
            Self::InvalidPercent => "invalid_percent",
            Self::CurrencyMismatch => "currency_mismatch",
            Self::PriceNotPositive => "price_not_positive",
            Self::PriceNegative => "price_negative",
            Self::InvalidBounds => "invalid_bounds",
            Self::OutOfBounds(_) => "configuration_out_of_bounds",
            Self::Money(error) => error.code(),
        }
    }
}

/// Prices `request`: its lines, the discount, the tax and the total, final and rounded.
///
/// # Errors
/// [`PricingError::OutOfBounds`] for a custom configuration the datacenter does not sell,
/// [`PricingError::CurrencyMismatch`] for a fixed discount in another currency,
/// [`PricingError::Money`] on overflow.
pub fn quote(request: &PricingRequest<'_>) -> Result<Quote, PricingError> {
    let period = request.billing_period;
    let (currency, lines) = match request.offer {
        Offer::Plan { name, prices } => {
            let unit_price = prices.price_for(period)?;
            let line = QuoteLine {
                description: format!("{name}, {}", period_label(period)),
                quantity: 1,
                unit_price,
                amount: unit_price.round_to_minor_unit()?,
            };
            (prices.currency(), vec![line])
        }
        Offer::Custom { resources, pricing } => {
            let problems = pricing.problems(&resources);
            if !problems.is_empty() {
                return Err(PricingError::OutOfBounds(problems));
            }
            let mut lines = Vec::new();
            for resource in Resource::ALL {
                let quantity = match resource {
                    Resource::MemoryMib => resources.memory_mib / MIB_PER_GIB,
                    other => resources.get(other),
                };
                if quantity == 0 {
                    continue;
                }
                let unit_price = pricing.unit_price(resource, period)?;
                let amount = unit_price
                    .checked_mul(i64::from(quantity))?
                    .round_to_minor_unit()?;
                lines.push(QuoteLine {
                    description: format!("{}, {}", resource_label(resource), period_label(period)),
                    quantity,
                    unit_price,
                    amount,
                });
            }
            (pricing.currency(), lines)
        }
    };
    let subtotal = lines.iter().try_fold(Money::zero(currency), |sum, line| {
        sum.checked_add(line.amount)
    })?;
    let discount = match &request.discount {
        None => Money::zero(currency),
        Some(applied) => match applied.value {
            DiscountValue::PercentOff { percent } => percent.of(subtotal)?.round_to_minor_unit()?,
            DiscountValue::AmountOff { amount } => {
                if amount.currency() != currency {
                    return Err(PricingError::CurrencyMismatch);
                }
                let amount = amount.round_to_minor_unit()?;
                if amount.micros() > subtotal.micros() {
                    subtotal
                } else {
                    amount
                }
            }
        },
    };
    let net = subtotal.checked_sub(discount)?;
    let tax_amount = request.tax.rate.of(net)?.round_to_minor_unit()?;
    let total = net.checked_add(tax_amount)?;
    Ok(Quote {
        currency,
        billing_period: period,
        lines,
        subtotal,
        discount_code: request.discount.as_ref().map(|d| d.code.clone()),
        discount,
        net,
        tax: request.tax.clone(),
        tax_amount,
        total,
    })
}

fn period_label(period: BillingPeriod) -> &'static str {
    match period {
        BillingPeriod::Hourly => "first hour",
        BillingPeriod::Monthly => "1 month",
        BillingPeriod::Quarterly => "3 months",
        BillingPeriod::Semiannual => "6 months",
        BillingPeriod::Annual => "12 months",
    }
}

fn resource_label(resource: Resource) -> &'static str {
    match resource {
        Resource::Vcpus => "vCPU",
        Resource::MemoryMib => "Memory (GiB)",
        Resource::DiskGib => "Disk (GiB)",
        Resource::Ipv4 => "IPv4 address",
        Resource::TrafficGib => "Traffic (GiB per month)",
    }
}

#[cfg(test)]
mod tests;
