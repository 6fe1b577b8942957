//! `/invoices*` and `/admin/invoices*`: a customer's own invoices, and every invoice for billing
//! staff, as JSON or, with `Accept: application/pdf`, as the printable document.
//!
//! Someone else's invoice is answered like an unknown one (404). Reading every invoice is open to
//! `billing`, `admin`, `support` and `auditor`. Invoices are created by the orders flow through
//! [`stratus_commands::invoices::Invoices`]; these routes only read the `invoices` read model.

use actix_web::http::header;
use actix_web::{get, web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use stratus_domain::invoice::InvoiceStatus;
use stratus_domain::{Money, Role};
use stratus_projections::invoices::{self as invoice_model, InvoiceFilter, InvoiceView};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::error::{ApiError, FieldError};
use crate::extract::Caller;
use crate::invoice_pdf::{self, Seller};
use crate::routes::admin_accounts::one_of;
use crate::routes::audit::page_limit;
use crate::routes::wallet::{decode_position, encode_position};
use crate::state::AppState;

/// Who may read every invoice.
const READERS: &[Role] = &[Role::Billing, Role::Admin, Role::Support, Role::Auditor];

/// The media type of the printable invoice.
pub const PDF: &str = "application/pdf";

/// One line of an invoice.
#[derive(Debug, Serialize, ToSchema)]
pub struct LineBody {
    pub description: String,
    pub quantity: u32,
    /// Exact; may be finer than the minor unit (hourly prices).
    #[schema(value_type = Object)]
    pub unit_price: Money,
    #[schema(value_type = Object)]
    pub amount: Money,
}

/// The VAT of an invoice.
#[derive(Debug, Serialize, ToSchema)]
pub struct TaxBody {
    /// ISO 3166-1 alpha-2; `null` when no tax applies.
    pub country: Option<String>,
    /// Percent as a decimal string (`"19"`, `"7.5"`).
    pub rate: String,
    #[schema(value_type = Object)]
    pub amount: Money,
}

/// Who the invoice is addressed to (a snapshot taken when it was drafted).
#[derive(Debug, Serialize, ToSchema)]
pub struct BillToBody {
    pub name: String,
    pub email: String,
    pub country: Option<String>,
}

/// An invoice.
#[derive(Debug, Serialize, ToSchema)]
pub struct InvoiceBody {
    pub invoice_id: Uuid,
    /// `2026-000042`; `null` while a draft.
    pub number: Option<String>,
    /// `draft`, `issued`, `paid` or `void`.
    pub status: &'static str,
    pub account_id: Uuid,
    pub order_id: Option<Uuid>,
    pub currency: String,
    /// `hourly`, `monthly`, `quarterly`, `semiannual` or `annual`.
    pub billing_period: String,
    pub lines: Vec<LineBody>,
    #[schema(value_type = Object)]
    pub subtotal: Money,
    #[schema(value_type = Object)]
    pub discount: Money,
    pub discount_code: Option<String>,
    #[schema(value_type = Object)]
    pub net: Money,
    pub tax: TaxBody,
    #[schema(value_type = Object)]
    pub total: Money,
    pub bill_to: BillToBody,
    /// What paid it (for example the wallet ledger reference), once paid.
    pub payment_reference: Option<String>,
    pub void_reason: Option<String>,
    pub issued_at: Option<DateTime<Utc>>,
    pub paid_at: Option<DateTime<Utc>>,
    pub voided_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl From<InvoiceView> for InvoiceBody {
    fn from(v: InvoiceView) -> Self {
        Self {
            invoice_id: v.invoice_id,
            number: v.number,
            status: v.status.as_str(),
            account_id: v.account_id,
            order_id: v.order_id,
            currency: v.currency.code().to_owned(),
            billing_period: v.billing_period,
            lines: v
                .lines
                .into_iter()
                .map(|line| LineBody {
                    description: line.description,
                    quantity: line.quantity,
                    unit_price: line.unit_price,
                    amount: line.amount,
                })
                .collect(),
            subtotal: v.subtotal,
            discount: v.discount,
            discount_code: v.discount_code,
            net: v.net,
            tax: TaxBody {
                country: v.tax_country,
                rate: v.tax_rate.to_decimal_string(),
                amount: v.tax,
            },
            total: v.total,
            bill_to: BillToBody {
                name: v.bill_to.name.as_str().to_owned(),
                email: v.bill_to.email.as_str().to_owned(),
                country: v.bill_to.country.map(|c| c.as_str().to_owned()),
            },
            payment_reference: v.payment_reference,
            void_reason: v.void_reason,
            issued_at: v.issued_at,
            paid_at: v.paid_at,
            voided_at: v.voided_at,
            created_at: v.created_at,
        }
    }
}

/// A page of invoices, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct InvoicePage {
    pub invoices: Vec<InvoiceBody>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Filters of `GET /invoices`.
#[derive(Debug, Deserialize, IntoParams)]
pub struct InvoiceQuery {
    /// `draft`, `issued`, `paid` or `void`.
    pub status: Option<String>,
    /// Only invoices created at or after this time (RFC 3339).
    pub from: Option<DateTime<Utc>>,
    /// Only invoices created before this time (RFC 3339).
    pub to: Option<DateTime<Utc>>,
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Filters of `GET /admin/invoices`.
#[derive(Debug, Deserialize, IntoParams)]
pub struct AdminInvoiceQuery {
    /// Only this account's invoices.
    pub account_id: Option<Uuid>,
    /// `draft`, `issued`, `paid` or `void`.
    pub status: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

fn filter_of(
    account_id: Option<Uuid>,
    status: Option<String>,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    limit: Option<i64>,
    cursor: Option<String>,
) -> Result<InvoiceFilter, ApiError> {
    let limit = page_limit(limit)?;
    let mut errors: Vec<FieldError> = Vec::new();
    let names: Vec<&str> = InvoiceStatus::ALL
        .iter()
        .map(InvoiceStatus::as_str)
        .collect();
    let status = one_of(&mut errors, "status", status, &names)
        .and_then(|name| InvoiceStatus::from_name(&name));
    let before = decode_position(&mut errors, cursor.as_deref());
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    Ok(InvoiceFilter {
        account_id,
        status,
        from,
        to,
        before,
        limit,
    })
}

async fn page(state: &AppState, filter: &InvoiceFilter) -> Result<InvoicePage, ApiError> {
    let found = invoice_model::list_invoices(&state.pool, filter).await?;
    let full = i64::try_from(found.len()).unwrap_or(i64::MAX) == filter.limit;
    let next_cursor = found
        .last()
        .filter(|_| full)
        .map(|invoice| encode_position(invoice.position));
    Ok(InvoicePage {
        invoices: found.into_iter().map(InvoiceBody::from).collect(),
        next_cursor,
    })
}

/// Whether the client asked for the PDF: `application/pdf` is acceptable (q > 0) and not ranked
/// below `application/json`; on a tie the one listed first wins. Anything else, `*/*` included,
/// gets JSON.
pub fn wants_pdf(accept: Option<&str>) -> bool {
    let Some(accept) = accept else { return false };
    let mut pdf: Option<(f32, usize)> = None;
    let mut json: Option<(f32, usize)> = None;
    for (index, range) in accept.split(',').enumerate() {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let quality = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        match media.as_str() {
            PDF => pdf = pdf.or(Some((quality, index))),
            "application/json" => json = json.or(Some((quality, index))),
            _ => {}
        }
    }
    match (pdf, json) {
        (Some((q, _)), _) if q <= 0.0 => false,
        (Some(_), None) => true,
        (Some((pq, pi)), Some((jq, ji))) => pq > jq || (pq == jq && pi < ji),
        (None, _) => false,
    }
}

/// The invoice as JSON, or as PDF when the request asks for it.
fn answer(state: &AppState, request: &HttpRequest, invoice: InvoiceView) -> HttpResponse {
    let accept = request
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok());
    if !wants_pdf(accept) {
        return HttpResponse::Ok().json(InvoiceBody::from(invoice));
    }
    let invoicing = &state.settings.invoicing;
    let seller = Seller {
        name: &invoicing.seller_name,
        address: invoicing.seller_address.as_deref(),
        vat_id: invoicing.seller_vat_id.as_deref(),
    };
    let document = invoice_pdf::render(&invoice, &seller);
    HttpResponse::Ok()
        .content_type(PDF)
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("inline; filename=\"{}\"", invoice_pdf::file_name(&invoice)),
        ))
        .body(document)
}

async fn find(state: &AppState, id: Uuid) -> Result<InvoiceView, ApiError> {
    invoice_model::get_invoice(&state.pool, id)
        .await?
        .ok_or_else(|| ApiError::not_found("the invoice"))
}

/// The caller's invoices, newest first.
#[utoipa::path(get, path = "/api/v1/invoices", tag = "invoices", security(("bearer" = [])),
    params(InvoiceQuery), responses((status = 200, body = InvoicePage), (status = 422, body = crate::error::Problem)))]
#[get("/invoices")]
pub async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<InvoiceQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = query.into_inner();
    let account = Some(caller.account_id.as_uuid());
    let filter = filter_of(account, q.status, q.from, q.to, q.limit, q.cursor)?;
    Ok(HttpResponse::Ok().json(page(&state, &filter).await?))
}

/// One of the caller's invoices; `Accept: application/pdf` answers the printable document.
#[utoipa::path(get, path = "/api/v1/invoices/{id}", tag = "invoices", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, description = "the invoice", content((InvoiceBody = "application/json"), ("application/pdf"))),
        (status = 404, body = crate::error::Problem)))]
#[get("/invoices/{id}")]
pub async fn get_one(
    state: web::Data<AppState>,
    caller: Caller,
    request: HttpRequest,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let invoice = find(&state, path.into_inner()).await?;
    if invoice.account_id != caller.account_id.as_uuid() {
        return Err(ApiError::not_found("the invoice"));
    }
    Ok(answer(&state, &request, invoice))
}

/// Every invoice, newest first, for billing staff.
#[utoipa::path(get, path = "/api/v1/admin/invoices", tag = "billing", security(("bearer" = [])),
    params(AdminInvoiceQuery), responses((status = 200, body = InvoicePage), (status = 403, body = crate::error::Problem),
        (status = 422, body = crate::error::Problem)))]
#[get("/admin/invoices")]
pub async fn admin_list(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<AdminInvoiceQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require_any(READERS)?;
    let q = query.into_inner();
    let filter = filter_of(q.account_id, q.status, q.from, q.to, q.limit, q.cursor)?;
    Ok(HttpResponse::Ok().json(page(&state, &filter).await?))
}

/// Any invoice; `Accept: application/pdf` answers the printable document.
#[utoipa::path(get, path = "/api/v1/admin/invoices/{id}", tag = "billing", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, description = "the invoice", content((InvoiceBody = "application/json"), ("application/pdf"))),
        (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem)))]
#[get("/admin/invoices/{id}")]
pub async fn admin_get_one(
    state: web::Data<AppState>,
    caller: Caller,
    request: HttpRequest,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    caller.require_any(READERS)?;
    let invoice = find(&state, path.into_inner()).await?;
    Ok(answer(&state, &request, invoice))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_explicit_preference_for_pdf_gets_the_pdf() {
        let cases = [
            (None, false),
            (Some("application/pdf"), true),
            (Some("Application/PDF"), true),
            (Some("*/*"), false),
            (Some("application/json"), false),
            (Some("application/pdf, application/json"), true),
            (Some("application/json, application/pdf"), false),
            (Some("application/json;q=0.5, application/pdf"), true),
            (Some("application/pdf;q=0.4, application/json"), false),
            (Some("application/pdf;q=0"), false),
            (Some("text/html, application/pdf;q=0.9, */*;q=0.8"), true),
        ];
        for (accept, expected) in cases {
            assert_eq!(wants_pdf(accept), expected, "{accept:?}");
        }
    }
}
