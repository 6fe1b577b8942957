//! `/catalog/*`: the public catalog, no token needed. Only what can be ordered is listed:
//! available datacenters and images, active plans. A plan is also readable by id once retired
//! (services on it keep it), showing `status: "retired"`.
//!
//! The JSON bodies of datacenters, images and plans are defined here and shared with
//! `/admin/catalog` routes ([`crate::routes::admin_catalog`]). A plan shows its price for every
//! billing period (`prices`, computed with `PriceTable::price_for`) and the rule each comes from
//! (`price_rules`, the form the admin sent).

use actix_web::{get, web, HttpResponse};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use stratus_domain::catalog::PlanStatus;
use stratus_domain::pricing::{BillingPeriod, CustomPricing, PeriodPrice, PriceTable, Resources};
use stratus_domain::{DatacenterId, Money, PlanId};
use stratus_projections::catalog::{
    self as catalog_model, DatacenterFilter, DatacenterView, ImageFilter, ImageView, PlanFilter,
    PlanView,
};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::error::{ApiError, FieldError};
use crate::routes::audit::page_limit;
use crate::state::AppState;

/// The read models catalog commands wait for before answering.
pub(crate) const READS: &[&str] = &[catalog_model::NAME];

/// A datacenter.
#[derive(Debug, Serialize, ToSchema)]
pub struct DatacenterBody {
    pub datacenter_id: Uuid,
    /// Short unique code, e.g. `fra1`.
    pub code: String,
    pub name: String,
    /// ISO 3166-1 alpha-2.
    pub country: String,
    /// Whether it takes new orders.
    pub available: bool,
    /// How custom configurations are priced here; `null`: they are not sold here.
    #[schema(value_type = Option<Object>)]
    pub custom: Option<CustomBody>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Custom-configuration pricing of a datacenter: monthly unit prices, bounds, period discounts.
#[derive(Debug, Serialize)]
pub struct CustomBody {
    pub unit_prices: UnitPricesBody,
    pub min: Resources,
    pub max: Resources,
    pub period_discounts: PeriodDiscountsBody,
}

/// Monthly prices of one unit of each resource.
#[derive(Debug, Serialize)]
pub struct UnitPricesBody {
    pub vcpu: Money,
    pub memory_gib: Money,
    pub disk_gib: Money,
    pub ipv4: Money,
    pub traffic_gib: Money,
}

/// Discounts of the longer periods, as decimal percentage strings (`"10"`, `"7.5"`).
#[derive(Debug, Serialize)]
pub struct PeriodDiscountsBody {
    pub quarterly: String,
    pub semiannual: String,
    pub annual: String,
}

impl From<&CustomPricing> for CustomBody {
    fn from(pricing: &CustomPricing) -> Self {
        let units = pricing.unit_prices();
        let discounts = pricing.period_discounts();
        Self {
            unit_prices: UnitPricesBody {
                vcpu: units.vcpu,
                memory_gib: units.memory_gib,
                disk_gib: units.disk_gib,
                ipv4: units.ipv4,
                traffic_gib: units.traffic_gib,
            },
            min: pricing.bounds().min,
            max: pricing.bounds().max,
            period_discounts: PeriodDiscountsBody {
                quarterly: discounts.quarterly.to_decimal_string(),
                semiannual: discounts.semiannual.to_decimal_string(),
                annual: discounts.annual.to_decimal_string(),
            },
        }
    }
}

impl From<DatacenterView> for DatacenterBody {
    fn from(view: DatacenterView) -> Self {
        Self {
            datacenter_id: view.datacenter_id.as_uuid(),
            code: view.code.as_str().to_owned(),
            name: view.name.as_str().to_owned(),
            country: view.country.as_str().to_owned(),
            available: view.available,
            custom: view.custom_pricing.as_ref().map(CustomBody::from),
            created_at: view.created_at,
            updated_at: view.updated_at,
        }
    }
}

/// An operating-system image.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImageBody {
    pub image_id: Uuid,
    /// The distribution or product, e.g. `Debian`.
    pub name: String,
    /// e.g. `12`.
    pub version: String,
    /// `linux`, `windows` or `bsd`.
    pub family: String,
    /// The smallest disk it can be installed on.
    pub min_disk_gib: u32,
    /// Whether it is offered for new VMs.
    pub available: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<ImageView> for ImageBody {
    fn from(view: ImageView) -> Self {
        Self {
            image_id: view.image_id.as_uuid(),
            name: view.name.as_str().to_owned(),
            version: view.version.as_str().to_owned(),
            family: view.family.as_str().to_owned(),
            min_disk_gib: view.min_disk_gib,
            available: view.available,
            created_at: view.created_at,
            updated_at: view.updated_at,
        }
    }
}

/// The price of one of each billing period.
#[derive(Debug, Serialize)]
pub struct PeriodPricesBody {
    pub hourly: Money,
    pub monthly: Money,
    pub quarterly: Money,
    pub semiannual: Money,
    pub annual: Money,
}

/// How a period longer than a month is priced.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum PeriodRuleBody {
    /// The monthly price times the months, less this percentage.
    Discount { discount_percent: String },
    /// This amount for the whole period.
    Price { price: Money },
}

impl From<PeriodPrice> for PeriodRuleBody {
    fn from(rule: PeriodPrice) -> Self {
        match rule {
            PeriodPrice::Discount { percent } => Self::Discount {
                discount_percent: percent.to_decimal_string(),
            },
            PeriodPrice::Price { amount } => Self::Price { price: amount },
        }
    }
}

/// A plan's configured prices, in the form an admin sends them.
#[derive(Debug, Serialize)]
pub struct PriceRulesBody {
    pub hourly: Money,
    pub monthly: Money,
    pub quarterly: PeriodRuleBody,
    pub semiannual: PeriodRuleBody,
    pub annual: PeriodRuleBody,
}

/// A plan: a fixed VM size with its prices.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlanBody {
    pub plan_id: Uuid,
    /// Short unique code, e.g. `s-2`.
    pub code: String,
    pub name: String,
    /// `active` (orderable) or `retired` (kept by existing services only).
    pub status: &'static str,
    /// `{vcpus, memory_mib, disk_gib, ipv4, traffic_gib}`; fixed for the life of the plan.
    #[schema(value_type = Object)]
    pub resources: Resources,
    /// The datacenters it is sold in.
    pub datacenter_ids: Vec<Uuid>,
    /// The price of one of each period: `{hourly, monthly, quarterly, semiannual, annual}`.
    #[schema(value_type = Object)]
    pub prices: PeriodPricesBody,
    /// How each price is set: `hourly` and `monthly` amounts, and for each longer period
    /// `{"discount_percent": "5"}` or `{"price": money}`.
    #[schema(value_type = Object)]
    pub price_rules: PriceRulesBody,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub retired_at: Option<DateTime<Utc>>,
}

fn period_rule(prices: &PriceTable, period: BillingPeriod) -> PeriodRuleBody {
    // Longer periods always have a rule; a missing one would mean no discount.
    prices
        .period(period)
        .unwrap_or(PeriodPrice::Discount {
            percent: stratus_domain::pricing::Percent::ZERO,
        })
        .into()
}

impl PlanBody {
    /// The body of `view`, with every period priced.
    pub fn of(view: PlanView) -> Result<Self, ApiError> {
        let price = |period| {
            view.prices
                .price_for(period)
                .map_err(|e| ApiError::internal(&e))
        };
        let prices = PeriodPricesBody {
            hourly: price(BillingPeriod::Hourly)?,
            monthly: price(BillingPeriod::Monthly)?,
            quarterly: price(BillingPeriod::Quarterly)?,
            semiannual: price(BillingPeriod::Semiannual)?,
            annual: price(BillingPeriod::Annual)?,
        };
        let price_rules = PriceRulesBody {
            hourly: view.prices.hourly(),
            monthly: view.prices.monthly(),
            quarterly: period_rule(&view.prices, BillingPeriod::Quarterly),
            semiannual: period_rule(&view.prices, BillingPeriod::Semiannual),
            annual: period_rule(&view.prices, BillingPeriod::Annual),
        };
        Ok(Self {
            plan_id: view.plan_id.as_uuid(),
            code: view.code.as_str().to_owned(),
            name: view.name.as_str().to_owned(),
            status: view.status.as_str(),
            resources: view.resources,
            datacenter_ids: view.datacenters.iter().map(|d| d.as_uuid()).collect(),
            prices,
            price_rules,
            created_at: view.created_at,
            updated_at: view.updated_at,
            retired_at: view.retired_at,
        })
    }
}

/// A page of datacenters, by code.
#[derive(Debug, Serialize, ToSchema)]
pub struct DatacenterPage {
    pub datacenters: Vec<DatacenterBody>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// A page of images, by name and version.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImagePage {
    pub images: Vec<ImageBody>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// A page of plans, cheapest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlanPage {
    pub plans: Vec<PlanBody>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Paging of a catalog list.
#[derive(Debug, Deserialize, IntoParams)]
pub struct PageQuery {
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// The cursor after the item with `id`.
pub(crate) fn encode_cursor(id: Uuid) -> String {
    URL_SAFE_NO_PAD.encode(format!("c{id}"))
}

/// The id a cursor of [`encode_cursor`] names; a field error on `cursor` for anything else.
pub(crate) fn decode_cursor(errors: &mut Vec<FieldError>, cursor: Option<&str>) -> Option<Uuid> {
    let cursor = cursor?;
    let decoded = URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|text| {
            text.strip_prefix('c')
                .and_then(|id| Uuid::parse_str(id).ok())
        });
    if decoded.is_none() {
        errors.push(FieldError::new(
            "cursor",
            "invalid_cursor",
            "not a cursor from this API",
        ));
    }
    decoded
}

/// The cursor of the next page: the last item's, when the page is full.
fn next_cursor<T>(items: &[T], limit: i64, id: impl Fn(&T) -> Uuid) -> Option<String> {
    let full = i64::try_from(items.len()).unwrap_or(i64::MAX) == limit;
    items
        .last()
        .filter(|_| full)
        .map(|last| encode_cursor(id(last)))
}

/// Reads `?datacenter_id=`: a field error when it is not a UUID.
pub(crate) fn datacenter_filter(
    errors: &mut Vec<FieldError>,
    value: Option<&str>,
) -> Option<DatacenterId> {
    let value = value?;
    match value.parse::<DatacenterId>() {
        Ok(id) => Some(id),
        Err(e) => {
            errors.push(FieldError::new("datacenter_id", e.code(), e.to_string()));
            None
        }
    }
}

/// One page of datacenters.
pub(crate) async fn datacenter_page(
    state: &AppState,
    filter: &DatacenterFilter,
) -> Result<DatacenterPage, ApiError> {
    let found = catalog_model::list_datacenters(&state.pool, filter).await?;
    let next_cursor = next_cursor(&found, filter.limit, |d| d.datacenter_id.as_uuid());
    Ok(DatacenterPage {
        datacenters: found.into_iter().map(DatacenterBody::from).collect(),
        next_cursor,
    })
}

/// One page of images.
pub(crate) async fn image_page(
    state: &AppState,
    filter: &ImageFilter,
) -> Result<ImagePage, ApiError> {
    let found = catalog_model::list_images(&state.pool, filter).await?;
    let next_cursor = next_cursor(&found, filter.limit, |i| i.image_id.as_uuid());
    Ok(ImagePage {
        images: found.into_iter().map(ImageBody::from).collect(),
        next_cursor,
    })
}

/// One page of plans.
pub(crate) async fn plan_page(state: &AppState, filter: &PlanFilter) -> Result<PlanPage, ApiError> {
    let found = catalog_model::list_plans(&state.pool, filter).await?;
    let next_cursor = next_cursor(&found, filter.limit, |p| p.plan_id.as_uuid());
    Ok(PlanPage {
        plans: found
            .into_iter()
            .map(PlanBody::of)
            .collect::<Result<_, _>>()?,
        next_cursor,
    })
}

/// The paging of a query, with its field errors collected.
pub(crate) fn paging(
    errors: &mut Vec<FieldError>,
    limit: Option<i64>,
    cursor: Option<&str>,
) -> Result<(i64, Option<Uuid>), ApiError> {
    Ok((page_limit(limit)?, decode_cursor(errors, cursor)))
}

/// Datacenters that take new orders, by code.
#[utoipa::path(get, path = "/api/v1/catalog/datacenters", tag = "catalog", params(PageQuery),
    responses((status = 200, body = DatacenterPage), (status = 422, body = crate::error::Problem)))]
#[get("/catalog/datacenters")]
pub async fn datacenters(
    state: web::Data<AppState>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let mut errors = Vec::new();
    let (limit, after) = paging(&mut errors, query.limit, query.cursor.as_deref())?;
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let filter = DatacenterFilter {
        available: Some(true),
        after: after.map(DatacenterId::from_uuid),
        limit,
    };
    Ok(HttpResponse::Ok().json(datacenter_page(&state, &filter).await?))
}

/// Images offered for new VMs, by name and version.
#[utoipa::path(get, path = "/api/v1/catalog/images", tag = "catalog", params(PageQuery),
    responses((status = 200, body = ImagePage), (status = 422, body = crate::error::Problem)))]
#[get("/catalog/images")]
pub async fn images(
    state: web::Data<AppState>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let mut errors = Vec::new();
    let (limit, after) = paging(&mut errors, query.limit, query.cursor.as_deref())?;
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let filter = ImageFilter {
        available: Some(true),
        after: after.map(stratus_domain::ImageId::from_uuid),
        limit,
        ..ImageFilter::default()
    };
    Ok(HttpResponse::Ok().json(image_page(&state, &filter).await?))
}

/// Filters of `GET /catalog/plans`.
#[derive(Debug, Deserialize, IntoParams)]
pub struct PlanQuery {
    /// Only plans sold in this datacenter.
    pub datacenter_id: Option<String>,
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Active plans, cheapest first.
#[utoipa::path(get, path = "/api/v1/catalog/plans", tag = "catalog", params(PlanQuery),
    responses((status = 200, body = PlanPage), (status = 422, body = crate::error::Problem)))]
#[get("/catalog/plans")]
pub async fn plans(
    state: web::Data<AppState>,
    query: web::Query<PlanQuery>,
) -> Result<HttpResponse, ApiError> {
    let mut errors = Vec::new();
    let (limit, after) = paging(&mut errors, query.limit, query.cursor.as_deref())?;
    let datacenter = datacenter_filter(&mut errors, query.datacenter_id.as_deref());
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let filter = PlanFilter {
        status: Some(PlanStatus::Active),
        datacenter,
        after: after.map(PlanId::from_uuid),
        limit,
    };
    Ok(HttpResponse::Ok().json(plan_page(&state, &filter).await?))
}

/// The plan with `id` as a body, or 404 `plan_not_found`.
pub(crate) async fn plan_body(state: &AppState, id: Uuid) -> Result<PlanBody, ApiError> {
    let view = catalog_model::get_plan(&state.pool, PlanId::from_uuid(id))
        .await?
        .ok_or_else(|| {
            ApiError::new(
                actix_web::http::StatusCode::NOT_FOUND,
                "plan_not_found",
                "no such plan",
            )
        })?;
    PlanBody::of(view)
}

/// One plan, active or retired.
#[utoipa::path(get, path = "/api/v1/catalog/plans/{plan_id}", tag = "catalog",
    params(("plan_id" = Uuid, Path)),
    responses((status = 200, body = PlanBody), (status = 404, description = "plan_not_found", body = crate::error::Problem)))]
#[get("/catalog/plans/{plan_id}")]
pub async fn plan(
    state: web::Data<AppState>,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(plan_body(&state, path.into_inner()).await?))
}
