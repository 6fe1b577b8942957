//! The load scenarios, driven by goose over real HTTP.
//!
//! goose schedules the users and makes the requests; each request is also timed here to the
//! microsecond (goose keeps whole milliseconds) inside a measuring window that starts after the
//! warm-up, and any answer other than the expected status counts as an error.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use futures::{stream, StreamExt};
use goose::prelude::*;
use hdrhistogram::Histogram;
use rand::seq::SliceRandom;
use serde::Serialize;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::report::{LoadFigures, Report, RequestFigures};
use crate::resources::Monitor;
use crate::seed::{self, Seeded, SEEDED_PASSWORD};
use crate::server::{Stratus, ADMIN_EMAIL, ADMIN_PASSWORD};
use crate::{progress, Args, BenchError, BenchResult};

/// A valid ed25519 public key for orders.
const SSH_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ1O+kiVnXJ9nEaUIdY/9Xy7U+vzZ2ZtNiQNH+SatmHc bench@example";
/// Requests in flight while preparing data over HTTP.
const SETUP_CONCURRENCY: usize = 16;
/// Balance given to each customer of the read and mixed scenarios.
const CUSTOMER_FUNDS: &str = "100000.00";
/// How often projection lag is sampled during (a).
const LAG_SAMPLE_EVERY: Duration = Duration::from_millis(10);

/// What every transaction reads: made once before the scenarios, never changed.
struct Context {
    api: String,
    admin: String,
    wallets: Vec<Uuid>,
    hot: Uuid,
    customers: Vec<Customer>,
    logins: Vec<String>,
    order: Value,
}

struct Customer {
    token: String,
    order_id: String,
}

static CONTEXT: RwLock<Option<Arc<Context>>> = RwLock::new(None);
static RECORDER: Mutex<Option<Recorder>> = Mutex::new(None);

fn context() -> Option<Arc<Context>> {
    match CONTEXT.read() {
        Ok(guard) => guard.clone(),
        Err(poisoned) => poisoned.into_inner().clone(),
    }
}

/// Latencies and outcomes per request name inside the measuring window.
struct Recorder {
    from: Instant,
    until: Instant,
    stats: HashMap<&'static str, Stat>,
}

struct Stat {
    micros: Histogram<u64>,
    errors: u64,
    statuses: BTreeMap<u16, u64>,
}

fn with_recorder<T>(f: impl FnOnce(&mut Option<Recorder>) -> T) -> T {
    match RECORDER.lock() {
        Ok(mut guard) => f(&mut guard),
        Err(poisoned) => f(&mut poisoned.into_inner()),
    }
}

fn record(name: &'static str, started: Instant, status: Option<u16>, ok: bool) {
    let elapsed = started.elapsed();
    with_recorder(|recorder| {
        let Some(recorder) = recorder.as_mut() else {
            return;
        };
        if started < recorder.from || started >= recorder.until {
            return;
        }
        if !recorder.stats.contains_key(name) {
            let Some(stat) = Stat::new() else { return };
            recorder.stats.insert(name, stat);
        }
        let Some(stat) = recorder.stats.get_mut(name) else {
            return;
        };
        let micros = u64::try_from(elapsed.as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        stat.micros.saturating_record(micros);
        if !ok {
            stat.errors += 1;
        }
        *stat.statuses.entry(status.unwrap_or(0)).or_insert(0) += 1;
    });
}

impl Stat {
    /// 1 µs to 60 s at three significant digits (always valid bounds).
    fn new() -> Option<Self> {
        Some(Self {
            micros: Histogram::new_with_bounds(1, 60_000_000, 3).ok()?,
            errors: 0,
            statuses: BTreeMap::new(),
        })
    }
}

/// One HTTP call inside a transaction: timed, checked against `expect`, body parsed when wanted.
async fn call(
    user: &mut GooseUser,
    name: &'static str,
    method: GooseMethod,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
    expect: u16,
) -> Option<Value> {
    let started = Instant::now();
    let Ok(mut builder) = user.get_request_builder(&method, path) else {
        record(name, started, None, false);
        return None;
    };
    if let Some(token) = token {
        builder = builder.bearer_auth(token);
    }
    if let Some(body) = body {
        builder = builder.json(body);
    }
    let request = GooseRequest::builder()
        .name(name)
        .method(method)
        .set_request_builder(builder)
        .expect_status_code(expect)
        .build();
    let Ok(goose) = user.request(request).await else {
        record(name, started, None, false);
        return None;
    };
    let Ok(response) = goose.response else {
        record(name, started, None, false);
        return None;
    };
    let status = response.status().as_u16();
    let bytes = response.bytes().await;
    let ok = status == expect && bytes.is_ok();
    record(name, started, Some(status), ok);
    if !ok {
        return None;
    }
    let bytes = bytes.ok()?;
    Some(serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

fn money(amount: &str) -> Value {
    json!({"amount": amount, "currency": "EUR"})
}

fn adjustment(amount: &str) -> Value {
    json!({"amount": money(amount), "direction": "credit",
        "reference": format!("bench-{}", Uuid::now_v7().simple())})
}

// ---- transactions -------------------------------------------------------------------------

/// Which wallet an adjustment goes to.
#[derive(Clone, Copy)]
enum Target {
    /// A random one of the seeded wallets.
    Any,
    /// The hot wallet (also the long stream of (f)).
    Hot,
}

/// One staff credit of 1.00 with a unique reference, recorded under `name`.
async fn adjust(user: &mut GooseUser, name: &'static str, target: Target) -> TransactionResult {
    let Some(ctx) = context() else { return Ok(()) };
    let wallet = match target {
        Target::Hot => ctx.hot,
        Target::Any => match ctx.wallets.choose(&mut rand::thread_rng()) {
            Some(wallet) => *wallet,
            None => return Ok(()),
        },
    };
    let path = format!("/api/v1/admin/wallets/{wallet}/adjustments");
    let body = adjustment("1.00");
    call(
        user,
        name,
        GooseMethod::Post,
        &path,
        Some(&ctx.admin),
        Some(&body),
        200,
    )
    .await;
    Ok(())
}

async fn wallet_command(user: &mut GooseUser) -> TransactionResult {
    adjust(user, "POST adjustment", Target::Any).await
}

async fn hot_wallet_command(user: &mut GooseUser) -> TransactionResult {
    adjust(user, "POST adjustment (hot)", Target::Hot).await
}

async fn long_stream_command(user: &mut GooseUser) -> TransactionResult {
    adjust(user, "POST adjustment (long stream)", Target::Hot).await
}

async fn fresh_stream_command(user: &mut GooseUser) -> TransactionResult {
    adjust(user, "POST adjustment (fresh stream)", Target::Any).await
}

fn some_customer(ctx: &Context) -> Option<&Customer> {
    ctx.customers.choose(&mut rand::thread_rng())
}

async fn get_wallet(user: &mut GooseUser) -> TransactionResult {
    let Some(ctx) = context() else { return Ok(()) };
    let Some(c) = some_customer(&ctx) else {
        return Ok(());
    };
    call(
        user,
        "GET /wallet",
        GooseMethod::Get,
        "/api/v1/wallet",
        Some(&c.token),
        None,
        200,
    )
    .await;
    Ok(())
}

async fn get_transactions(user: &mut GooseUser) -> TransactionResult {
    let Some(ctx) = context() else { return Ok(()) };
    let Some(c) = some_customer(&ctx) else {
        return Ok(());
    };
    call(
        user,
        "GET /wallet/transactions",
        GooseMethod::Get,
        "/api/v1/wallet/transactions",
        Some(&c.token),
        None,
        200,
    )
    .await;
    Ok(())
}

async fn get_order(user: &mut GooseUser) -> TransactionResult {
    let Some(ctx) = context() else { return Ok(()) };
    let Some(c) = some_customer(&ctx) else {
        return Ok(());
    };
    let path = format!("/api/v1/orders/{}", c.order_id);
    call(
        user,
        "GET /orders/{id}",
        GooseMethod::Get,
        &path,
        Some(&c.token),
        None,
        200,
    )
    .await;
    Ok(())
}

async fn get_me(user: &mut GooseUser) -> TransactionResult {
    let Some(ctx) = context() else { return Ok(()) };
    let Some(c) = some_customer(&ctx) else {
        return Ok(());
    };
    call(
        user,
        "GET /me",
        GooseMethod::Get,
        "/api/v1/me",
        Some(&c.token),
        None,
        200,
    )
    .await;
    Ok(())
}

async fn login_flood(user: &mut GooseUser) -> TransactionResult {
    let Some(ctx) = context() else { return Ok(()) };
    let Some(email) = ctx.logins.choose(&mut rand::thread_rng()).cloned() else {
        return Ok(());
    };
    let body = json!({"email": email, "password": SEEDED_PASSWORD});
    call(
        user,
        "POST /auth/login",
        GooseMethod::Post,
        "/api/v1/auth/login",
        None,
        Some(&body),
        200,
    )
    .await;
    Ok(())
}

/// A returning customer: looks at the wallet, quotes, orders, pays, reads the history.
async fn returning_customer(user: &mut GooseUser) -> TransactionResult {
    let Some(ctx) = context() else { return Ok(()) };
    let Some(c) = some_customer(&ctx) else {
        return Ok(());
    };
    let token = Some(c.token.as_str());
    call(
        user,
        "GET /wallet",
        GooseMethod::Get,
        "/api/v1/wallet",
        token,
        None,
        200,
    )
    .await;
    buy(user, &ctx, token).await;
    call(
        user,
        "GET /wallet/transactions",
        GooseMethod::Get,
        "/api/v1/wallet/transactions",
        token,
        None,
        200,
    )
    .await;
    Ok(())
}

/// Quote, order, pay from the wallet, read the order back.
async fn buy(user: &mut GooseUser, ctx: &Context, token: Option<&str>) {
    if call(
        user,
        "POST /catalog/quote",
        GooseMethod::Post,
        "/api/v1/catalog/quote",
        token,
        Some(&ctx.order),
        200,
    )
    .await
    .is_none()
    {
        return;
    }
    let Some(placed) = call(
        user,
        "POST /orders",
        GooseMethod::Post,
        "/api/v1/orders",
        token,
        Some(&ctx.order),
        201,
    )
    .await
    else {
        return;
    };
    let Some(order_id) = placed["order_id"].as_str() else {
        return;
    };
    let pay = json!({"method": "wallet"});
    let path = format!("/api/v1/orders/{order_id}/pay");
    call(
        user,
        "POST /orders/{id}/pay",
        GooseMethod::Post,
        &path,
        token,
        Some(&pay),
        200,
    )
    .await;
    let path = format!("/api/v1/orders/{order_id}");
    call(
        user,
        "GET /orders/{id}",
        GooseMethod::Get,
        &path,
        token,
        None,
        200,
    )
    .await;
}

/// A newcomer: registers, logs in, tops up by bank transfer (billing confirms it), then buys.
async fn newcomer(user: &mut GooseUser) -> TransactionResult {
    let Some(ctx) = context() else { return Ok(()) };
    let email = format!("new-{}@example.com", Uuid::now_v7().simple());
    let password = "newcomer passphrase 42";
    let register = json!({"name": "New Customer", "email": email, "password": password});
    if call(
        user,
        "POST /auth/register",
        GooseMethod::Post,
        "/api/v1/auth/register",
        None,
        Some(&register),
        201,
    )
    .await
    .is_none()
    {
        return Ok(());
    }
    let login = json!({"email": email, "password": password});
    let Some(tokens) = call(
        user,
        "POST /auth/login",
        GooseMethod::Post,
        "/api/v1/auth/login",
        None,
        Some(&login),
        200,
    )
    .await
    else {
        return Ok(());
    };
    let Some(token) = tokens["access_token"].as_str().map(str::to_owned) else {
        return Ok(());
    };
    let top_up = json!({"amount": money("50.00"), "gateway": "manual"});
    let Some(started) = call(
        user,
        "POST /wallet/top-ups",
        GooseMethod::Post,
        "/api/v1/wallet/top-ups",
        Some(&token),
        Some(&top_up),
        201,
    )
    .await
    else {
        return Ok(());
    };
    let Some(payment_id) = started["payment_id"].as_str() else {
        return Ok(());
    };
    let path = format!("/api/v1/admin/payments/{payment_id}/confirm");
    let confirm = json!({"amount": money("50.00")});
    call(
        user,
        "POST /admin/payments/{id}/confirm",
        GooseMethod::Post,
        &path,
        Some(&ctx.admin),
        Some(&confirm),
        200,
    )
    .await;
    buy(user, &ctx, Some(&token)).await;
    call(
        user,
        "GET /wallet/transactions",
        GooseMethod::Get,
        "/api/v1/wallet/transactions",
        Some(&token),
        None,
        200,
    )
    .await;
    Ok(())
}

// ---- running ------------------------------------------------------------------------------

/// The figures of one goose run.
struct Measured {
    stats: HashMap<&'static str, Stat>,
    seconds: f64,
    usage: crate::resources::Usage,
}

/// Runs `scenarios` with `users` users for warm-up + measured seconds and returns the window's
/// figures.
async fn attack(
    args: &Args,
    monitor: &Monitor,
    base_url: &str,
    scenarios: Vec<Scenario>,
    users: usize,
) -> BenchResult<Measured> {
    let warmup = args.warmup();
    let measured = args.measured();
    let from = Instant::now() + warmup;
    let until = from + measured;
    with_recorder(|recorder| {
        *recorder = Some(Recorder {
            from,
            until,
            stats: HashMap::new(),
        });
    });
    let run_time = usize::try_from((warmup + measured).as_secs() + 1).unwrap_or(usize::MAX);
    let mut attack =
        GooseAttack::initialize_with_config(goose::config::GooseConfiguration::default())
            .map_err(goose_error)?;
    for scenario in scenarios {
        attack = attack.register_scenario(scenario);
    }
    let attack = attack
        .set_default(GooseDefault::Host, base_url)
        .and_then(|a| a.set_default(GooseDefault::Users, users))
        .and_then(|a| a.set_default(GooseDefault::HatchRate, users.to_string().as_str()))
        .and_then(|a| a.set_default(GooseDefault::RunTime, run_time))
        .and_then(|a| a.set_default(GooseDefault::NoPrintMetrics, true))
        .and_then(|a| a.set_default(GooseDefault::NoTelnet, true))
        .and_then(|a| a.set_default(GooseDefault::NoWebSocket, true))
        .and_then(|a| a.set_default(GooseDefault::Quiet, 1))
        .map_err(goose_error)?;
    let monitor_task = {
        let wait = warmup;
        async move {
            tokio::time::sleep(wait).await;
            let start = monitor.start();
            tokio::time::sleep(measured).await;
            monitor.finish(start)
        }
    };
    let (executed, usage) = tokio::join!(attack.execute(), monitor_task);
    executed.map_err(goose_error)?;
    let recorder = with_recorder(Option::take);
    let stats = recorder.map(|r| r.stats).unwrap_or_default();
    Ok(Measured {
        stats,
        seconds: measured.as_secs_f64(),
        usage,
    })
}

fn goose_error(err: impl std::fmt::Debug) -> BenchError {
    BenchError::Goose(format!("{err:?}"))
}

/// The figures of every request whose name `keep` accepts, taken together.
fn merged(measured: &Measured, keep: impl Fn(&str) -> bool) -> Option<RequestFigures> {
    let mut all = Stat::new()?;
    let mut any = false;
    for (name, stat) in &measured.stats {
        if !keep(name) {
            continue;
        }
        any = true;
        all.micros.add(&stat.micros).ok()?;
        all.errors += stat.errors;
        for (status, n) in &stat.statuses {
            *all.statuses.entry(*status).or_insert(0) += n;
        }
    }
    any.then(|| figures(&all, measured.seconds))
}

fn figures(stat: &Stat, seconds: f64) -> RequestFigures {
    let ms = |q: f64| stat.micros.value_at_quantile(q) as f64 / 1000.0;
    let count = stat.micros.len();
    RequestFigures {
        requests: count,
        per_second: count as f64 / seconds,
        p50_ms: ms(0.50),
        p95_ms: ms(0.95),
        p99_ms: ms(0.99),
        max_ms: stat.micros.max() as f64 / 1000.0,
        errors: stat.errors,
        statuses: stat
            .statuses
            .iter()
            .map(|(status, n)| (status.to_string(), *n))
            .collect(),
    }
}

fn scenario_of(name: &str, transactions: Vec<Transaction>) -> Scenario {
    let mut scenario = Scenario::new(name);
    for transaction in transactions {
        scenario = scenario.register_transaction(transaction);
    }
    scenario
}

fn weighted(scenario: Scenario, weight: usize) -> BenchResult<Scenario> {
    scenario.set_weight(weight).map_err(goose_error)
}

fn load_figures(letter: char, title: &str, users: usize, measured: Measured) -> LoadFigures {
    let requests = measured
        .stats
        .iter()
        .map(|(name, stat)| ((*name).to_owned(), figures(stat, measured.seconds)))
        .collect();
    LoadFigures {
        letter,
        title: title.to_owned(),
        users,
        seconds: measured.seconds,
        overall: merged(&measured, |_| true).unwrap_or_default(),
        reads: merged(&measured, |name| name.starts_with("GET ")),
        requests,
        usage: measured.usage,
        projection_lag: None,
    }
}

/// Prepares the data, then runs every selected HTTP scenario in order.
pub async fn run_all(
    args: &Args,
    server: &Stratus,
    database_url: &str,
    report: &mut Report,
) -> BenchResult<()> {
    let monitor = Monitor::new(server.pid(), report.postmaster_pid);
    let seeded = seed::accounts(database_url, args.wallets + 1).await?;
    let ctx = prepare(args, server, seeded).await?;
    let base = server.base_url.clone();
    let ctx_hot = ctx.hot;
    match CONTEXT.write() {
        Ok(mut guard) => *guard = Some(Arc::new(ctx)),
        Err(poisoned) => *poisoned.into_inner() = Some(Arc::new(ctx)),
    }
    let users = args.users;

    if args.runs('a') {
        progress("(a) wallet commands over every seeded wallet");
        let lag = LagSampler::start(database_url, args.warmup(), args.measured()).await?;
        let profiler = SqlProfiler::when_asked(args, database_url).await?;
        let measured = attack(
            args,
            &monitor,
            &base,
            vec![scenario_of(
                "wallet commands",
                vec![transaction!(wallet_command)],
            )],
            users,
        )
        .await?;
        SqlProfiler::finish_if_started(profiler).await?;
        let mut figures = load_figures(
            'a',
            &format!("wallet commands, {} wallets", args.wallets),
            users,
            measured,
        );
        figures.projection_lag = Some(lag.finish().await?);
        report.loads.push(figures);
    }
    if args.runs('b') {
        progress("(b) wallet commands on one hot wallet");
        let profiler = SqlProfiler::when_asked(args, database_url).await?;
        let measured = attack(
            args,
            &monitor,
            &base,
            vec![scenario_of(
                "hot wallet",
                vec![transaction!(hot_wallet_command)],
            )],
            users,
        )
        .await?;
        SqlProfiler::finish_if_started(profiler).await?;
        report.loads.push(load_figures(
            'b',
            "wallet commands, one hot wallet",
            users,
            measured,
        ));
    }
    if args.runs('f') {
        fill_stream(args, database_url, ctx_hot).await?;
        progress("(f) one client: commands on the long stream");
        let long = attack(
            args,
            &monitor,
            &base,
            vec![scenario_of(
                "long stream",
                vec![transaction!(long_stream_command)],
            )],
            1,
        )
        .await?;
        progress("(f) one client: commands on fresh streams");
        let fresh = attack(
            args,
            &monitor,
            &base,
            vec![scenario_of(
                "fresh stream",
                vec![transaction!(fresh_stream_command)],
            )],
            1,
        )
        .await?;
        report.loads.push(load_figures(
            'f',
            &format!("command on a stream of ≥ {} events", args.long_stream),
            1,
            long,
        ));
        report
            .loads
            .push(load_figures('f', "command on a fresh stream", 1, fresh));
    }
    let readers = || {
        scenario_of(
            "read models",
            vec![
                transaction!(get_wallet),
                transaction!(get_transactions),
                transaction!(get_order),
                transaction!(get_me),
            ],
        )
    };
    if args.runs('c') {
        progress("(c) GETs of read models");
        let profiler = SqlProfiler::when_asked(args, database_url).await?;
        let measured = attack(args, &monitor, &base, vec![readers()], users).await?;
        SqlProfiler::finish_if_started(profiler).await?;
        report
            .loads
            .push(load_figures('c', "read-model GETs", users, measured));
    }
    if args.runs('g') {
        progress("(g) GETs of read models during a login flood");
        let flood = args.flood_users;
        let scenarios = vec![
            weighted(readers(), users)?,
            weighted(
                scenario_of("login flood", vec![transaction!(login_flood)]),
                flood,
            )?,
        ];
        let measured = attack(args, &monitor, &base, scenarios, users + flood).await?;
        report.loads.push(load_figures(
            'g',
            "read-model GETs during a login flood",
            users + flood,
            measured,
        ));
    }
    if args.runs('d') {
        progress("(d) the realistic mix");
        let scenarios = vec![
            weighted(
                scenario_of("returning customer", vec![transaction!(returning_customer)]),
                3,
            )?,
            weighted(scenario_of("newcomer", vec![transaction!(newcomer)]), 1)?,
        ];
        let measured = attack(args, &monitor, &base, scenarios, users).await?;
        report
            .loads
            .push(load_figures('d', "realistic mix", users, measured));
    }
    Ok(())
}

/// Logs in the admin and the customers, funds the customers and gives each one order, and
/// picks the order every scenario places.
async fn prepare(args: &Args, server: &Stratus, mut seeded: Vec<Seeded>) -> BenchResult<Context> {
    let api = format!("{}/api/v1", server.base_url);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(SETUP_CONCURRENCY)
        .build()?;
    let admin = login(&client, &api, ADMIN_EMAIL, ADMIN_PASSWORD).await?;
    let hot = seeded
        .pop()
        .ok_or_else(|| BenchError::failed("no account was seeded"))?;
    let order = order_body(&client, &api).await?;
    let count = args.customers.min(seeded.len());
    progress(&format!(
        "logging in, funding and ordering for {count} customers"
    ));
    let customers: Vec<Customer> = stream::iter(seeded.iter().take(count))
        .map(|account| {
            let (client, api, admin, order) = (&client, &api, &admin, &order);
            async move {
                let token = login(client, api, &account.email, SEEDED_PASSWORD).await?;
                let path = format!("{api}/admin/wallets/{}/adjustments", account.account_id);
                expect(
                    client
                        .post(path)
                        .bearer_auth(admin)
                        .json(&adjustment(CUSTOMER_FUNDS)),
                    200,
                )
                .await?;
                let placed = expect(
                    client
                        .post(format!("{api}/orders"))
                        .bearer_auth(&token)
                        .json(order),
                    201,
                )
                .await?;
                let order_id = placed["order_id"]
                    .as_str()
                    .ok_or_else(|| BenchError::failed("an order without order_id"))?
                    .to_owned();
                Ok::<_, BenchError>(Customer { token, order_id })
            }
        })
        .buffer_unordered(SETUP_CONCURRENCY)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<BenchResult<_>>()?;
    let logins = seeded
        .iter()
        .skip(count)
        .take(1_000)
        .map(|s| s.email.clone())
        .collect();
    Ok(Context {
        api,
        admin,
        wallets: seeded.iter().map(|s| s.account_id).collect(),
        hot: hot.account_id,
        customers,
        logins,
        order,
    })
}

async fn login(
    client: &reqwest::Client,
    api: &str,
    email: &str,
    password: &str,
) -> BenchResult<String> {
    let body = expect(
        client
            .post(format!("{api}/auth/login"))
            .json(&json!({"email": email, "password": password})),
        200,
    )
    .await?;
    body["access_token"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| BenchError::failed("a login without access_token"))
}

async fn expect(request: reqwest::RequestBuilder, status: u16) -> BenchResult<Value> {
    let reply = request.send().await?;
    let got = reply.status().as_u16();
    let body: Value = reply.json().await.unwrap_or(Value::Null);
    if got != status {
        return Err(BenchError::failed(format!(
            "expected {status}, got {got}: {body}"
        )));
    }
    Ok(body)
}

/// The order every scenario places: the cheapest active plan, monthly, in its first datacenter.
async fn order_body(client: &reqwest::Client, api: &str) -> BenchResult<Value> {
    let plans = expect(client.get(format!("{api}/catalog/plans")), 200).await?;
    let plan = plans["plans"]
        .as_array()
        .and_then(|plans| plans.first())
        .ok_or_else(|| BenchError::failed("the demo catalog has no plan"))?;
    let datacenter = plan["datacenter_ids"]
        .as_array()
        .and_then(|d| d.first())
        .ok_or_else(|| BenchError::failed("the plan has no datacenter"))?;
    let images = expect(client.get(format!("{api}/catalog/images")), 200).await?;
    let image = images["images"]
        .as_array()
        .and_then(|i| i.first())
        .ok_or_else(|| BenchError::failed("the demo catalog has no image"))?;
    Ok(json!({
        "plan_id": plan["plan_id"], "datacenter_id": datacenter, "image_id": image["image_id"],
        "billing_period": "monthly", "hostname": "bench-1.example.com", "ssh_keys": [SSH_KEY],
    }))
}

/// Brings the hot wallet's stream to `args.long_stream` events (setup for (f), not measured).
async fn fill_stream(args: &Args, database_url: &str, wallet: Uuid) -> BenchResult<()> {
    let Some(ctx) = context() else {
        return Err(BenchError::failed("no context"));
    };
    let pool = sqlx::PgPool::connect(database_url).await?;
    let length: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE aggregate_type = 'wallet' AND aggregate_id = $1",
    )
    .bind(wallet.to_string())
    .fetch_one(&pool)
    .await?;
    pool.close().await;
    let length = u64::try_from(length).unwrap_or(0);
    let missing = args.long_stream.saturating_sub(length);
    progress(&format!(
        "(f) filling the long stream: {length} events, adding {missing}"
    ));
    let client = reqwest::Client::new();
    let path = format!("{}/admin/wallets/{wallet}/adjustments", ctx.api);
    let results: Vec<BenchResult<Value>> = stream::iter(0..missing)
        .map(|_| {
            expect(
                client
                    .post(&path)
                    .bearer_auth(&ctx.admin)
                    .json(&adjustment("1.00")),
                200,
            )
        })
        .buffer_unordered(SETUP_CONCURRENCY)
        .collect()
        .await;
    results.into_iter().collect::<BenchResult<Vec<_>>>()?;
    Ok(())
}

/// With `--sql-profile`: samples `pg_stat_activity` every 5 ms during a scenario and prints the
/// statements (and what they waited on) that were seen running most often, then the statements
/// that took the most time by `pg_stat_statements` with their call counts: where the database's
/// time goes.
struct SqlProfiler {
    task: tokio::task::JoinHandle<BenchResult<HashMap<String, u64>>>,
}

impl SqlProfiler {
    /// A profiler over the scenario about to run, when `--sql-profile` asks for one.
    async fn when_asked(args: &Args, database_url: &str) -> BenchResult<Option<Self>> {
        if !args.sql_profile {
            return Ok(None);
        }
        Ok(Some(
            Self::start(database_url, args.warmup() + args.measured()).await?,
        ))
    }

    async fn finish_if_started(profiler: Option<Self>) -> BenchResult<()> {
        match profiler {
            Some(profiler) => profiler.finish().await,
            None => Ok(()),
        }
    }

    async fn start(database_url: &str, measured: Duration) -> BenchResult<Self> {
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .connect(database_url)
            .await?;
        sqlx::query("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            .execute(&pool)
            .await?;
        sqlx::query("SELECT pg_stat_statements_reset()")
            .execute(&pool)
            .await?;
        let task = tokio::spawn(async move {
            let mut seen: HashMap<String, u64> = HashMap::new();
            let until = Instant::now() + measured;
            let mut tick = tokio::time::interval(Duration::from_millis(5));
            while Instant::now() < until {
                tick.tick().await;
                let rows: Vec<(String,)> = sqlx::query_as(
                    "SELECT coalesce(wait_event_type || ':' || wait_event, 'cpu') || ' ' || state || ' ' || \
                            regexp_replace(left(query, 110), '\\s+', ' ', 'g') \
                     FROM pg_stat_activity \
                     WHERE datname = current_database() AND state <> 'idle' AND pid <> pg_backend_pid()",
                )
                .fetch_all(&pool)
                .await?;
                for (line,) in rows {
                    *seen.entry(line).or_insert(0) += 1;
                }
            }
            let statements: Vec<(String, i64, f64)> = sqlx::query_as(
                "SELECT regexp_replace(left(query, 110), '\\s+', ' ', 'g'), calls, total_exec_time \
                 FROM pg_stat_statements \
                 WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) \
                 ORDER BY total_exec_time DESC LIMIT 25",
            )
            .fetch_all(&pool)
            .await?;
            for (query, calls, total_ms) in statements {
                seen.insert(
                    format!("[statements] {calls:>8} calls {total_ms:>9.0} ms  {query}"),
                    total_ms.max(0.0) as u64,
                );
            }
            pool.close().await;
            Ok(seen)
        });
        Ok(Self { task })
    }

    async fn finish(self) -> BenchResult<()> {
        let seen = self
            .task
            .await
            .map_err(|e| BenchError::failed(format!("sql profiler: {e}")))??;
        type Counted = Vec<(String, u64)>;
        let (mut statements, mut lines): (Counted, Counted) = seen
            .into_iter()
            .partition(|(line, _)| line.starts_with("[statements]"));
        lines.sort_by_key(|line| std::cmp::Reverse(line.1));
        for (line, count) in lines.into_iter().take(25) {
            progress(&format!("sql {count:>6}  {line}"));
        }
        statements.sort_by_key(|line| std::cmp::Reverse(line.1));
        for (line, _) in statements {
            progress(&format!("sql {line}"));
        }
        Ok(())
    }
}

/// Samples how far the projections are behind the log: the age of the oldest event a
/// subscriber has not applied yet (0 when it is caught up), every 10 ms.
struct LagSampler {
    task: tokio::task::JoinHandle<BenchResult<Histogram<u64>>>,
}

/// Projection lag over a scenario, in milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Lag {
    pub samples: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl LagSampler {
    async fn start(database_url: &str, warmup: Duration, measured: Duration) -> BenchResult<Self> {
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .connect(database_url)
            .await?;
        let task = tokio::spawn(async move {
            let mut histogram = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3)
                .map_err(|e| BenchError::failed(e.to_string()))?;
            tokio::time::sleep(warmup).await;
            let until = Instant::now() + measured;
            let mut tick = tokio::time::interval(LAG_SAMPLE_EVERY);
            while Instant::now() < until {
                tick.tick().await;
                let lag: Option<f64> = sqlx::query_scalar(
                    "SELECT max(extract(epoch FROM clock_timestamp() - ( \
                         SELECT e.recorded_at FROM events e \
                         WHERE (e.transaction_id, e.global_position) > (c.transaction_id, c.global_position) \
                         ORDER BY e.transaction_id, e.global_position LIMIT 1)))::float8 \
                     FROM subscriber_checkpoints c WHERE c.name IN ('wallets', 'ledger')",
                )
                .fetch_one(&pool)
                .await?;
                let micros = lag.map(|s| (s * 1_000_000.0).max(1.0) as u64).unwrap_or(1);
                histogram.saturating_record(micros);
            }
            pool.close().await;
            Ok(histogram)
        });
        Ok(Self { task })
    }

    async fn finish(self) -> BenchResult<Lag> {
        let histogram = self
            .task
            .await
            .map_err(|e| BenchError::failed(format!("lag sampler: {e}")))??;
        let ms = |q: f64| histogram.value_at_quantile(q) as f64 / 1000.0;
        Ok(Lag {
            samples: histogram.len(),
            p50_ms: ms(0.5),
            p99_ms: ms(0.99),
            max_ms: histogram.max() as f64 / 1000.0,
        })
    }
}
