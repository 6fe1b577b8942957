//! The `DiscountCode` aggregate: a code customers type at checkout, its terms, and the
//! redemptions that hold a place in its limits.
//!
//! ## Identity: the code is the id
//!
//! The aggregate id is derived from the normalised code ([`id_of`]: UUIDv5 of the upper-case text
//! in [`DISCOUNT_CODE_NAMESPACE`]). Two creations of the same code therefore land on the same
//! stream, and the second is refused by the aggregate itself ([`DiscountError::CodeTaken`]); the
//! event store's optimistic check decides a race. No `unique_claims` row is needed (ADR 0011).
//!
//! ## Rules
//!
//! - [`DiscountCode::check`] is the one eligibility check, used by [`DiscountCommand::Redeem`] and
//!   by dry runs (quotes), so a quote and an order can never disagree about a code. Rules are
//!   checked in a fixed order (found, active, validity window, plan, period, first order, total
//!   limit, per-account limit), and the first that fails is reported.
//! - A redemption is *active* from [`DiscountEvent::DiscountRedeemed`] until
//!   [`DiscountEvent::RedemptionReleased`] (its order was cancelled or expired unpaid). Only active
//!   redemptions count toward `max_redemptions` and `max_per_account`.
//! - `Redeem` is idempotent per order: the same order again records nothing, whatever happened to
//!   the terms since. `Release` of an order that holds no active redemption records nothing.
//! - A limit cannot be lowered below what active redemptions already use, so active redemptions
//!   never exceed the limits (a property test drives random command sequences to check it).
//!
//! ## State stays small
//!
//! The state is the terms, the active order ids (each with its account) and a count per account
//! with active redemptions. Released orders are forgotten: their history is in the log and the
//! `discount_codes` projection, not in the aggregate.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::ids::{AccountId, DiscountCodeId, OrderId, PlanId};
use crate::pricing::{BillingPeriod, DiscountValue};
use crate::values::Currency;

#[cfg(test)]
mod invariants;
#[cfg(test)]
mod tests;

/// Shortest code: shorter codes are guessed by trying them all.
pub const CODE_MIN_CHARS: usize = 3;
/// Longest code: customers type it; 32 leaves room for campaign names like `SPRING-2026_PARTNER`.
pub const CODE_MAX_CHARS: usize = 32;
/// Most plans one code may be limited to: keeps events and state small; a code meant for more
/// plans than this is a code for any plan.
pub const MAX_PLAN_IDS: usize = 100;

/// The namespace of [`id_of`]. Never change it: every stored code's stream is named by it.
pub const DISCOUNT_CODE_NAMESPACE: Uuid =
    Uuid::from_u128(0x3d1f_9a52_7c64_4e0b_8b2d_5e96_c1a7_04f3);

/// A discount code as customers type it: 3 to 32 of `A–Z`, `0–9`, `-`, `_`. Input is
/// case-insensitive and trimmed; the code is kept in upper case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CodeText(String);

impl CodeText {
    /// Parses and normalises a code (`" summer-25 "` is `SUMMER-25`).
    ///
    /// # Errors
    /// [`DiscountError::InvalidCode`] for a wrong length or any other character.
    pub fn parse(input: &str) -> Result<Self, DiscountError> {
        let code = input.trim().to_ascii_uppercase();
        let length_ok = (CODE_MIN_CHARS..=CODE_MAX_CHARS).contains(&code.len());
        let chars_ok = code
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if length_ok && chars_ok {
            Ok(Self(code))
        } else {
            Err(DiscountError::InvalidCode)
        }
    }

    /// The normalised code.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for CodeText {
    type Error = DiscountError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<CodeText> for String {
    fn from(value: CodeText) -> Self {
        value.0
    }
}

impl fmt::Display for CodeText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The aggregate id of `code`: a UUIDv5 of the normalised text, so that the code itself is the
/// key and creating it twice meets the same stream.
pub fn id_of(code: &CodeText) -> DiscountCodeId {
    DiscountCodeId::from_uuid(Uuid::new_v5(
        &DISCOUNT_CODE_NAMESPACE,
        code.as_str().as_bytes(),
    ))
}

/// What a code gives and to whom. Checked by the aggregate on `Create` and after every `Update`
/// ([`DiscountTerms::validate`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscountTerms {
    /// Percent off (more than 0, at most 100) or an amount off (more than zero, whole minor
    /// units, in the settlement currency).
    pub value: DiscountValue,
    /// Not redeemable before this instant.
    pub valid_from: Option<DateTime<Utc>>,
    /// Not redeemable from this instant on; after `valid_from` when both are set.
    pub valid_until: Option<DateTime<Utc>>,
    /// Most active redemptions over all accounts (at least 1); `None`: unlimited.
    pub max_redemptions: Option<u32>,
    /// Most active redemptions of one account (at least 1); `None`: unlimited.
    pub max_per_account: Option<u32>,
    /// Plans the code applies to; empty: any plan, and custom configurations too.
    pub plan_ids: BTreeSet<PlanId>,
    /// Billing periods the code applies to; empty: any.
    pub billing_periods: BTreeSet<BillingPeriod>,
    /// Only a customer's first order may use it.
    pub first_order_only: bool,
    /// Inactive codes are refused; staff switch them off and on.
    pub active: bool,
}

impl DiscountTerms {
    /// Terms for `value` with no limits, for any plan and period, active.
    pub fn new(value: DiscountValue) -> Self {
        Self {
            value,
            valid_from: None,
            valid_until: None,
            max_redemptions: None,
            max_per_account: None,
            plan_ids: BTreeSet::new(),
            billing_periods: BTreeSet::new(),
            first_order_only: false,
            active: true,
        }
    }

    /// Whether these terms may be recorded in a deployment settling in `settlement`.
    ///
    /// # Errors
    /// The first broken rule: [`DiscountError::InvalidPercentOff`],
    /// [`DiscountError::InvalidAmountOff`], [`DiscountError::CurrencyMismatch`],
    /// [`DiscountError::InvalidValidity`], [`DiscountError::InvalidMaxRedemptions`],
    /// [`DiscountError::InvalidMaxPerAccount`], [`DiscountError::TooManyPlans`].
    pub fn validate(&self, settlement: Currency) -> Result<(), DiscountError> {
        match self.value {
            DiscountValue::PercentOff { percent } => {
                if percent.basis_points() == 0 {
                    return Err(DiscountError::InvalidPercentOff);
                }
            }
            DiscountValue::AmountOff { amount } => {
                if amount.currency() != settlement {
                    return Err(DiscountError::CurrencyMismatch {
                        expected: settlement,
                        found: amount.currency(),
                    });
                }
                if !amount.is_positive() || !amount.fits_minor_unit() {
                    return Err(DiscountError::InvalidAmountOff);
                }
            }
        }
        if let (Some(from), Some(until)) = (self.valid_from, self.valid_until) {
            if from >= until {
                return Err(DiscountError::InvalidValidity);
            }
        }
        if self.max_redemptions == Some(0) {
            return Err(DiscountError::InvalidMaxRedemptions);
        }
        if self.max_per_account == Some(0) {
            return Err(DiscountError::InvalidMaxPerAccount);
        }
        if self.plan_ids.len() > MAX_PLAN_IDS {
            return Err(DiscountError::TooManyPlans);
        }
        Ok(())
    }

    /// These terms with `patch` applied: fields the patch leaves out are kept.
    pub fn patched(&self, patch: &TermsPatch) -> Self {
        let mut terms = self.clone();
        if let Some(value) = patch.value {
            terms.value = value;
        }
        if let Some(valid_from) = patch.valid_from {
            terms.valid_from = valid_from;
        }
        if let Some(valid_until) = patch.valid_until {
            terms.valid_until = valid_until;
        }
        if let Some(max) = patch.max_redemptions {
            terms.max_redemptions = max;
        }
        if let Some(max) = patch.max_per_account {
            terms.max_per_account = max;
        }
        if let Some(plan_ids) = &patch.plan_ids {
            terms.plan_ids = plan_ids.clone();
        }
        if let Some(periods) = &patch.billing_periods {
            terms.billing_periods = periods.clone();
        }
        if let Some(first_order_only) = patch.first_order_only {
            terms.first_order_only = first_order_only;
        }
        if let Some(active) = patch.active {
            terms.active = active;
        }
        terms
    }
}

/// A change to some of a code's terms. `None` leaves a field as it is; for the optional terms,
/// `Some(None)` removes the limit or bound.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TermsPatch {
    pub value: Option<DiscountValue>,
    pub valid_from: Option<Option<DateTime<Utc>>>,
    pub valid_until: Option<Option<DateTime<Utc>>>,
    pub max_redemptions: Option<Option<u32>>,
    pub max_per_account: Option<Option<u32>>,
    pub plan_ids: Option<BTreeSet<PlanId>>,
    pub billing_periods: Option<BTreeSet<BillingPeriod>>,
    pub first_order_only: Option<bool>,
    pub active: Option<bool>,
}

/// What an order asks of a code: who, for what, and when. The same request drives a dry run
/// (a quote) and a redemption.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RedemptionRequest {
    pub account_id: AccountId,
    /// The plan ordered; `None` for a custom configuration.
    pub plan_id: Option<PlanId>,
    pub billing_period: BillingPeriod,
    /// Whether this is the account's first order.
    pub first_order: bool,
    /// When the order is placed (the validity window is checked at this instant).
    pub at: DateTime<Utc>,
}

/// What can be asked of a discount code. Time and ids come from the caller.
#[derive(Debug, Clone)]
pub enum DiscountCommand {
    /// Create the code with its terms. Refused when the code exists.
    Create {
        code: CodeText,
        terms: DiscountTerms,
        occurred_at: DateTime<Utc>,
    },
    /// Change some terms, `active` included. A patch that changes nothing records nothing.
    Update {
        patch: TermsPatch,
        occurred_at: DateTime<Utc>,
    },
    /// Take one place in the limits for `order_id`, if [`DiscountCode::check`] allows it.
    /// Idempotent per order.
    Redeem {
        order_id: OrderId,
        account_id: AccountId,
        plan_id: Option<PlanId>,
        billing_period: BillingPeriod,
        first_order: bool,
        at: DateTime<Utc>,
    },
    /// Give the place of `order_id` back (its order was cancelled or expired unpaid). A no-op for
    /// an order without an active redemption.
    Release {
        order_id: OrderId,
        at: DateTime<Utc>,
    },
}

/// What happened to a discount code. A stored format: variant names, field names and versions
/// are pinned by tests and never change; evolve by adding a version and an upcaster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum DiscountEvent {
    /// The code was created with these terms.
    DiscountCodeCreated {
        code: CodeText,
        terms: DiscountTerms,
        created_at: DateTime<Utc>,
    },
    /// The terms changed; `terms` are the whole terms after the change.
    DiscountCodeUpdated {
        terms: DiscountTerms,
        updated_at: DateTime<Utc>,
    },
    /// An order took a place in the limits, for `value` (the value the order is priced with).
    DiscountRedeemed {
        order_id: OrderId,
        account_id: AccountId,
        plan_id: Option<PlanId>,
        billing_period: BillingPeriod,
        value: DiscountValue,
        redeemed_at: DateTime<Utc>,
    },
    /// An order's place went back to the pool.
    RedemptionReleased {
        order_id: OrderId,
        account_id: AccountId,
        released_at: DateTime<Utc>,
    },
}

/// Every `event_type()` a [`DiscountEvent`] can have.
pub const DISCOUNT_EVENT_TYPES: &[&str] = &[
    "DiscountCodeCreated",
    "DiscountCodeUpdated",
    "DiscountRedeemed",
    "RedemptionReleased",
];

/// The version every [`DiscountEvent`] is currently written with.
const EVENT_VERSION: &str = "1";

impl DomainEvent for DiscountEvent {
    fn event_type(&self) -> String {
        let name = match self {
            Self::DiscountCodeCreated { .. } => "DiscountCodeCreated",
            Self::DiscountCodeUpdated { .. } => "DiscountCodeUpdated",
            Self::DiscountRedeemed { .. } => "DiscountRedeemed",
            Self::RedemptionReleased { .. } => "RedemptionReleased",
        };
        name.to_owned()
    }

    fn event_version(&self) -> String {
        EVENT_VERSION.to_owned()
    }
}

/// Why a command or a check was refused. One variant per business rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DiscountError {
    /// The code text breaks the rules of [`CodeText::parse`].
    #[error(
        "invalid discount code: {CODE_MIN_CHARS} to {CODE_MAX_CHARS} letters, digits, '-' or '_'"
    )]
    InvalidCode,
    /// A percentage of zero.
    #[error("percent_off must be more than 0 and at most 100")]
    InvalidPercentOff,
    /// An amount of zero or less, or finer than the currency's minor unit.
    #[error("amount_off must be more than zero, in whole minor units")]
    InvalidAmountOff,
    /// An amount off in another currency than the deployment settles in.
    #[error("currency mismatch: amounts off are in {expected}, not {found}")]
    CurrencyMismatch { expected: Currency, found: Currency },
    /// `valid_from` is not before `valid_until`.
    #[error("valid_from must be before valid_until")]
    InvalidValidity,
    /// `max_redemptions` of zero.
    #[error("max_redemptions must be at least 1")]
    InvalidMaxRedemptions,
    /// `max_per_account` of zero.
    #[error("max_per_account must be at least 1")]
    InvalidMaxPerAccount,
    /// More plans than [`MAX_PLAN_IDS`].
    #[error("a code may name at most {MAX_PLAN_IDS} plans")]
    TooManyPlans,
    /// `Create` of a code that exists.
    #[error("this discount code already exists")]
    CodeTaken,
    /// `max_redemptions` below the active redemptions.
    #[error("max_redemptions cannot go below the redemptions already in use")]
    MaxRedemptionsBelowRedeemed,
    /// `max_per_account` below what one account already uses.
    #[error("max_per_account cannot go below what an account already uses")]
    MaxPerAccountBelowRedeemed,
    /// No code with this text (never created).
    #[error("no such discount code")]
    NotFound,
    /// Staff switched the code off.
    #[error("this discount code is not active")]
    Inactive,
    /// Before `valid_from`.
    #[error("this discount code is not valid yet")]
    NotYetValid,
    /// At or after `valid_until`.
    #[error("this discount code has expired")]
    Expired,
    /// `max_redemptions` reached.
    #[error("this discount code has been used up")]
    Exhausted,
    /// `max_per_account` reached by this account.
    #[error("you have already used this discount code as often as it allows")]
    AccountLimit,
    /// The plan (or a custom configuration) is not among the code's plans.
    #[error("this discount code does not apply to this plan")]
    NotForPlan,
    /// The billing period is not among the code's periods.
    #[error("this discount code does not apply to this billing period")]
    NotForPeriod,
    /// The code is for first orders and this is not one.
    #[error("this discount code is for a first order only")]
    FirstOrderOnly,
}

impl DiscountError {
    /// Stable machine-readable code for API error bodies. Never change an existing code: clients
    /// branch on it.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidCode => "invalid_discount_code",
            Self::InvalidPercentOff => "invalid_percent_off",
            Self::InvalidAmountOff => "invalid_amount_off",
            Self::CurrencyMismatch { .. } => "currency_mismatch",
            Self::InvalidValidity => "invalid_validity",
            Self::InvalidMaxRedemptions => "invalid_max_redemptions",
            Self::InvalidMaxPerAccount => "invalid_max_per_account",
            Self::TooManyPlans => "too_many_plans",
            Self::CodeTaken => "code_taken",
            Self::MaxRedemptionsBelowRedeemed => "max_redemptions_below_redeemed",
            Self::MaxPerAccountBelowRedeemed => "max_per_account_below_redeemed",
            Self::NotFound => "discount_code_not_found",
            Self::Inactive => "discount_code_inactive",
            Self::NotYetValid => "discount_code_not_yet_valid",
            Self::Expired => "discount_code_expired",
            Self::Exhausted => "discount_code_exhausted",
            Self::AccountLimit => "discount_code_account_limit",
            Self::NotForPlan => "discount_code_not_for_plan",
            Self::NotForPeriod => "discount_code_not_for_period",
            Self::FirstOrderOnly => "discount_code_first_order_only",
        }
    }

    /// Whether this refusal is about a customer's use of the code (what a quote or an order
    /// reports), rather than about terms staff entered.
    pub fn is_redemption_refusal(&self) -> bool {
        matches!(
            self,
            Self::NotFound
                | Self::Inactive
                | Self::NotYetValid
                | Self::Expired
                | Self::Exhausted
                | Self::AccountLimit
                | Self::NotForPlan
                | Self::NotForPeriod
                | Self::FirstOrderOnly
        )
    }
}

/// What the aggregate needs from the deployment to decide: the currency amounts off are in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiscountServices {
    pub settlement: Currency,
}

/// The state a code needs to decide, rebuilt from its events. `None` until created.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DiscountCode {
    created: Option<CreatedCode>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct CreatedCode {
    code: CodeText,
    terms: DiscountTerms,
    /// Orders holding an active redemption, with their account.
    active_orders: BTreeMap<OrderId, AccountId>,
    /// Active redemptions per account; accounts with none are removed.
    per_account: BTreeMap<AccountId, u32>,
}

impl DiscountCode {
    /// Whether the code was created.
    pub fn exists(&self) -> bool {
        self.created.is_some()
    }

    /// The normalised code text.
    pub fn code(&self) -> Option<&CodeText> {
        self.created.as_ref().map(|c| &c.code)
    }

    /// The current terms.
    pub fn terms(&self) -> Option<&DiscountTerms> {
        self.created.as_ref().map(|c| &c.terms)
    }

    /// Redemptions in use (redeemed and not released), over all accounts.
    pub fn active_redemptions(&self) -> u32 {
        self.created
            .as_ref()
            .map_or(0, |c| count(c.active_orders.len()))
    }

    /// Redemptions in use by `account_id`.
    pub fn active_redemptions_of(&self, account_id: &AccountId) -> u32 {
        self.created
            .as_ref()
            .and_then(|c| c.per_account.get(account_id).copied())
            .unwrap_or(0)
    }

    /// Whether `order_id` holds an active redemption.
    pub fn is_redeemed_by(&self, order_id: &OrderId) -> bool {
        self.created
            .as_ref()
            .is_some_and(|c| c.active_orders.contains_key(order_id))
    }

    /// The one eligibility check of a code, for redemptions and dry runs alike: the value the
    /// order gets, or the first rule it breaks.
    ///
    /// # Errors
    /// [`DiscountError::NotFound`], [`DiscountError::Inactive`], [`DiscountError::NotYetValid`],
    /// [`DiscountError::Expired`], [`DiscountError::NotForPlan`], [`DiscountError::NotForPeriod`],
    /// [`DiscountError::FirstOrderOnly`], [`DiscountError::Exhausted`],
    /// [`DiscountError::AccountLimit`], in this order.
    pub fn check(&self, request: &RedemptionRequest) -> Result<DiscountValue, DiscountError> {
        let created = self.created.as_ref().ok_or(DiscountError::NotFound)?;
        let terms = &created.terms;
        if !terms.active {
            return Err(DiscountError::Inactive);
        }
        if terms.valid_from.is_some_and(|from| request.at < from) {
            return Err(DiscountError::NotYetValid);
        }
        if terms.valid_until.is_some_and(|until| request.at >= until) {
            return Err(DiscountError::Expired);
        }
        if !terms.plan_ids.is_empty()
            && !request
                .plan_id
                .is_some_and(|plan| terms.plan_ids.contains(&plan))
        {
            return Err(DiscountError::NotForPlan);
        }
        if !terms.billing_periods.is_empty()
            && !terms.billing_periods.contains(&request.billing_period)
        {
            return Err(DiscountError::NotForPeriod);
        }
        if terms.first_order_only && !request.first_order {
            return Err(DiscountError::FirstOrderOnly);
        }
        if terms
            .max_redemptions
            .is_some_and(|max| self.active_redemptions() >= max)
        {
            return Err(DiscountError::Exhausted);
        }
        if terms
            .max_per_account
            .is_some_and(|max| self.active_redemptions_of(&request.account_id) >= max)
        {
            return Err(DiscountError::AccountLimit);
        }
        Ok(terms.value)
    }

    /// Every command yields one event, nothing (a repeat or a change to nothing), or a refusal.
    fn decide(
        &self,
        command: DiscountCommand,
        services: &DiscountServices,
    ) -> Result<Option<DiscountEvent>, DiscountError> {
        match command {
            DiscountCommand::Create {
                code,
                terms,
                occurred_at,
            } => {
                if self.created.is_some() {
                    return Err(DiscountError::CodeTaken);
                }
                terms.validate(services.settlement)?;
                Ok(Some(DiscountEvent::DiscountCodeCreated {
                    code,
                    terms,
                    created_at: occurred_at,
                }))
            }
            DiscountCommand::Update { patch, occurred_at } => {
                let created = self.created.as_ref().ok_or(DiscountError::NotFound)?;
                let terms = created.terms.patched(&patch);
                if terms == created.terms {
                    return Ok(None);
                }
                terms.validate(services.settlement)?;
                if terms
                    .max_redemptions
                    .is_some_and(|max| self.active_redemptions() > max)
                {
                    return Err(DiscountError::MaxRedemptionsBelowRedeemed);
                }
                let busiest = created.per_account.values().copied().max().unwrap_or(0);
                if terms.max_per_account.is_some_and(|max| busiest > max) {
                    return Err(DiscountError::MaxPerAccountBelowRedeemed);
                }
                Ok(Some(DiscountEvent::DiscountCodeUpdated {
                    terms,
                    updated_at: occurred_at,
                }))
            }
            DiscountCommand::Redeem {
                order_id,
                account_id,
                plan_id,
                billing_period,
                first_order,
                at,
            } => {
                if self.is_redeemed_by(&order_id) {
                    return Ok(None);
                }
                let value = self.check(&RedemptionRequest {
                    account_id,
                    plan_id,
                    billing_period,
                    first_order,
                    at,
                })?;
                Ok(Some(DiscountEvent::DiscountRedeemed {
                    order_id,
                    account_id,
                    plan_id,
                    billing_period,
                    value,
                    redeemed_at: at,
                }))
            }
            DiscountCommand::Release { order_id, at } => {
                let created = self.created.as_ref().ok_or(DiscountError::NotFound)?;
                Ok(created.active_orders.get(&order_id).map(|account_id| {
                    DiscountEvent::RedemptionReleased {
                        order_id,
                        account_id: *account_id,
                        released_at: at,
                    }
                }))
            }
        }
    }
}

/// A count of active redemptions: the limits are `u32`, and `handle` never lets a limited count
/// pass its limit, so saturating only guards codes without limits past four billion orders.
fn count(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

impl Aggregate for DiscountCode {
    const TYPE: &'static str = "discount_code";
    type Command = DiscountCommand;
    type Event = DiscountEvent;
    type Error = DiscountError;
    type Services = DiscountServices;

    async fn handle(
        &mut self,
        command: Self::Command,
        services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        if let Some(event) = self.decide(command, services)? {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            DiscountEvent::DiscountCodeCreated { code, terms, .. } => {
                // Only ever first: `handle` refuses a second creation.
                if self.created.is_none() {
                    self.created = Some(CreatedCode {
                        code,
                        terms,
                        active_orders: BTreeMap::new(),
                        per_account: BTreeMap::new(),
                    });
                }
            }
            DiscountEvent::DiscountCodeUpdated { terms, .. } => {
                if let Some(created) = &mut self.created {
                    created.terms = terms;
                }
            }
            DiscountEvent::DiscountRedeemed {
                order_id,
                account_id,
                ..
            } => {
                if let Some(created) = &mut self.created {
                    if created.active_orders.insert(order_id, account_id).is_none() {
                        let used = created.per_account.entry(account_id).or_insert(0);
                        *used = used.saturating_add(1);
                    }
                }
            }
            DiscountEvent::RedemptionReleased { order_id, .. } => {
                if let Some(created) = &mut self.created {
                    // The account is the one recorded at redemption, whatever the event says.
                    if let Some(account_id) = created.active_orders.remove(&order_id) {
                        if let Some(used) = created.per_account.get_mut(&account_id) {
                            *used = used.saturating_sub(1);
                            if *used == 0 {
                                created.per_account.remove(&account_id);
                            }
                        }
                    }
                }
            }
        }
    }
}
