//! The double-entry ledger and `audit verify`: postings per movement, zero sums and wallet totals
//! after a randomized run, tampering of every kind detected, rebuild equal to live.

use std::collections::BTreeMap;

use chrono::Utc;
use cqrs_es::DomainEvent;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sqlx::PgPool;
use stratus_commands::CommandError;
use stratus_domain::wallet::{
    DebitReason, PaymentGateway, RefundReason, WalletCommand, WalletEvent,
};
use stratus_domain::{AccountId, Currency, Money, PaymentId, WithdrawalId};
use stratus_projections::feed::head;
use stratus_projections::ledger::verify::{verify, AuditReport, Difference, VerifyOptions};
use stratus_projections::ledger::{self, LedgerTotal};
use stratus_tests::wallets::{
    current_wallets_read_model, minor, reference_of, sample_books, wait_for_projections,
    SampleBooks, Wallets,
};
use stratus_tests::{fresh_pool, TestApp};
use uuid::Uuid;

const WALLET_COUNT: usize = 20;
const CURRENCIES: [Currency; 3] = [Currency::EUR, Currency::USD, Currency::JPY];
const MOVEMENT_EVENTS: [&str; 4] = [
    "TopUpCompleted",
    "WalletDebited",
    "WalletRefunded",
    "WithdrawalPaidOut",
];

fn feed(app: &TestApp) -> &stratus_projections::Feed {
    &app.running.as_ref().expect("the app is running").state.feed
}

/// Verifies with the head of the log as the required position, as the CLI does.
async fn verify_now(pool: &PgPool) -> AuditReport {
    let options = VerifyOptions {
        required_position: Some(head(pool).await.unwrap()),
    };
    verify(pool, &options).await.unwrap()
}

/// One wallet as the random run knows it.
struct Model {
    account: AccountId,
    currency: Currency,
    pending_top_ups: Vec<(PaymentId, Money, PaymentGateway)>,
    debits: Vec<(String, Money)>,
    /// Requested or approved withdrawals, and whether they were approved.
    open_withdrawals: Vec<(WithdrawalId, bool)>,
    next_reference: u32,
}

/// What a random run did: the wallets, the events it appended by type, the refusals by code,
/// and the completed top-ups per gateway.
struct Run {
    wallets: Wallets,
    accounts: Vec<AccountId>,
    events: BTreeMap<String, usize>,
    refusals: BTreeMap<&'static str, usize>,
    completed_by: BTreeMap<&'static str, usize>,
}

impl Run {
    fn movements(&self) -> usize {
        MOVEMENT_EVENTS
            .iter()
            .map(|t| self.events.get(*t).copied().unwrap_or(0))
            .sum()
    }
}

/// A payable amount (whole minor units) between 1 and `max_units` major units.
fn payable(rng: &mut StdRng, currency: Currency, max_units: i64) -> Money {
    let minor_per_unit = 10_i64.pow(u32::from(currency.minor_units()));
    minor(rng.gen_range(1..=max_units) * minor_per_unit, currency)
}

/// Any amount in micro-units up to 60 major units: debits and refunds may be finer than cents.
fn fine(rng: &mut StdRng, currency: Currency) -> Money {
    Money::from_micros(rng.gen_range(1..=60_000_000), currency)
}

/// The next command for `model`, chosen at random; refusals are part of the run.
fn next_command(rng: &mut StdRng, model: &mut Model) -> WalletCommand {
    let now = Utc::now();
    let currency = model.currency;
    let roll = rng.gen_range(0..100);
    match roll {
        12..=29 if !model.pending_top_ups.is_empty() => {
            let (payment_id, amount, gateway) =
                model.pending_top_ups[rng.gen_range(0..model.pending_top_ups.len())];
            if roll < 16 {
                return WalletCommand::FailTopUp {
                    payment_id,
                    reason: "card declined".to_owned(),
                    occurred_at: now,
                };
            }
            // A bank transfer may bring in another amount than announced.
            let received = if gateway == PaymentGateway::Manual && rng.gen_bool(0.5) {
                payable(rng, currency, 200)
            } else {
                amount
            };
            WalletCommand::CompleteTopUp {
                payment_id,
                amount_received: received,
                occurred_at: now,
            }
        }
        0..=29 => {
            let gateway = PaymentGateway::ALL[rng.gen_range(0..PaymentGateway::ALL.len())];
            let payment_id = PaymentId::from_uuid(Uuid::now_v7());
            let amount = payable(rng, currency, 200);
            WalletCommand::InitiateTopUp {
                payment_id,
                amount,
                gateway,
                gateway_reference: None,
                occurred_at: now,
            }
        }
        30..=47 => {
            let reasons = [
                DebitReason::Order,
                DebitReason::Invoice,
                DebitReason::VmHour,
                DebitReason::Adjustment,
            ];
            model.next_reference += 1;
            let reference = format!("debit:{}", model.next_reference);
            WalletCommand::Debit {
                reference: reference_of(&reference),
                amount: fine(rng, currency),
                reason: reasons[rng.gen_range(0..reasons.len())],
                occurred_at: now,
            }
        }
        48..=57 => {
            model.next_reference += 1;
            let reference = reference_of(&format!("refund:{}", model.next_reference));
            let named = (!model.debits.is_empty() && rng.gen_bool(0.6))
                .then(|| model.debits[rng.gen_range(0..model.debits.len())].clone());
            match named {
                // Sometimes more than the debit: refused as refund_exceeds_debit.
                Some((debit, amount)) => WalletCommand::Refund {
                    reference,
                    refunds_debit: Some(reference_of(&debit)),
                    amount: Money::from_micros(
                        rng.gen_range(1..=amount.micros().saturating_add(1_000_000)),
                        currency,
                    ),
                    reason: RefundReason::Order,
                    occurred_at: now,
                },
                None => WalletCommand::Refund {
                    reference,
                    refunds_debit: None,
                    amount: fine(rng, currency),
                    reason: if rng.gen_bool(0.5) {
                        RefundReason::Goodwill
                    } else {
                        RefundReason::Adjustment
                    },
                    occurred_at: now,
                },
            }
        }
        68..=87 if !model.open_withdrawals.is_empty() => {
            let (withdrawal_id, approved) =
                model.open_withdrawals[rng.gen_range(0..model.open_withdrawals.len())];
            let staff = AccountId::from_uuid(Uuid::from_u128(1));
            // Mostly the next step of its life cycle; sometimes a rejection, and sometimes a
            // payout before approval (refused as withdrawal_not_approved).
            match roll {
                68..=70 => WalletCommand::RejectWithdrawal {
                    withdrawal_id,
                    reason: "destination closed".to_owned(),
                    rejected_by: staff,
                    occurred_at: now,
                },
                71..=82 if !approved => WalletCommand::ApproveWithdrawal {
                    withdrawal_id,
                    approved_by: staff,
                    occurred_at: now,
                },
                _ => WalletCommand::MarkWithdrawalPaidOut {
                    withdrawal_id,
                    occurred_at: now,
                },
            }
        }
        58..=87 => WalletCommand::RequestWithdrawal {
            withdrawal_id: WithdrawalId::from_uuid(Uuid::now_v7()),
            amount: payable(rng, currency, 30),
            destination: "DE89370400440532013000".to_owned(),
            occurred_at: now,
        },
        88..=93 => WalletCommand::SetCreditLimit {
            amount: payable(rng, currency, 200),
            occurred_at: now,
        },
        _ => WalletCommand::SetLowBalanceThreshold {
            amount: payable(rng, currency, 200),
            occurred_at: now,
        },
    }
}

/// Opens `WALLET_COUNT` wallets over three currencies and runs `steps` random commands on them.
async fn random_run(pool: &PgPool, seed: u64, steps: usize) -> Run {
    let wallets = Wallets::new(pool.clone());
    let mut rng = StdRng::seed_from_u64(seed);
    let mut models = Vec::new();
    for i in 0..WALLET_COUNT {
        let currency = CURRENCIES[i % CURRENCIES.len()];
        models.push(Model {
            account: wallets.open(currency).await,
            currency,
            pending_top_ups: Vec::new(),
            debits: Vec::new(),
            open_withdrawals: Vec::new(),
            next_reference: 0,
        });
    }
    let mut run = Run {
        accounts: models.iter().map(|m| m.account).collect(),
        wallets,
        events: BTreeMap::new(),
        refusals: BTreeMap::new(),
        completed_by: BTreeMap::new(),
    };
    for _ in 0..steps {
        let model = &mut models[rng.gen_range(0..WALLET_COUNT)];
        let command = next_command(&mut rng, model);
        let described = format!("{command:?}");
        match run.wallets.execute(model.account, command).await {
            Ok(appended) => {
                for envelope in &appended.events {
                    track(model, &envelope.payload, &mut run.completed_by);
                    *run.events.entry(envelope.payload.event_type()).or_default() += 1;
                }
            }
            Err(CommandError::Refused(refusal)) => {
                *run.refusals.entry(refusal.code()).or_default() += 1;
            }
            Err(other) => panic!("{described}: {other}"),
        }
    }
    run
}

/// Keeps the model's open top-ups, debits and open withdrawals in step with what the wallet
/// recorded, counting completed top-ups per gateway.
fn track(model: &mut Model, event: &WalletEvent, completed_by: &mut BTreeMap<&'static str, usize>) {
    match event {
        WalletEvent::TopUpInitiated {
            payment_id,
            amount,
            gateway,
            ..
        } => model.pending_top_ups.push((*payment_id, *amount, *gateway)),
        WalletEvent::WalletDebited {
            reference, amount, ..
        } => model.debits.push((reference.as_str().to_owned(), *amount)),
        WalletEvent::WithdrawalRequested { withdrawal_id, .. } => {
            model.open_withdrawals.push((*withdrawal_id, false));
        }
        WalletEvent::WithdrawalApproved { withdrawal_id, .. } => {
            for open in &mut model.open_withdrawals {
                open.1 |= open.0 == *withdrawal_id;
            }
        }
        WalletEvent::TopUpCompleted { payment_id, .. }
        | WalletEvent::TopUpFailed { payment_id, .. } => {
            if let Some(i) = model
                .pending_top_ups
                .iter()
                .position(|p| p.0 == *payment_id)
            {
                let (_, _, gateway) = model.pending_top_ups.swap_remove(i);
                if matches!(event, WalletEvent::TopUpCompleted { .. }) {
                    *completed_by.entry(gateway.as_str()).or_default() += 1;
                }
            }
        }
        WalletEvent::WithdrawalPaidOut { withdrawal_id, .. }
        | WalletEvent::WithdrawalRejected { withdrawal_id, .. } => {
            model.open_withdrawals.retain(|w| w.0 != *withdrawal_id);
        }
        _ => {}
    }
}

#[tokio::test]
async fn after_a_random_run_every_currency_sums_to_zero_and_every_wallet_total_is_its_balance() {
    let app = TestApp::spawn().await;
    let run = random_run(&app.pool, 0x5354_5241_5455_5301, 400).await;
    // The run must have exercised what it claims to test.
    for event in
        MOVEMENT_EVENTS
            .iter()
            .chain(&["TopUpFailed", "WithdrawalRejected", "CreditLimitChanged"])
    {
        assert!(
            run.events.contains_key(*event),
            "no {event} in {:?}",
            run.events
        );
    }
    assert!(
        run.refusals.contains_key("insufficient_funds"),
        "{:?}",
        run.refusals
    );
    assert_eq!(
        run.completed_by.len(),
        2,
        "both gateways: {:?}",
        run.completed_by
    );

    wait_for_projections(feed(&app), &[ledger::NAME]).await;

    let currencies = ledger::currency_totals(&app.pool).await.unwrap();
    assert_eq!(currencies.len(), 3, "{currencies:?}");
    for total in &currencies {
        assert_eq!(total.total_micros, 0, "{total:?}");
    }
    let totals: BTreeMap<Uuid, LedgerTotal> = ledger::wallet_totals(&app.pool)
        .await
        .unwrap()
        .into_iter()
        .map(|t| (t.account_id.unwrap(), t))
        .collect();
    for account in &run.accounts {
        let balance = run.wallets.replayed(*account).await.balance().unwrap();
        let total = totals.get(&account.as_uuid());
        assert_eq!(
            total.map_or(0, |t| t.total_micros),
            i128::from(balance.micros()),
            "wallet {account}"
        );
        if let Some(total) = total {
            assert_eq!(total.total(), Some(balance));
            assert_eq!(
                ledger::wallet_total(&app.pool, account.as_uuid())
                    .await
                    .unwrap()
                    .as_ref(),
                Some(total)
            );
        }
    }
    let postings: i64 = currencies.iter().map(|t| t.postings).sum();
    assert_eq!(postings, 2 * i64::try_from(run.movements()).unwrap());

    current_wallets_read_model(feed(&app)).await;
    let report = verify_now(&app.pool).await;

    assert!(report.is_clean(), "{report}");
    // The run's wallets, and the one the wallet opener gave the test admin.
    assert_eq!(report.wallets, WALLET_COUNT + 1);
    assert_eq!(report.movements, run.movements());
    assert_eq!(report.ledger.rows, 2 * run.movements());
    assert_eq!(report.ledger.events_pending, 0);
    assert_eq!(
        report.wallets_read_model.map(|w| w.rows),
        Some(WALLET_COUNT + 1)
    );
    assert_eq!(report.currencies.len(), 3);
}

#[tokio::test]
async fn the_trial_balance_posts_each_movement_against_its_counter_account() {
    let app = TestApp::spawn().await;
    let books = small_books(&app).await;

    let mut trial: Vec<(String, String, i128)> = ledger::trial_balance(&app.pool)
        .await
        .unwrap()
        .into_iter()
        .map(|t| {
            (
                t.ledger_account.unwrap(),
                t.currency.code().to_owned(),
                t.total_micros,
            )
        })
        .collect();
    trial.sort(); // the database orders by its collation

    let eur_wallet = ledger::wallet_account(books.eur.as_uuid());
    let usd_wallet = ledger::wallet_account(books.usd.as_uuid());
    let mut expected = vec![
        ("clearing:manual".to_owned(), "USD", -45_000_000),
        ("clearing:stripe".to_owned(), "EUR", -100_000_000),
        ("payouts".to_owned(), "EUR", 20_000_000),
        ("refunds:goodwill".to_owned(), "USD", -1_000_000),
        ("refunds:order".to_owned(), "EUR", -5_000_000),
        ("revenue:order".to_owned(), "EUR", 30_000_000),
        ("revenue:vm_hour".to_owned(), "USD", 13_889),
        (eur_wallet, "EUR", 55_000_000),
        (usd_wallet, "USD", 45_986_111),
    ];
    expected.sort();
    let expected: Vec<(String, String, i128)> = expected
        .into_iter()
        .map(|(a, c, m)| (a, c.to_owned(), m))
        .collect();
    assert_eq!(trial, expected);
}

/// [`sample_books`] with the ledger caught up, the wallets read model current, and a clean audit.
struct SmallBooks {
    eur: AccountId,
    usd: AccountId,
    wallets: Wallets,
}

async fn small_books(app: &TestApp) -> SmallBooks {
    let wallets = Wallets::new(app.pool.clone());
    let SampleBooks { eur, usd } = sample_books(&wallets).await;
    wait_for_projections(feed(app), &[ledger::NAME]).await;
    current_wallets_read_model(feed(app)).await;
    let report = verify_now(&app.pool).await;
    assert!(report.is_clean(), "{report}");
    SmallBooks { eur, usd, wallets }
}

async fn execute(pool: &PgPool, sql: &str) {
    sqlx::query(sql)
        .execute(pool)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

#[tokio::test]
async fn an_altered_posting_is_reported_with_its_unbalanced_currency_and_wallet() {
    let app = TestApp::spawn().await;
    let books = small_books(&app).await;
    execute(
        &app.pool,
        "UPDATE ledger_entries SET amount_micros = amount_micros - 1 WHERE kind = 'debit' AND line = 1 AND currency = 'EUR'",
    )
    .await;

    let report = verify_now(&app.pool).await;

    let d = &report.differences;
    assert_eq!(d.len(), 3, "{report}");
    assert!(
        matches!(&d[0], Difference::DifferentPosting { expected, found }
        if found.amount_micros == expected.amount_micros - 1 && found.kind == "debit")
    );
    assert_eq!(
        d[1],
        Difference::UnbalancedCurrency {
            currency: "EUR".to_owned(),
            total_micros: -1
        }
    );
    assert!(
        matches!(&d[2], Difference::WalletLedgerTotal { account_id, ledger_total_micros, .. }
        if *account_id == books.eur.as_uuid() && *ledger_total_micros == 54_999_999)
    );
    assert!(
        report.to_string().contains("FAILED: 3 differences"),
        "{report}"
    );
}

#[tokio::test]
async fn a_deleted_posting_is_reported_missing() {
    let app = TestApp::spawn().await;
    small_books(&app).await;
    execute(
        &app.pool,
        "DELETE FROM ledger_entries WHERE ledger_account = 'clearing:manual'",
    )
    .await;

    let report = verify_now(&app.pool).await;

    assert!(
        matches!(&report.differences[..], [
        Difference::MissingPosting { expected },
        Difference::UnbalancedCurrency { currency, total_micros: 45_000_000 },
    ] if expected.ledger_account == "clearing:manual" && currency == "USD"),
        "{report}"
    );
}

#[tokio::test]
async fn an_invented_pair_of_postings_is_reported_even_though_it_balances() {
    let app = TestApp::spawn().await;
    small_books(&app).await;
    execute(
        &app.pool,
        "INSERT INTO ledger_entries (global_position, line, aggregate_id, sequence, ledger_account, \
         currency, amount_micros, kind, recorded_at) \
         VALUES (999999, 1, 'forged', 1, 'revenue:order', 'EUR', 1000000, 'debit', now()), \
                (999999, 2, 'forged', 1, 'clearing:stripe', 'EUR', -1000000, 'debit', now())",
    )
    .await;

    let report = verify_now(&app.pool).await;

    assert_eq!(report.differences.len(), 2, "{report}");
    assert!(report.differences.iter().all(
        |d| matches!(d, Difference::ExtraPosting { found } if found.aggregate_id == "forged")
    ));
}

#[tokio::test]
async fn a_changed_or_missing_wallets_row_is_reported() {
    let app = TestApp::spawn().await;
    let books = small_books(&app).await;
    sqlx::query("UPDATE wallets SET balance_micros = balance_micros + 10000 WHERE account_id = $1")
        .bind(books.eur.as_uuid())
        .execute(&app.pool)
        .await
        .unwrap();
    sqlx::query("DELETE FROM wallets WHERE account_id = $1")
        .bind(books.usd.as_uuid())
        .execute(&app.pool)
        .await
        .unwrap();

    let report = verify_now(&app.pool).await;

    assert_eq!(
        report.differences,
        vec![
            Difference::WalletField {
                account_id: books.eur.as_uuid(),
                field: "balance_micros",
                read_model: "55010000".to_owned(),
                replayed: "55000000".to_owned(),
            },
            Difference::WalletRowMissing {
                account_id: books.usd.as_uuid()
            },
        ],
        "{report}"
    );
}

#[tokio::test]
async fn a_movement_whose_balance_after_breaks_the_chain_is_reported() {
    let app = TestApp::spawn().await;
    let books = small_books(&app).await;
    let sequence = books
        .wallets
        .store
        .load_events(&books.eur.to_string())
        .await
        .unwrap()
        .len()
        + 1;
    // A debit of 1.00 that claims the balance stayed at 55.00: the log itself is inconsistent.
    let forged = WalletEvent::WalletDebited {
        reference: reference_of("order:forged"),
        amount: minor(100, Currency::EUR),
        reason: DebitReason::Order,
        balance_after: minor(5_500, Currency::EUR),
        debited_at: Utc::now(),
    };
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
         VALUES ('wallet', $1, $2, 'WalletDebited', '1', $3, '{}')",
    )
    .bind(books.eur.to_string())
    .bind(i64::try_from(sequence).unwrap())
    .bind(serde_json::to_value(&forged).unwrap())
    .execute(&app.pool)
    .await
    .unwrap();
    wait_for_projections(feed(&app), &[ledger::NAME]).await;
    current_wallets_read_model(feed(&app)).await;

    let report = verify_now(&app.pool).await;

    let eur = books.eur.as_uuid();
    assert!(
        matches!(&report.differences[..], [
        Difference::BrokenChain { sequence: s, balance_before, signed_amount_micros: -1_000_000, .. },
        Difference::WalletLedgerTotal { account_id, ledger_total_micros: 54_000_000, replayed_balance },
    ] if *s == i64::try_from(sequence).unwrap()
        && balance_before.micros() == 55_000_000
        && *account_id == eur
        && replayed_balance.micros() == 55_000_000),
        "{report}"
    );
}

#[tokio::test]
async fn a_projection_behind_the_head_is_reported_only_when_the_head_is_required() {
    let pool = fresh_pool().await; // no app: nothing runs the ledger
    let wallets = Wallets::new(pool.clone());
    let account = wallets.open(Currency::GBP).await;
    wallets
        .top_up(
            account,
            PaymentGateway::Stripe,
            minor(1_000, Currency::GBP),
            minor(1_000, Currency::GBP),
        )
        .await;

    let lenient = verify(&pool, &VerifyOptions::default()).await.unwrap();
    let strict = verify_now(&pool).await;

    assert!(lenient.is_clean(), "{lenient}");
    assert_eq!(lenient.ledger.events_applied, 0);
    assert_eq!(lenient.ledger.events_pending, 3);
    assert_eq!(lenient.wallets_read_model, None);
    assert!(lenient
        .to_string()
        .contains("wallets read model: not compared"));
    assert!(
        matches!(&strict.differences[..], [
        Difference::ProjectionBehind { subscriber: "ledger", checkpoint, .. }
    ] if *checkpoint == stratus_projections::FeedPosition::START),
        "{strict}"
    );
}

#[tokio::test]
async fn rebuilding_the_ledger_reproduces_the_live_postings() {
    let app = TestApp::spawn().await;
    random_run(&app.pool, 0x5354_5241_5455_5302, 150).await;
    wait_for_projections(feed(&app), &[ledger::NAME]).await;
    let entries_sql = "SELECT * FROM ledger_entries ORDER BY global_position, line";
    let top_ups_sql = "SELECT * FROM ledger_top_ups ORDER BY aggregate_id, payment_id";
    let (live_entries, live_top_ups) = (app.rows(entries_sql).await, app.rows(top_ups_sql).await);

    let replayed = feed(&app).rebuild(ledger::NAME).await.unwrap();

    let logged: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(i64::try_from(replayed).unwrap(), logged);
    assert!(!live_entries.is_empty() && !live_top_ups.is_empty());
    assert_eq!(app.rows(entries_sql).await, live_entries);
    assert_eq!(app.rows(top_ups_sql).await, live_top_ups);
}
