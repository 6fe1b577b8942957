//! Invoices end to end: gapless numbers under concurrency through the real service, the repair of
//! a draft left by a crash, numbers per year, voiding, the routes (own, someone else's, PDF, staff
//! filters) and a rebuild of the read model.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Datelike, TimeZone, Utc};
use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::PgPool;
use stratus_commands::aggregate_store::CommandError;
use stratus_commands::invoice_issuer::{self, InvoiceIssuer};
use stratus_commands::invoices::numbers::{self, NumberingError};
use stratus_commands::invoices::{Invoices, IssuedInvoice};
use stratus_commands::CommandMetadata;
use stratus_domain::invoice::{BillTo, InvoiceError, InvoiceStatus};
use stratus_domain::pricing::{
    quote, BillingPeriod, Offer, Percent, PeriodPrice, PriceTable, PricingRequest, Quote, TaxRate,
};
use stratus_domain::{
    AccountId, Country, Currency, Email, InvoiceId, Money, OrderId, PersonName, Reason, Role,
};
use stratus_projections::invoices as invoice_model;
use stratus_projections::{Feed, FeedPosition};
use stratus_tests::{fresh_pool, TestApp};
use uuid::Uuid;

/// How long a test waits for the feed (reactor or projection) to pass a position.
const FEED_WAIT: Duration = Duration::from_secs(30);

fn eur(amount: &str) -> Money {
    Money::from_decimal_str(amount, Currency::EUR).unwrap()
}

/// A 7.00 monthly plan, German VAT: 7.00 + 1.33 = 8.33.
pub fn sample_quote() -> Quote {
    let prices = PriceTable::new(
        eur("0.012"),
        eur("7.00"),
        PeriodPrice::Discount {
            percent: Percent::parse("5").unwrap(),
        },
        PeriodPrice::Discount {
            percent: Percent::parse("10").unwrap(),
        },
        PeriodPrice::Discount {
            percent: Percent::parse("15").unwrap(),
        },
    )
    .unwrap();
    quote(&PricingRequest {
        offer: Offer::Plan {
            name: "S-2",
            prices: &prices,
        },
        billing_period: BillingPeriod::Monthly,
        discount: None,
        tax: TaxRate {
            country: Some(Country::parse("DE").unwrap()),
            rate: Percent::parse("19").unwrap(),
        },
    })
    .unwrap()
}

pub fn bill_to(email: &str) -> BillTo {
    BillTo {
        name: PersonName::parse("Ada Lovelace").unwrap(),
        email: Email::parse(email).unwrap(),
        country: Some(Country::parse("DE").unwrap()),
    }
}

fn metadata() -> CommandMetadata {
    CommandMetadata::system(Uuid::now_v7(), "test")
}

fn new_invoice_id() -> InvoiceId {
    InvoiceId::from_uuid(Uuid::now_v7())
}

/// Drafts and issues an invoice of `account` through the real service.
pub async fn issue_for(invoices: &Invoices, account: AccountId) -> IssuedInvoice {
    invoices
        .create_and_issue(
            new_invoice_id(),
            account,
            Some(OrderId::from_uuid(Uuid::now_v7())),
            bill_to("ada@example.com"),
            sample_quote(),
            &metadata(),
        )
        .await
        .unwrap()
}

async fn count(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
}

async fn wait_for(app: &TestApp, names: &[&str], position: FeedPosition) {
    let feed = &app.running.as_ref().unwrap().state.feed;
    feed.wake();
    assert!(
        feed.wait_for(names, position, FEED_WAIT).await.unwrap(),
        "{names:?} did not reach {position}"
    );
}

// ---------------------------------------------------------------------------------------------
// Numbering
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn fifty_parallel_issues_get_numbers_one_to_fifty_without_gap_or_duplicate() {
    let app = TestApp::spawn().await;
    let invoices = app.running.as_ref().unwrap().state.invoices.clone();
    let account = AccountId::from_uuid(Uuid::now_v7());
    let ids: Vec<InvoiceId> = (0..50).map(|_| new_invoice_id()).collect();
    let issue = |id: InvoiceId| {
        let invoices = invoices.clone();
        tokio::spawn(async move {
            invoices
                .create_and_issue(
                    id,
                    account,
                    None,
                    bill_to("ada@example.com"),
                    sample_quote(),
                    &metadata(),
                )
                .await
        })
    };

    let first: Vec<IssuedInvoice> = join_all(ids.iter().map(|id| issue(*id)))
        .await
        .into_iter()
        .map(|joined| joined.unwrap().unwrap())
        .collect();
    let events_after_first = count(
        &app.pool,
        "SELECT count(*) FROM events WHERE aggregate_type = 'invoice'",
    )
    .await;
    let again: Vec<IssuedInvoice> = join_all(ids.iter().map(|id| issue(*id)))
        .await
        .into_iter()
        .map(|joined| joined.unwrap().unwrap())
        .collect();

    let year = first[0].number.year();
    let sequences: BTreeSet<u32> = first.iter().map(|i| i.number.sequence()).collect();
    assert_eq!(sequences, (1..=50).collect::<BTreeSet<u32>>());
    assert!(first.iter().all(|i| i.number.year() == year));
    assert_eq!(events_after_first, 100, "one draft and one issue each");
    for (before, after) in first.iter().zip(&again) {
        assert_eq!(after.invoice_id, before.invoice_id);
        assert_eq!(after.number, before.number);
        assert!(after.replayed, "{after:?}");
    }
    assert_eq!(
        count(
            &app.pool,
            "SELECT count(*) FROM events WHERE aggregate_type = 'invoice'"
        )
        .await,
        100,
        "calling again appended nothing"
    );
    let counters = app
        .rows("SELECT year, last_sequence FROM invoice_number_counters")
        .await;
    assert_eq!(counters.len(), 1);
    assert_eq!(counters[0]["last_sequence"], 50);
    assert_eq!(
        count(&app.pool, "SELECT count(*) FROM invoice_numbers").await,
        50
    );
    let last = first.iter().map(|i| i.position).max().unwrap();
    wait_for(&app, &[invoice_model::NAME], last).await;
    let listed = invoice_model::list_invoices(
        &app.pool,
        &invoice_model::InvoiceFilter {
            status: Some(InvoiceStatus::Issued),
            limit: 100,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let numbers: BTreeSet<String> = listed.into_iter().filter_map(|i| i.number).collect();
    let expected: BTreeSet<String> = first.iter().map(|i| i.number.to_string()).collect();
    assert_eq!(numbers, expected);
}

#[tokio::test]
async fn a_draft_left_by_a_crash_is_issued_by_the_invoice_issuer_with_its_allocated_number() {
    let pool = fresh_pool().await;
    let invoices = Invoices::new(pool.clone());
    let account = AccountId::from_uuid(Uuid::now_v7());
    // The crash: drafted and numbered, never issued; and a second draft that was not even numbered.
    let crashed = new_invoice_id();
    invoices
        .draft(
            crashed,
            account,
            None,
            bill_to("ada@example.com"),
            sample_quote(),
            &metadata(),
        )
        .await
        .unwrap();
    let allocated = numbers::allocate(&pool, crashed, Utc::now()).await.unwrap();
    let unnumbered = new_invoice_id();
    invoices
        .draft(
            unnumbered,
            account,
            None,
            bill_to("ada@example.com"),
            sample_quote(),
            &metadata(),
        )
        .await
        .unwrap();
    let state = |id: InvoiceId| {
        let invoices = invoices.clone();
        async move { invoices.store().load(&id.to_string()).await.unwrap() }
    };
    assert_eq!(state(crashed).await.status(), Some(InvoiceStatus::Draft));

    let feed = Feed::new(
        pool.clone(),
        vec![Arc::new(InvoiceIssuer::new(invoices.clone()))],
    );
    for _ in 0..400 {
        feed.catch_up(invoice_issuer::NAME).await.unwrap();
        if state(unnumbered).await.status() == Some(InvoiceStatus::Issued) {
            break;
        }
        // Other tests share the cluster; their transactions can hold the fence back a moment.
        tokio::time::sleep(Duration::from_millis(25)).await;
    }

    let repaired = state(crashed).await;
    assert_eq!(repaired.status(), Some(InvoiceStatus::Issued));
    assert_eq!(repaired.number(), Some(allocated.number));
    assert_eq!(allocated.number.sequence(), 1);
    let fresh = state(unnumbered).await;
    assert_eq!(fresh.status(), Some(InvoiceStatus::Issued));
    assert_eq!(fresh.number().map(|n| n.sequence()), Some(2));
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM events WHERE event_type = 'InvoiceIssued'"
        )
        .await,
        2
    );
    // A replay of the same drafts (a rebuild) issues nothing more.
    feed.rebuild(invoice_issuer::NAME).await.unwrap();
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM events WHERE event_type = 'InvoiceIssued'"
        )
        .await,
        2
    );
}

fn at(year: i32, month: u32, day: u32, hour: u32, minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(year, month, day, hour, minute, 0)
        .unwrap()
}

#[tokio::test]
async fn sequences_restart_each_year_and_an_invoice_keeps_the_number_of_its_first_allocation() {
    let pool = fresh_pool().await;
    let invoices = Invoices::new(pool.clone());
    let account = AccountId::from_uuid(Uuid::now_v7());
    let mut ids = Vec::new();
    for _ in 0..4 {
        let id = new_invoice_id();
        invoices
            .draft(
                id,
                account,
                None,
                bill_to("ada@example.com"),
                sample_quote(),
                &metadata(),
            )
            .await
            .unwrap();
        ids.push(id);
    }

    let december = numbers::allocate(&pool, ids[0], at(2026, 12, 31, 23, 59))
        .await
        .unwrap();
    let january = numbers::allocate(&pool, ids[1], at(2027, 1, 1, 0, 0))
        .await
        .unwrap();
    let late_december = numbers::allocate(&pool, ids[2], at(2026, 12, 31, 23, 59))
        .await
        .unwrap();
    let retried = numbers::allocate(&pool, ids[0], at(2027, 1, 1, 0, 5))
        .await
        .unwrap();
    let second_january = numbers::allocate(&pool, ids[3], at(2027, 1, 2, 8, 0))
        .await
        .unwrap();

    assert_eq!(december.number.to_string(), "2026-000001");
    assert_eq!(january.number.to_string(), "2027-000001");
    assert_eq!(late_december.number.to_string(), "2026-000002");
    assert_eq!(second_january.number.to_string(), "2027-000002");
    assert_eq!(
        retried, december,
        "the same number and time as the first time"
    );
    assert_eq!(retried.allocated_at.year(), 2026);
    let counters = sqlx::query_as::<_, (i32, i64)>(
        "SELECT year, last_sequence FROM invoice_number_counters ORDER BY year",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(counters, vec![(2026, 2), (2027, 2)]);
}

#[tokio::test]
async fn an_invoice_that_was_never_drafted_gets_no_number_and_takes_none_from_the_sequence() {
    let pool = fresh_pool().await;

    let refused = numbers::allocate(&pool, new_invoice_id(), Utc::now()).await;

    assert!(matches!(refused, Err(NumberingError::NotDrafted(_))));
    assert_eq!(
        count(&pool, "SELECT count(*) FROM invoice_number_counters").await,
        0
    );
    assert_eq!(
        count(&pool, "SELECT count(*) FROM invoice_numbers").await,
        0
    );
}

#[tokio::test]
async fn voiding_a_draft_numbers_it_first_so_the_sequence_keeps_no_gap() {
    let pool = fresh_pool().await;
    let invoices = Invoices::new(pool.clone());
    let id = new_invoice_id();
    let account = AccountId::from_uuid(Uuid::now_v7());
    invoices
        .draft(
            id,
            account,
            None,
            bill_to("ada@example.com"),
            sample_quote(),
            &metadata(),
        )
        .await
        .unwrap();
    let reason = Reason::parse("the order was cancelled").unwrap();

    let voided = invoices
        .void(id, reason.clone(), &metadata())
        .await
        .unwrap();
    let again = invoices.void(id, reason, &metadata()).await.unwrap();

    assert_eq!(voided.status, InvoiceStatus::Void);
    assert_eq!(voided.number.map(|n| n.sequence()), Some(1));
    assert!(!voided.replayed);
    assert!(again.replayed);
    assert_eq!(again.number, voided.number);
    let issued_again = invoices.issue(id, &metadata()).await.unwrap();
    assert_eq!(Some(issued_again.number), voided.number);
}

#[tokio::test]
async fn the_service_refuses_what_the_invoice_refuses() {
    let pool = fresh_pool().await;
    let invoices = Invoices::new(pool.clone());
    let account = AccountId::from_uuid(Uuid::now_v7());
    let issued = issue_for(&invoices, account).await;
    let id = issued.invoice_id;

    let mut other_quote = sample_quote();
    other_quote.lines[0].description = "another plan".to_owned();
    let redraft = invoices
        .create_and_issue(
            id,
            account,
            None,
            bill_to("ada@example.com"),
            other_quote,
            &metadata(),
        )
        .await;
    let mut broken = sample_quote();
    broken.total = eur("9.99");
    let bad_quote = invoices
        .create_and_issue(
            new_invoice_id(),
            account,
            None,
            bill_to("ada@example.com"),
            broken,
            &metadata(),
        )
        .await;
    let paid = invoices
        .mark_paid(id, "order:1".to_owned(), &metadata())
        .await
        .unwrap();
    let paid_again = invoices
        .mark_paid(id, "order:1".to_owned(), &metadata())
        .await
        .unwrap();
    let paid_otherwise = invoices
        .mark_paid(id, "order:2".to_owned(), &metadata())
        .await;
    let void_paid = invoices
        .void(id, Reason::parse("too late").unwrap(), &metadata())
        .await;
    let unknown = invoices
        .mark_paid(new_invoice_id(), "order:3".to_owned(), &metadata())
        .await;

    assert!(matches!(
        redraft,
        Err(CommandError::Refused(InvoiceError::AlreadyDrafted))
    ));
    assert!(matches!(
        bad_quote,
        Err(CommandError::Refused(InvoiceError::TotalsDoNotAddUp))
    ));
    assert_eq!(
        count(&pool, "SELECT count(*) FROM invoice_numbers").await,
        1,
        "a refused draft takes no number"
    );
    assert_eq!((paid.status, paid.replayed), (InvoiceStatus::Paid, false));
    assert!(paid_again.replayed);
    assert_eq!(paid_again.position, paid.position);
    assert!(matches!(
        paid_otherwise,
        Err(CommandError::Refused(InvoiceError::AlreadyPaid))
    ));
    assert!(matches!(
        void_paid,
        Err(CommandError::Refused(
            InvoiceError::PaidInvoiceCannotBeVoided
        ))
    ));
    assert!(matches!(
        unknown,
        Err(CommandError::Refused(InvoiceError::NotDrafted))
    ));
}

// ---------------------------------------------------------------------------------------------
// Routes
// ---------------------------------------------------------------------------------------------

async fn get_accept(app: &TestApp, path: &str, token: &str, accept: &str) -> reqwest::Response {
    app.client
        .get(app.url(path))
        .bearer_auth(token)
        .header("accept", accept)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_customer_reads_their_own_invoice_as_json_and_as_pdf() {
    let app = TestApp::spawn().await;
    let customer = app.customer().await;
    let account = AccountId::from_uuid(customer.account_id.parse().unwrap());
    let invoices = &app.running.as_ref().unwrap().state.invoices;
    let issued = issue_for(invoices, account).await;
    wait_for(&app, &[invoice_model::NAME], issued.position).await;
    let id = issued.invoice_id;
    let number = issued.number.to_string();

    let one = app
        .get(&format!("/invoices/{id}"), Some(&customer.access_token))
        .await;
    let list = app.get("/invoices", Some(&customer.access_token)).await;
    let pdf = get_accept(
        &app,
        &format!("/invoices/{id}"),
        &customer.access_token,
        "application/pdf",
    )
    .await;

    assert_eq!(one.status, StatusCode::OK, "{}", one.body);
    let money = |amount: &str| json!({"amount": amount, "currency": "EUR"});
    let body = &one.body;
    assert_eq!(body["invoice_id"], id.to_string());
    assert_eq!(body["number"], number.as_str());
    assert_eq!(body["status"], "issued");
    assert_eq!(body["account_id"], customer.account_id.as_str());
    assert_eq!(body["currency"], "EUR");
    assert_eq!(
        body["lines"],
        json!([{"description": "S-2, 1 month", "quantity": 1,
                "unit_price": money("7.000000"), "amount": money("7.000000")}])
    );
    assert_eq!(body["subtotal"], money("7.000000"));
    assert_eq!(body["discount"], money("0.000000"));
    assert_eq!(body["discount_code"], Value::Null);
    assert_eq!(body["net"], money("7.000000"));
    assert_eq!(
        body["tax"],
        json!({"country": "DE", "rate": "19", "amount": money("1.330000")})
    );
    assert_eq!(body["total"], money("8.330000"));
    assert_eq!(
        body["bill_to"],
        json!({"name": "Ada Lovelace", "email": "ada@example.com", "country": "DE"})
    );
    assert!(body["issued_at"].is_string());
    assert_eq!(body["paid_at"], Value::Null);
    assert!(body["created_at"].is_string());
    assert_eq!(list.body["invoices"].as_array().unwrap().len(), 1);
    assert_eq!(list.body["invoices"][0]["number"], number.as_str());

    assert_eq!(pdf.status(), StatusCode::OK);
    let headers = pdf.headers().clone();
    assert_eq!(headers["content-type"], "application/pdf");
    assert_eq!(
        headers["content-disposition"],
        format!("inline; filename=\"invoice-{number}.pdf\"").as_str()
    );
    let bytes = pdf.bytes().await.unwrap();
    assert!(bytes.starts_with(b"%PDF-"));
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.contains(&number), "the number is printed");
    assert!(text.contains("8.33 EUR") && text.contains("ISSUED"));
    assert!(text.contains("(Ada Lovelace)"), "the bill-to snapshot");
}

#[tokio::test]
async fn another_customers_invoice_is_answered_like_an_unknown_one() {
    let app = TestApp::spawn().await;
    let owner = app.customer().await;
    let stranger = app.customer().await;
    let invoices = &app.running.as_ref().unwrap().state.invoices;
    let issued = issue_for(
        invoices,
        AccountId::from_uuid(owner.account_id.parse().unwrap()),
    )
    .await;
    wait_for(&app, &[invoice_model::NAME], issued.position).await;
    let id = issued.invoice_id;

    let json_reply = app
        .get(&format!("/invoices/{id}"), Some(&stranger.access_token))
        .await;
    let pdf_reply = get_accept(
        &app,
        &format!("/invoices/{id}"),
        &stranger.access_token,
        "application/pdf",
    )
    .await;
    let unknown = app
        .get(
            &format!("/invoices/{}", Uuid::now_v7()),
            Some(&stranger.access_token),
        )
        .await;
    let not_an_id = app
        .get("/invoices/not-a-uuid", Some(&stranger.access_token))
        .await;
    let list = app.get("/invoices", Some(&stranger.access_token)).await;

    json_reply.assert_problem(404, "not_found");
    assert_eq!(pdf_reply.status(), StatusCode::NOT_FOUND);
    unknown.assert_problem(404, "not_found");
    assert_eq!(unknown.body["detail"], json_reply.body["detail"]);
    assert_eq!(not_an_id.status, StatusCode::NOT_FOUND);
    assert_eq!(list.body["invoices"], json!([]));
}

#[tokio::test]
async fn staff_list_every_invoice_filtered_by_account_and_status_page_by_page() {
    let app = TestApp::spawn().await;
    let state = &app.running.as_ref().unwrap().state;
    let (first, second) = (app.customer().await, app.customer().await);
    let account = |c: &stratus_tests::Customer| AccountId::from_uuid(c.account_id.parse().unwrap());
    let paid = issue_for(&state.invoices, account(&first)).await;
    let open = issue_for(&state.invoices, account(&first)).await;
    let voided = issue_for(&state.invoices, account(&second)).await;
    state
        .invoices
        .mark_paid(paid.invoice_id, "order:paid".to_owned(), &metadata())
        .await
        .unwrap();
    let last = state
        .invoices
        .void(
            voided.invoice_id,
            Reason::parse("the order was cancelled").unwrap(),
            &metadata(),
        )
        .await
        .unwrap();
    wait_for(
        &app,
        &[invoice_model::NAME],
        last.position.max(open.position),
    )
    .await;
    let billing = app.staff_token(vec![Role::Billing]).await;
    let ids = |reply: &stratus_tests::Reply| -> Vec<String> {
        reply.body["invoices"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["invoice_id"].as_str().unwrap().to_owned())
            .collect()
    };

    let all = app.get("/admin/invoices", Some(&billing)).await;
    let of_first = app
        .get(
            &format!("/admin/invoices?account_id={}", first.account_id),
            Some(&billing),
        )
        .await;
    let only_paid = app.get("/admin/invoices?status=paid", Some(&billing)).await;
    let first_open = app
        .get(
            &format!(
                "/admin/invoices?account_id={}&status=issued",
                first.account_id
            ),
            Some(&billing),
        )
        .await;
    let page_one = app.get("/admin/invoices?limit=2", Some(&billing)).await;
    let cursor = page_one.body["next_cursor"].as_str().unwrap().to_owned();
    let page_two = app
        .get(
            &format!("/admin/invoices?limit=2&cursor={cursor}"),
            Some(&billing),
        )
        .await;
    let own_void = app
        .get("/invoices?status=void", Some(&second.access_token))
        .await;
    let bad_status = app.get("/admin/invoices?status=sent", Some(&billing)).await;
    let bad_cursor = app
        .get("/admin/invoices?cursor=nonsense", Some(&billing))
        .await;
    let bad_limit = app.get("/admin/invoices?limit=0", Some(&billing)).await;
    let bad_account = app
        .get("/admin/invoices?account_id=nobody", Some(&billing))
        .await;
    let staff_pdf = get_accept(
        &app,
        &format!("/admin/invoices/{}", paid.invoice_id),
        &billing,
        "application/pdf",
    )
    .await;
    let staff_json = app
        .get(
            &format!("/admin/invoices/{}", voided.invoice_id),
            Some(&billing),
        )
        .await;

    let (p, o, v) = (
        paid.invoice_id.to_string(),
        open.invoice_id.to_string(),
        voided.invoice_id.to_string(),
    );
    assert_eq!(
        ids(&all),
        vec![v.clone(), o.clone(), p.clone()],
        "newest first"
    );
    assert_eq!(ids(&of_first), vec![o.clone(), p.clone()]);
    assert_eq!(ids(&only_paid), vec![p.clone()]);
    assert_eq!(
        only_paid.body["invoices"][0]["payment_reference"],
        "order:paid"
    );
    assert_eq!(ids(&first_open), vec![o.clone()]);
    assert_eq!(ids(&page_one), vec![v.clone(), o]);
    assert_eq!(ids(&page_two), vec![p]);
    assert_eq!(page_two.body["next_cursor"], Value::Null);
    assert_eq!(ids(&own_void), vec![v]);
    bad_status.assert_problem(422, "validation_failed");
    assert_eq!(bad_status.error_fields(), vec!["status"]);
    bad_cursor.assert_problem(422, "validation_failed");
    assert_eq!(bad_cursor.error_fields(), vec!["cursor"]);
    bad_limit.assert_problem(422, "validation_failed");
    assert_eq!(bad_account.status.as_u16(), 422);
    assert_eq!(staff_pdf.status(), StatusCode::OK);
    let text = String::from_utf8_lossy(&staff_pdf.bytes().await.unwrap()).into_owned();
    assert!(text.starts_with("%PDF-") && text.contains("PAID") && text.contains("order:paid"));
    assert_eq!(staff_json.body["status"], "void");
    assert_eq!(staff_json.body["void_reason"], "the order was cancelled");
    assert_eq!(
        staff_json.body["number"],
        voided.number.to_string().as_str()
    );
    assert!(staff_json.body["voided_at"].is_string());
}

#[tokio::test]
async fn rebuilding_the_invoices_projection_reproduces_the_live_rows() {
    let app = TestApp::spawn().await;
    let state = &app.running.as_ref().unwrap().state;
    let account = AccountId::from_uuid(Uuid::now_v7());
    let paid = issue_for(&state.invoices, account).await;
    let voided = issue_for(&state.invoices, account).await;
    let open = issue_for(&state.invoices, account).await;
    state
        .invoices
        .mark_paid(paid.invoice_id, "order:1".to_owned(), &metadata())
        .await
        .unwrap();
    let last = state
        .invoices
        .void(
            voided.invoice_id,
            Reason::parse("duplicate").unwrap(),
            &metadata(),
        )
        .await
        .unwrap();
    wait_for(
        &app,
        &[invoice_model::NAME, invoice_issuer::NAME],
        last.position.max(open.position),
    )
    .await;
    let sql = "SELECT * FROM invoices ORDER BY id";
    let live = app.rows(sql).await;

    state.feed.rebuild(invoice_model::NAME).await.unwrap();
    state.feed.rebuild(invoice_issuer::NAME).await.unwrap();

    assert_eq!(live.len(), 3);
    assert_eq!(app.rows(sql).await, live);
    assert_eq!(
        count(
            &app.pool,
            "SELECT count(*) FROM events WHERE aggregate_type = 'invoice'"
        )
        .await,
        8,
        "three drafts, three issues, a payment and a void; the rebuild issued nothing"
    );
}
