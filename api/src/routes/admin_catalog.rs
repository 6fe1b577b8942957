//! `/admin/datacenters*`, `/admin/images*`, `/admin/plans*`: staff keep the catalog.
//!
//! Every change is `admin` only; reading (unavailable datacenters and images and retired plans
//! included) is open to `admin`, `support`, `billing` and `auditor`. Creating answers 201 with the
//! created resource once the catalog read model shows it; `PATCH` answers 200 with the resource.
//! Bodies are read field by field ([`input`]): every problem is a field error with its JSON path,
//! and nothing is recorded unless every field is valid.

mod input;

use actix_web::http::StatusCode;
use actix_web::{get, patch, post, web, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use stratus_commands::catalog::{CatalogResult, CatalogWriteError};
use stratus_commands::detached;
use stratus_domain::catalog::{
    CatalogName, DatacenterChanges, DatacenterCode, ImageChanges, ImageVersion, MinDiskGib,
    NewDatacenter, NewImage, NewPlan, OsFamily, PlanChanges, PlanCode, PlanStatus,
};
use stratus_domain::{DatacenterId, ImageId, PlanId, Role};
use stratus_projections::catalog::{
    self as catalog_model, DatacenterFilter, ImageFilter, PlanFilter,
};
use utoipa::IntoParams;
use uuid::Uuid;

use self::input::{patch as patch_field, Patch, Reader};
use crate::error::{catalog_write_error, ApiError, FieldError, Refusal};
use crate::extract::{Caller, Json};
use crate::idempotency::{IdempotencyKeyHeader, Idempotent};
use crate::routes::admin_accounts::one_of;
use crate::routes::catalog::{
    datacenter_filter, datacenter_page, image_page, paging, plan_body, plan_page, DatacenterBody,
    DatacenterPage, ImageBody, ImagePage, PlanBody, PlanPage, READS,
};
use crate::state::{AppState, Consistency};

/// Who may read the whole catalog.
const READERS: &[Role] = &[Role::Admin, Role::Support, Role::Billing, Role::Auditor];
/// Who may change it.
const WRITERS: &[Role] = &[Role::Admin];

/// A JSON object body; its fields are read one by one.
type Body = Json<Map<String, Value>>;

/// The answer once a change is in the read model: `body`, or only the id when the read model had
/// not caught up within the read-your-writes wait (the header then says `pending`).
fn answer(
    consistency: Consistency,
    status: StatusCode,
    body: Option<Value>,
    id_field: &str,
    id: Uuid,
) -> HttpResponse {
    let body = body.unwrap_or_else(|| json!({ id_field: id }));
    consistency.mark(HttpResponse::build(status).json(body))
}

fn to_json(body: impl serde::Serialize) -> Result<Value, ApiError> {
    serde_json::to_value(body).map_err(|e| ApiError::internal(&e))
}

/// Runs a catalog change detached from the request and waits for the catalog read model.
async fn run<E, F>(
    state: &web::Data<AppState>,
    change: F,
    map: impl FnOnce(CatalogWriteError<E>) -> ApiError,
) -> Result<Consistency, ApiError>
where
    E: std::error::Error + Refusal + Send + 'static,
    F: std::future::Future<Output = CatalogResult<E>> + Send + 'static,
{
    let position = detached(change).await?.map_err(map)?;
    Ok(state.read_your_writes(position, READS).await?)
}

/// A PATCH field: `Some(None)` when absent, `Some(Some(value))` when given and valid, `None`
/// once a problem (`null`, a refused value) is recorded.
fn changed<T>(
    r: &mut Reader,
    body: &Map<String, Value>,
    key: &str,
    read: impl FnOnce(&mut Reader, &str, Option<&Value>) -> Option<T>,
) -> Option<Option<T>> {
    match patch_field(body, key) {
        Patch::Absent => Some(None),
        Patch::Null => {
            r.errors.push(FieldError::new(
                key,
                "invalid_type",
                format!("{key} cannot be null; leave it out to keep it"),
            ));
            None
        }
        Patch::Value(value) => read(r, key, Some(value)).map(Some),
    }
}

fn not_found(code: &'static str, what: &str) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, code, format!("no such {what}"))
}

// --- Datacenters ---------------------------------------------------------------------------------

async fn datacenter_body(state: &AppState, id: DatacenterId) -> Result<Option<Value>, ApiError> {
    catalog_model::get_datacenter(&state.pool, id)
        .await?
        .map(|view| to_json(DatacenterBody::from(view)))
        .transpose()
}

/// `custom` of a body: `None` when absent or `null` (not sold), the pricing otherwise.
fn custom_field(
    r: &mut Reader,
    body: &Map<String, Value>,
    settlement: stratus_domain::Currency,
) -> Option<Option<stratus_domain::pricing::CustomPricing>> {
    match patch_field(body, "custom") {
        Patch::Absent | Patch::Null => Some(None),
        Patch::Value(value) => r
            .custom_pricing("custom", Some(value), settlement)
            .map(Some),
    }
}

/// Adds a datacenter: `{code, name, country, available?, custom?}`.
#[utoipa::path(post, path = "/api/v1/admin/datacenters", tag = "catalog", security(("bearer" = [])),
    params(IdempotencyKeyHeader), request_body = Object,
    responses((status = 201, body = DatacenterBody), (status = 409, description = "code_taken", body = crate::error::Problem),
        (status = 422, body = crate::error::Problem)))]
#[post("/admin/datacenters", wrap = "Idempotent::new()")]
pub async fn create_datacenter(
    state: web::Data<AppState>,
    caller: Caller,
    body: Body,
) -> Result<HttpResponse, ApiError> {
    caller.require_any(WRITERS)?;
    let body = body.0;
    let mut r = Reader::default();
    r.only(
        "",
        &body,
        &["code", "name", "country", "available", "custom"],
    );
    let code = r.text("code", body.get("code"), DatacenterCode::parse);
    let name = r.text("name", body.get("name"), CatalogName::parse);
    let country = r.country("country", body.get("country"));
    let available = r.boolean("available", body.get("available"), true);
    let custom_pricing = custom_field(&mut r, &body, state.catalog.settlement_currency());
    let (Some(code), Some(name), Some(country), Some(available), Some(custom_pricing), true) = (
        code,
        name,
        country,
        available,
        custom_pricing,
        r.errors.is_empty(),
    ) else {
        return Err(ApiError::validation(r.errors));
    };
    let id = DatacenterId::from_uuid(Uuid::now_v7());
    let datacenter = NewDatacenter {
        code,
        name,
        country,
        available,
        custom_pricing,
    };
    let (worker, metadata) = (state.clone(), caller.metadata());
    let change = async move {
        worker
            .catalog
            .create_datacenter(id, datacenter, &metadata)
            .await
    };
    let consistency = run(&state, change, |e| {
        catalog_write_error(e, "custom", |_| "datacenter_ids".to_owned())
    })
    .await?;
    let body = datacenter_body(&state, id).await?;
    Ok(answer(
        consistency,
        StatusCode::CREATED,
        body,
        "datacenter_id",
        id.as_uuid(),
    ))
}

/// Changes a datacenter: any of `{name, country, available, custom}`; `"custom": null` stops
/// selling custom configurations there. The code cannot change.
#[utoipa::path(patch, path = "/api/v1/admin/datacenters/{datacenter_id}", tag = "catalog", security(("bearer" = [])),
    params(("datacenter_id" = Uuid, Path)), request_body = Object,
    responses((status = 200, body = DatacenterBody), (status = 404, description = "datacenter_not_found", body = crate::error::Problem),
        (status = 422, body = crate::error::Problem)))]
#[patch("/admin/datacenters/{datacenter_id}")]
pub async fn update_datacenter(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
    body: Body,
) -> Result<HttpResponse, ApiError> {
    caller.require_any(WRITERS)?;
    let id = DatacenterId::from_uuid(path.into_inner());
    let body = body.0;
    let mut r = Reader::default();
    r.only(
        "",
        &body,
        &["code", "name", "country", "available", "custom"],
    );
    r.immutable(&body, "code", "a datacenter's code cannot change");
    let name = changed(&mut r, &body, "name", |r, p, v| {
        r.text(p, v, CatalogName::parse)
    });
    let country = changed(&mut r, &body, "country", |r, p, v| r.country(p, v));
    let available = changed(&mut r, &body, "available", |r, p, v| r.boolean(p, v, true));
    let custom_pricing = match patch_field(&body, "custom") {
        Patch::Absent => Some(None),
        Patch::Null | Patch::Value(_) => {
            custom_field(&mut r, &body, state.catalog.settlement_currency()).map(Some)
        }
    };
    let (Some(name), Some(country), Some(available), Some(custom_pricing), true) = (
        name,
        country,
        available,
        custom_pricing,
        r.errors.is_empty(),
    ) else {
        return Err(ApiError::validation(r.errors));
    };
    let changes = DatacenterChanges {
        name,
        country,
        available,
        custom_pricing,
    };
    let (worker, metadata) = (state.clone(), caller.metadata());
    let change = async move {
        worker
            .catalog
            .update_datacenter(id, changes, &metadata)
            .await
    };
    let consistency = run(&state, change, |e| {
        catalog_write_error(e, "custom", |_| "datacenter_ids".to_owned())
    })
    .await?;
    let body = datacenter_body(&state, id).await?;
    Ok(answer(
        consistency,
        StatusCode::OK,
        body,
        "datacenter_id",
        id.as_uuid(),
    ))
}

/// Filters of `GET /admin/datacenters`.
#[derive(Debug, Deserialize, IntoParams)]
pub struct DatacenterQuery {
    /// Only datacenters that do (`true`) or do not (`false`) take new orders.
    pub available: Option<bool>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// Every datacenter, available or not, by code.
#[utoipa::path(get, path = "/api/v1/admin/datacenters", tag = "catalog", security(("bearer" = [])), params(DatacenterQuery),
    responses((status = 200, body = DatacenterPage), (status = 403, body = crate::error::Problem)))]
#[get("/admin/datacenters")]
pub async fn list_datacenters(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<DatacenterQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require_any(READERS)?;
    let mut errors = Vec::new();
    let (limit, after) = paging(&mut errors, query.limit, query.cursor.as_deref())?;
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let filter = DatacenterFilter {
        available: query.available,
        after: after.map(DatacenterId::from_uuid),
        limit,
    };
    Ok(HttpResponse::Ok().json(datacenter_page(&state, &filter).await?))
}

// --- Images --------------------------------------------------------------------------------------

async fn image_body(state: &AppState, id: ImageId) -> Result<Option<Value>, ApiError> {
    catalog_model::get_image(&state.pool, id)
        .await?
        .map(|view| to_json(ImageBody::from(view)))
        .transpose()
}

fn min_disk(r: &mut Reader, path: &str, value: Option<&Value>) -> Option<MinDiskGib> {
    let gib = r.count(path, value)?;
    match MinDiskGib::new(gib) {
        Ok(disk) => Some(disk),
        Err(e) => {
            r.refuse(path, &e);
            None
        }
    }
}

const IMAGE_FIELDS: &[&str] = &["name", "version", "family", "min_disk_gib", "available"];

/// Adds an image: `{name, version, family, min_disk_gib, available?}`.
#[utoipa::path(post, path = "/api/v1/admin/images", tag = "catalog", security(("bearer" = [])),
    params(IdempotencyKeyHeader), request_body = Object,
    responses((status = 201, body = ImageBody), (status = 422, body = crate::error::Problem)))]
#[post("/admin/images", wrap = "Idempotent::new()")]
pub async fn create_image(
    state: web::Data<AppState>,
    caller: Caller,
    body: Body,
) -> Result<HttpResponse, ApiError> {
    caller.require_any(WRITERS)?;
    let body = body.0;
    let mut r = Reader::default();
    r.only("", &body, IMAGE_FIELDS);
    let name = r.text("name", body.get("name"), CatalogName::parse);
    let version = r.text("version", body.get("version"), ImageVersion::parse);
    let family = r.text("family", body.get("family"), OsFamily::parse);
    let min_disk_gib = min_disk(&mut r, "min_disk_gib", body.get("min_disk_gib"));
    let available = r.boolean("available", body.get("available"), true);
    let (Some(name), Some(version), Some(family), Some(min_disk_gib), Some(available), true) = (
        name,
        version,
        family,
        min_disk_gib,
        available,
        r.errors.is_empty(),
    ) else {
        return Err(ApiError::validation(r.errors));
    };
    let id = ImageId::from_uuid(Uuid::now_v7());
    let image = NewImage {
        name,
        version,
        family,
        min_disk_gib,
        available,
    };
    let (worker, metadata) = (state.clone(), caller.metadata());
    let change = async move { worker.catalog.create_image(id, image, &metadata).await };
    let consistency = run(&state, change, |e| {
        catalog_write_error(e, "prices", |_| "datacenter_ids".to_owned())
    })
    .await?;
    let body = image_body(&state, id).await?;
    Ok(answer(
        consistency,
        StatusCode::CREATED,
        body,
        "image_id",
        id.as_uuid(),
    ))
}

/// Changes an image: any of `{name, version, family, min_disk_gib, available}`.
#[utoipa::path(patch, path = "/api/v1/admin/images/{image_id}", tag = "catalog", security(("bearer" = [])),
    params(("image_id" = Uuid, Path)), request_body = Object,
    responses((status = 200, body = ImageBody), (status = 404, description = "image_not_found", body = crate::error::Problem),
        (status = 422, body = crate::error::Problem)))]
#[patch("/admin/images/{image_id}")]
pub async fn update_image(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
    body: Body,
) -> Result<HttpResponse, ApiError> {
    caller.require_any(WRITERS)?;
    let id = ImageId::from_uuid(path.into_inner());
    let body = body.0;
    let mut r = Reader::default();
    r.only("", &body, IMAGE_FIELDS);
    let name = changed(&mut r, &body, "name", |r, p, v| {
        r.text(p, v, CatalogName::parse)
    });
    let version = changed(&mut r, &body, "version", |r, p, v| {
        r.text(p, v, ImageVersion::parse)
    });
    let family = changed(&mut r, &body, "family", |r, p, v| {
        r.text(p, v, OsFamily::parse)
    });
    let min_disk_gib = changed(&mut r, &body, "min_disk_gib", min_disk);
    let available = changed(&mut r, &body, "available", |r, p, v| r.boolean(p, v, true));
    let (Some(name), Some(version), Some(family), Some(min_disk_gib), Some(available), true) = (
        name,
        version,
        family,
        min_disk_gib,
        available,
        r.errors.is_empty(),
    ) else {
        return Err(ApiError::validation(r.errors));
    };
    let changes = ImageChanges {
        name,
        version,
        family,
        min_disk_gib,
        available,
    };
    let (worker, metadata) = (state.clone(), caller.metadata());
    let change = async move { worker.catalog.update_image(id, changes, &metadata).await };
    let consistency = run(&state, change, |e| {
        catalog_write_error(e, "prices", |_| "datacenter_ids".to_owned())
    })
    .await?;
    let body = image_body(&state, id).await?;
    Ok(answer(
        consistency,
        StatusCode::OK,
        body,
        "image_id",
        id.as_uuid(),
    ))
}

/// Filters of `GET /admin/images`.
#[derive(Debug, Deserialize, IntoParams)]
pub struct ImageQuery {
    /// Only images that are (`true`) or are not (`false`) offered.
    pub available: Option<bool>,
    /// `linux`, `windows` or `bsd`.
    pub family: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// Every image, available or not, by name and version.
#[utoipa::path(get, path = "/api/v1/admin/images", tag = "catalog", security(("bearer" = [])), params(ImageQuery),
    responses((status = 200, body = ImagePage), (status = 403, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
#[get("/admin/images")]
pub async fn list_images(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<ImageQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require_any(READERS)?;
    let query = query.into_inner();
    let mut errors = Vec::new();
    let (limit, after) = paging(&mut errors, query.limit, query.cursor.as_deref())?;
    let families: Vec<&str> = OsFamily::ALL.iter().map(OsFamily::as_str).collect();
    let family = one_of(&mut errors, "family", query.family, &families)
        .and_then(|f| OsFamily::parse(&f).ok());
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let filter = ImageFilter {
        available: query.available,
        family,
        after: after.map(ImageId::from_uuid),
        limit,
    };
    Ok(HttpResponse::Ok().json(image_page(&state, &filter).await?))
}

// --- Plans ---------------------------------------------------------------------------------------

async fn plan_json(state: &AppState, id: PlanId) -> Result<Option<Value>, ApiError> {
    match plan_body(state, id.as_uuid()).await {
        Ok(body) => Ok(Some(to_json(body)?)),
        Err(e) if e.status == StatusCode::NOT_FOUND => Ok(None),
        Err(e) => Err(e),
    }
}

/// The field of the datacenter `id` in the request's `datacenter_ids`.
fn datacenter_field(given: &[DatacenterId], id: DatacenterId) -> String {
    match given.iter().position(|d| *d == id) {
        Some(index) => format!("datacenter_ids[{index}]"),
        None => "datacenter_ids".to_owned(),
    }
}

const PLAN_FIELDS: &[&str] = &["code", "name", "resources", "prices", "datacenter_ids"];

/// Adds a plan: `{code, name, resources, prices, datacenter_ids}`.
#[utoipa::path(post, path = "/api/v1/admin/plans", tag = "catalog", security(("bearer" = [])),
    params(IdempotencyKeyHeader), request_body = Object,
    responses((status = 201, body = PlanBody), (status = 409, description = "code_taken", body = crate::error::Problem),
        (status = 422, body = crate::error::Problem)))]
#[post("/admin/plans", wrap = "Idempotent::new()")]
pub async fn create_plan(
    state: web::Data<AppState>,
    caller: Caller,
    body: Body,
) -> Result<HttpResponse, ApiError> {
    caller.require_any(WRITERS)?;
    let settlement = state.catalog.settlement_currency();
    let body = body.0;
    let mut r = Reader::default();
    r.only("", &body, PLAN_FIELDS);
    let code = r.text("code", body.get("code"), PlanCode::parse);
    let name = r.text("name", body.get("name"), CatalogName::parse);
    let resources = r.plan_resources("resources", body.get("resources"));
    let prices = r.price_table("prices", body.get("prices"), settlement);
    let datacenters = r.datacenter_ids("datacenter_ids", body.get("datacenter_ids"));
    let (Some(code), Some(name), Some(resources), Some(prices), Some((given, datacenters)), true) = (
        code,
        name,
        resources,
        prices,
        datacenters,
        r.errors.is_empty(),
    ) else {
        return Err(ApiError::validation(r.errors));
    };
    let id = PlanId::from_uuid(Uuid::now_v7());
    let plan = NewPlan {
        code,
        name,
        resources,
        prices,
        datacenters,
    };
    let (worker, metadata) = (state.clone(), caller.metadata());
    let change = async move { worker.catalog.create_plan(id, plan, &metadata).await };
    let consistency = run(&state, change, |e| {
        catalog_write_error(e, "prices", |d| datacenter_field(&given, d))
    })
    .await?;
    let body = plan_json(&state, id).await?;
    Ok(answer(
        consistency,
        StatusCode::CREATED,
        body,
        "plan_id",
        id.as_uuid(),
    ))
}

/// Changes a plan: any of `{name, prices, datacenter_ids}`. Its code and resources cannot change
/// (VMs on it rely on them): create another plan instead.
#[utoipa::path(patch, path = "/api/v1/admin/plans/{plan_id}", tag = "catalog", security(("bearer" = [])),
    params(("plan_id" = Uuid, Path)), request_body = Object,
    responses((status = 200, body = PlanBody), (status = 404, description = "plan_not_found", body = crate::error::Problem),
        (status = 422, body = crate::error::Problem)))]
#[patch("/admin/plans/{plan_id}")]
pub async fn update_plan(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
    body: Body,
) -> Result<HttpResponse, ApiError> {
    caller.require_any(WRITERS)?;
    let settlement = state.catalog.settlement_currency();
    let id = PlanId::from_uuid(path.into_inner());
    let body = body.0;
    let mut r = Reader::default();
    r.only("", &body, PLAN_FIELDS);
    r.immutable(&body, "code", "a plan's code cannot change");
    r.immutable(
        &body,
        "resources",
        "a plan's resources cannot change (VMs on it rely on them); create another plan",
    );
    let name = changed(&mut r, &body, "name", |r, p, v| {
        r.text(p, v, CatalogName::parse)
    });
    let prices = changed(&mut r, &body, "prices", |r, p, v| {
        r.price_table(p, v, settlement)
    });
    let datacenters = changed(&mut r, &body, "datacenter_ids", |r, p, v| {
        r.datacenter_ids(p, v)
    });
    let (Some(name), Some(prices), Some(datacenters), true) =
        (name, prices, datacenters, r.errors.is_empty())
    else {
        return Err(ApiError::validation(r.errors));
    };
    let (given, datacenters) = match datacenters {
        Some((given, set)) => (given, Some(set)),
        None => (Vec::new(), None),
    };
    let changes = PlanChanges {
        name,
        prices,
        datacenters,
    };
    let (worker, metadata) = (state.clone(), caller.metadata());
    let change = async move { worker.catalog.update_plan(id, changes, &metadata).await };
    let consistency = run(&state, change, |e| {
        catalog_write_error(e, "prices", |d| datacenter_field(&given, d))
    })
    .await?;
    let body = plan_json(&state, id).await?;
    Ok(answer(
        consistency,
        StatusCode::OK,
        body,
        "plan_id",
        id.as_uuid(),
    ))
}

/// Filters of `GET /admin/plans`.
#[derive(Debug, Deserialize, IntoParams)]
pub struct AdminPlanQuery {
    /// `active` or `retired`.
    pub status: Option<String>,
    /// Only plans sold in this datacenter.
    pub datacenter_id: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// Every plan, retired ones included, cheapest first.
#[utoipa::path(get, path = "/api/v1/admin/plans", tag = "catalog", security(("bearer" = [])), params(AdminPlanQuery),
    responses((status = 200, body = PlanPage), (status = 403, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
#[get("/admin/plans")]
pub async fn list_plans(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<AdminPlanQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require_any(READERS)?;
    let query = query.into_inner();
    let mut errors = Vec::new();
    let (limit, after) = paging(&mut errors, query.limit, query.cursor.as_deref())?;
    let statuses: Vec<&str> = PlanStatus::ALL.iter().map(PlanStatus::as_str).collect();
    let status = one_of(&mut errors, "status", query.status, &statuses)
        .and_then(|s| PlanStatus::from_name(&s));
    let datacenter = datacenter_filter(&mut errors, query.datacenter_id.as_deref());
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let filter = PlanFilter {
        status,
        datacenter,
        after: after.map(PlanId::from_uuid),
        limit,
    };
    Ok(HttpResponse::Ok().json(plan_page(&state, &filter).await?))
}

async fn plan_status_change(
    state: web::Data<AppState>,
    caller: Caller,
    id: PlanId,
    retire: bool,
) -> Result<HttpResponse, ApiError> {
    caller.require_any(WRITERS)?;
    let (worker, metadata) = (state.clone(), caller.metadata());
    let change = async move {
        if retire {
            worker.catalog.retire_plan(id, &metadata).await
        } else {
            worker.catalog.reactivate_plan(id, &metadata).await
        }
    };
    let consistency = run(&state, change, |e| {
        catalog_write_error(e, "prices", |_| "datacenter_ids".to_owned())
    })
    .await?;
    let body = plan_json(&state, id)
        .await?
        .ok_or_else(|| not_found("plan_not_found", "plan"))?;
    Ok(consistency.mark(HttpResponse::Ok().json(body)))
}

/// Takes a plan off the shelf: no longer listed nor orderable; services on it keep it.
#[utoipa::path(post, path = "/api/v1/admin/plans/{plan_id}/retire", tag = "catalog", security(("bearer" = [])),
    params(("plan_id" = Uuid, Path)),
    responses((status = 200, body = PlanBody), (status = 404, description = "plan_not_found", body = crate::error::Problem),
        (status = 409, description = "plan_already_retired", body = crate::error::Problem)))]
#[post("/admin/plans/{plan_id}/retire")]
pub async fn retire_plan(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    plan_status_change(state, caller, PlanId::from_uuid(path.into_inner()), true).await
}

/// Puts a retired plan back on the shelf.
#[utoipa::path(post, path = "/api/v1/admin/plans/{plan_id}/reactivate", tag = "catalog", security(("bearer" = [])),
    params(("plan_id" = Uuid, Path)),
    responses((status = 200, body = PlanBody), (status = 404, description = "plan_not_found", body = crate::error::Problem),
        (status = 409, description = "plan_not_retired", body = crate::error::Problem)))]
#[post("/admin/plans/{plan_id}/reactivate")]
pub async fn reactivate_plan(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    plan_status_change(state, caller, PlanId::from_uuid(path.into_inner()), false).await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::input::join;
    use super::*;

    #[test]
    fn a_datacenter_that_a_plan_names_is_reported_at_its_index_in_the_request() {
        let a = DatacenterId::from_uuid(Uuid::from_u128(1));
        let b = DatacenterId::from_uuid(Uuid::from_u128(2));

        assert_eq!(datacenter_field(&[a, b], b), "datacenter_ids[1]");
        assert_eq!(
            datacenter_field(&[a], b),
            "datacenter_ids",
            "an id not in the request names the whole list"
        );
        assert_eq!(join("custom.min", "vcpus"), "custom.min.vcpus");
        assert_eq!(join("", "code"), "code");
    }
}
