//! The message outbox end to end: real SMTP (lettre against the harness's server), a local HTTP SMS
//! provider, retries with backoff, dead messages, the development folders, several dispatchers on
//! one database, and a sender that crashed holding a lease.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use stratus_commands::outbox::templates::{LoginCode, VerifyEmail};
use stratus_commands::outbox::{
    self, Dispatcher, DispatcherConfig, EmailTransport, HttpSmsConfig, OutboxMessage, SmsTransport,
    SmtpConfig, SmtpTls, Transports,
};
use stratus_tests::{
    fresh_pool, message_wait, MailServer, SmsServer, TestApp, TEST_MAIL_FROM, TEST_SMS_ACCOUNT,
    TEST_SMS_FROM, TEST_SMS_TOKEN, TEST_SMTP_PASSWORD, TEST_SMTP_USERNAME,
};
use tokio::sync::watch;

/// Short backoff and lease so retries happen within a test; the production values are the
/// constants in `dispatcher.rs`.
fn fast_config() -> DispatcherConfig {
    DispatcherConfig {
        backoff_base_ms: 20,
        backoff_cap_ms: 80,
        max_attempts: 5,
        lease_ms: 10_000,
        send_timeout_ms: 5_000,
        batch_size: 16,
        poll_interval_ms: 200,
    }
}

fn smtp_to(port: u16) -> EmailTransport {
    EmailTransport::smtp(&SmtpConfig {
        host: "127.0.0.1".to_owned(),
        port,
        tls: SmtpTls::None,
        username: Some(TEST_SMTP_USERNAME.to_owned()),
        password: Some(TEST_SMTP_PASSWORD.to_owned()),
        from: TEST_MAIL_FROM.to_owned(),
    })
    .unwrap()
}

fn http_sms(sms: &SmsServer) -> SmsTransport {
    SmsTransport::http(HttpSmsConfig {
        url: sms.url(),
        account: Some(TEST_SMS_ACCOUNT.to_owned()),
        token: Some(TEST_SMS_TOKEN.to_owned()),
        from: TEST_SMS_FROM.to_owned(),
    })
    .unwrap()
}

fn unused_sms() -> SmsTransport {
    SmsTransport::files(std::env::temp_dir().join("stratus-test-unused-sms"))
}

fn verify_email(key: &str, to: &str) -> OutboxMessage {
    let rendered = VerifyEmail {
        name: "Ada <Lovelace>",
        link: "https://stratus.test/verify?token=t0k3n&account=1",
    }
    .email();
    OutboxMessage::email(key, to, rendered)
}

async fn enqueue(pool: &PgPool, message: &OutboxMessage) -> bool {
    let mut conn = pool.acquire().await.unwrap();
    outbox::enqueue(&mut conn, message).await.unwrap()
}

/// `(status, attempts, last_error)` of the message with `key`.
async fn state(pool: &PgPool, key: &str) -> (String, i32, Option<String>) {
    sqlx::query_as("SELECT status, attempts, last_error FROM outbox WHERE dedup_key = $1")
        .bind(key)
        .fetch_one(pool)
        .await
        .unwrap()
}

async fn wait_for_status(pool: &PgPool, key: &str, status: &str) -> (String, i32, Option<String>) {
    let deadline = Instant::now() + message_wait();
    loop {
        let now = state(pool, key).await;
        if now.0 == status || Instant::now() > deadline {
            assert_eq!(now.0, status, "{key}: {now:?}");
            return now;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A port nothing listens on (bound, then released).
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[tokio::test]
async fn the_app_delivers_an_enqueued_email_over_smtp_with_text_and_html_and_marks_it_sent() {
    let app = TestApp::spawn().await;

    assert!(enqueue(&app.pool, &verify_email("verify:1", "ada@example.com")).await);

    let email = app
        .mail
        .wait_for_email("ada@example.com", message_wait())
        .await;
    assert_eq!(email.subject, "Confirm your email address for Stratus");
    assert_eq!(email.from_header.as_deref(), Some(TEST_MAIL_FROM));
    assert_eq!(
        email.auth,
        Some((TEST_SMTP_USERNAME.to_owned(), TEST_SMTP_PASSWORD.to_owned()))
    );
    let text = email.text.clone().unwrap();
    let html = email.html.clone().unwrap();
    assert!(text.contains("Hello Ada <Lovelace>,"), "{text}");
    assert!(html.contains("Hello Ada &lt;Lovelace&gt;,"), "{html}");
    assert_eq!(
        email.link().as_deref(),
        Some("https://stratus.test/verify?token=t0k3n&account=1")
    );
    assert!(html.contains("href=\"https://stratus.test/verify?token=t0k3n&amp;account=1\""));
    assert!(email.raw.contains("multipart/alternative"));
    let id: uuid::Uuid = sqlx::query_scalar("SELECT id FROM outbox WHERE dedup_key = 'verify:1'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(
        email.message_id.as_deref(),
        Some(format!("{id}@stratus.test").as_str())
    );
    let (status, attempts, _) = wait_for_status(&app.pool, "verify:1", "sent").await;
    assert_eq!((status.as_str(), attempts), ("sent", 1));
}

#[tokio::test]
async fn the_app_posts_an_sms_twilio_style_with_basic_auth() {
    let app = TestApp::spawn().await;
    let body = LoginCode {
        name: "Ada",
        code: "482913",
        minutes_valid: 10,
    }
    .sms();

    enqueue(
        &app.pool,
        &OutboxMessage::sms("login-code:1", "+447700900123", body.clone()),
    )
    .await;

    let sms = app.sms.wait_for_sms("+447700900123", message_wait()).await;
    assert_eq!(sms.body, body);
    assert_eq!(sms.code(6).as_deref(), Some("482913"));
    assert_eq!(sms.from, TEST_SMS_FROM);
    assert_eq!(sms.account.as_deref(), Some(TEST_SMS_ACCOUNT));
    assert_eq!(sms.token.as_deref(), Some(TEST_SMS_TOKEN));
    assert_eq!(sms.content_type, "application/x-www-form-urlencoded");
    assert_eq!(
        sms.path,
        format!("/2010-04-01/Accounts/{TEST_SMS_ACCOUNT}/Messages.json")
    );
    let id: uuid::Uuid =
        sqlx::query_scalar("SELECT id FROM outbox WHERE dedup_key = 'login-code:1'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(sms.idempotency_key, Some(id.to_string()));
    wait_for_status(&app.pool, "login-code:1", "sent").await;
}

#[tokio::test]
async fn the_same_dedup_key_enqueued_twice_is_delivered_once() {
    let pool = fresh_pool().await;
    let mail = MailServer::start().await;
    let dispatcher = Dispatcher::new(
        pool.clone(),
        Transports {
            email: smtp_to(mail.port()),
            sms: unused_sms(),
        },
        fast_config(),
    );

    let first = enqueue(&pool, &verify_email("verify:twice", "bob@example.com")).await;
    let second = enqueue(&pool, &verify_email("verify:twice", "bob@example.com")).await;

    assert!(first);
    assert!(!second);
    assert_eq!(dispatcher.dispatch_due().await.unwrap(), 1);
    assert_eq!(dispatcher.dispatch_due().await.unwrap(), 0);
    mail.wait_for_email("bob@example.com", message_wait()).await;
    assert_eq!(mail.all().len(), 1);
    let third = enqueue(&pool, &verify_email("verify:twice", "bob@example.com")).await;
    assert!(!third, "a sent message's key stays taken");
    assert_eq!(dispatcher.dispatch_due().await.unwrap(), 0);
}

#[tokio::test]
async fn a_message_enqueued_in_a_rolled_back_transaction_is_never_sent() {
    let pool = fresh_pool().await;
    let mail = MailServer::start().await;
    let dispatcher = Dispatcher::new(
        pool.clone(),
        Transports {
            email: smtp_to(mail.port()),
            sms: unused_sms(),
        },
        fast_config(),
    );
    let mut tx = pool.begin().await.unwrap();
    assert!(outbox::enqueue(
        &mut tx,
        &verify_email("verify:rolled-back", "eve@example.com")
    )
    .await
    .unwrap());

    tx.rollback().await.unwrap();

    assert_eq!(dispatcher.dispatch_due().await.unwrap(), 0);
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(count, 0);
    assert!(mail.all().is_empty());
}

#[tokio::test]
async fn while_the_smtp_server_is_down_the_email_is_retried_with_growing_delays_and_delivered_when_it_returns(
) {
    let pool = fresh_pool().await;
    let port = free_port();
    let config = DispatcherConfig {
        backoff_base_ms: 150,
        backoff_cap_ms: 600,
        max_attempts: 20,
        ..fast_config()
    };
    let dispatcher = Dispatcher::new(
        pool.clone(),
        Transports {
            email: smtp_to(port),
            sms: unused_sms(),
        },
        config,
    );
    let (stop, stopped) = watch::channel(false);
    let task = dispatcher.start(stopped);
    enqueue(&pool, &verify_email("verify:down", "carol@example.com")).await;

    // After each failed attempt k the message rests (no lease) with its next attempt scheduled.
    let mut scheduled: Vec<(i32, DateTime<Utc>)> = Vec::new();
    let deadline = Instant::now() + message_wait();
    while scheduled.len() < 4 && Instant::now() < deadline {
        let (attempts, next, resting, error): (i32, DateTime<Utc>, bool, Option<String>) =
            sqlx::query_as(
                "SELECT attempts, next_attempt_at, leased_until IS NULL, last_error FROM outbox \
                 WHERE dedup_key = 'verify:down'",
            )
            .fetch_one(&pool)
            .await
            .unwrap();
        if resting && attempts > 0 && scheduled.last().map(|s| s.0) != Some(attempts) {
            assert!(error.unwrap_or_default().starts_with("SMTP"));
            scheduled.push((attempts, next));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mail = MailServer::start_on(port).await;

    let email = mail
        .wait_for_email("carol@example.com", message_wait())
        .await;
    assert_eq!(email.subject, "Confirm your email address for Stratus");
    assert_eq!(scheduled.len(), 4, "{scheduled:?}");
    let consecutive: Vec<_> = scheduled
        .windows(2)
        .filter(|pair| pair[1].0 == pair[0].0 + 1)
        .collect();
    assert!(consecutive.len() >= 2, "{scheduled:?}");
    for pair in consecutive {
        let (attempts, earlier) = pair[0];
        let (_, later) = pair[1];
        let gap = (later - earlier).to_std().unwrap();
        // After attempt k + 1 fails the wait is 150 ms · 2^k, capped at 600 ms: 300, 600, 600.
        let delay = Duration::from_millis((150u64 << attempts).min(600));
        // The next attempt starts no sooner than scheduled, and soon after (no waiting for the poll).
        assert!(gap >= delay, "{gap:?} < {delay:?}: {scheduled:?}");
        assert!(
            gap < delay + Duration::from_secs(3),
            "{gap:?}: {scheduled:?}"
        );
    }
    let (_, attempts, last_error) = wait_for_status(&pool, "verify:down", "sent").await;
    assert!(attempts > 4);
    assert_eq!(last_error, None);
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn a_500_from_the_sms_provider_is_retried_until_it_accepts() {
    let pool = fresh_pool().await;
    let sms = SmsServer::start().await;
    sms.fail_next(2);
    let dispatcher = Dispatcher::new(
        pool.clone(),
        Transports {
            email: smtp_to(free_port()),
            sms: http_sms(&sms),
        },
        fast_config(),
    );
    let (_stop, stopped) = watch::channel(false);
    let _task = dispatcher.start(stopped);

    enqueue(
        &pool,
        &OutboxMessage::sms("phone-code:1", "+15551230000", "Your Stratus code is 1234."),
    )
    .await;

    let delivered = sms.wait_for_sms("+15551230000", message_wait()).await;
    assert_eq!(delivered.body, "Your Stratus code is 1234.");
    assert_eq!(sms.requests(), 3);
    let (_, attempts, last_error) = wait_for_status(&pool, "phone-code:1", "sent").await;
    assert_eq!((attempts, last_error), (3, None));
}

#[tokio::test]
async fn after_the_last_attempt_a_message_is_dead_and_keeps_its_error() {
    let pool = fresh_pool().await;
    let sms = SmsServer::start().await;
    sms.fail_next(usize::MAX);
    let config = DispatcherConfig {
        max_attempts: 3,
        ..fast_config()
    };
    let dispatcher = Dispatcher::new(
        pool.clone(),
        Transports {
            email: smtp_to(free_port()),
            sms: http_sms(&sms),
        },
        config,
    );
    let (_stop, stopped) = watch::channel(false);
    let _task = dispatcher.start(stopped);

    enqueue(
        &pool,
        &OutboxMessage::sms("phone-code:dead", "+15551230001", "Your Stratus code is 9."),
    )
    .await;

    let (_, attempts, last_error) = wait_for_status(&pool, "phone-code:dead", "dead").await;
    assert_eq!(attempts, 3);
    assert_eq!(
        last_error.as_deref(),
        Some("the SMS provider answered HTTP 500")
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sms.requests(), 3, "a dead message is not tried again");
    assert!(sms.all().is_empty());
}

#[tokio::test]
async fn without_a_relay_or_provider_messages_become_readable_files() {
    let pool = fresh_pool().await;
    let dir = tempfile::tempdir().unwrap();
    let dispatcher = Dispatcher::new(
        pool.clone(),
        Transports {
            email: EmailTransport::mailbox(
                dir.path().join("mail"),
                "Stratus <no-reply@stratus.local>",
            )
            .unwrap(),
            sms: SmsTransport::files(dir.path().join("sms")),
        },
        fast_config(),
    );
    enqueue(&pool, &verify_email("verify:file", "dave@example.com")).await;
    enqueue(
        &pool,
        &OutboxMessage::sms(
            "phone-code:file",
            "+15551230002",
            "Your Stratus code is 55.",
        ),
    )
    .await;

    assert_eq!(dispatcher.dispatch_due().await.unwrap(), 2);

    let email_id: uuid::Uuid =
        sqlx::query_scalar("SELECT id FROM outbox WHERE dedup_key = 'verify:file'")
            .fetch_one(&pool)
            .await
            .unwrap();
    let raw = std::fs::read(dir.path().join("mail").join(format!("{email_id}.eml"))).unwrap();
    let parsed = mail_parser::MessageParser::default().parse(&raw).unwrap();
    assert_eq!(
        parsed.subject(),
        Some("Confirm your email address for Stratus")
    );
    assert!(parsed
        .body_text(0)
        .unwrap()
        .contains("https://stratus.test/verify?token=t0k3n&account=1"));
    assert!(parsed.body_html(0).unwrap().contains("&lt;Lovelace&gt;"));
    assert_eq!(
        parsed
            .to()
            .and_then(|a| a.first())
            .and_then(|a| a.address()),
        Some("dave@example.com")
    );
    let sms_id: uuid::Uuid =
        sqlx::query_scalar("SELECT id FROM outbox WHERE dedup_key = 'phone-code:file'")
            .fetch_one(&pool)
            .await
            .unwrap();
    let text =
        std::fs::read_to_string(dir.path().join("sms").join(format!("{sms_id}.txt"))).unwrap();
    assert_eq!(text, "To: +15551230002\n\nYour Stratus code is 55.\n");
    wait_for_status(&pool, "verify:file", "sent").await;
}

#[tokio::test]
async fn two_dispatchers_over_one_database_deliver_each_of_fifty_messages_exactly_once() {
    let url = stratus_tests::fresh_database_url().await;
    let connect = || async {
        stratus_api::database::connect(
            &stratus_api::settings::Secret::new(url.clone()),
            stratus_tests::TEST_POOL_CONNECTIONS,
        )
        .await
        .unwrap()
    };
    let (pool_a, pool_b) = (connect().await, connect().await);
    let (mail_a, mail_b) = (MailServer::start().await, MailServer::start().await);
    // One message per claim: both dispatchers keep reaching for the same head of the queue.
    let config = DispatcherConfig {
        batch_size: 1,
        ..fast_config()
    };
    let dispatchers: Vec<Arc<Dispatcher>> = [(&pool_a, &mail_a), (&pool_b, &mail_b)]
        .into_iter()
        .map(|(pool, mail)| {
            Dispatcher::new(
                pool.clone(),
                Transports {
                    email: smtp_to(mail.port()),
                    sms: unused_sms(),
                },
                config.clone(),
            )
        })
        .collect();
    let (_stop, stopped) = watch::channel(false);
    let _tasks: Vec<_> = dispatchers
        .iter()
        .map(|d| d.start(stopped.clone()))
        .collect();

    let mut tx = pool_a.begin().await.unwrap();
    for n in 0..50 {
        let message = verify_email(&format!("verify:many:{n}"), &format!("user{n}@example.com"));
        assert!(outbox::enqueue(&mut tx, &message).await.unwrap());
    }
    tx.commit().await.unwrap();

    let deadline = Instant::now() + message_wait();
    while mail_a.all().len() + mail_b.all().len() < 50 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Give a duplicate, if there were one, time to arrive.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (a, b) = (mail_a.all(), mail_b.all());
    let recipients: Vec<String> = a.iter().chain(b.iter()).map(|e| e.to.clone()).collect();
    let distinct: HashSet<&String> = recipients.iter().collect();
    assert_eq!(
        (recipients.len(), distinct.len()),
        (50, 50),
        "dispatcher A sent {}, B sent {}",
        a.len(),
        b.len()
    );
    let rows: Vec<(String, i32)> = sqlx::query_as("SELECT status, attempts FROM outbox")
        .fetch_all(&pool_a)
        .await
        .unwrap();
    assert_eq!(rows.len(), 50);
    assert!(rows.iter().all(|(s, n)| s == "sent" && *n == 1), "{rows:?}");
}

#[tokio::test]
async fn a_message_another_sender_is_claiming_is_skipped_without_waiting_for_it() {
    let pool = fresh_pool().await;
    let mail = MailServer::start().await;
    let dispatcher = Dispatcher::new(
        pool.clone(),
        Transports {
            email: smtp_to(mail.port()),
            sms: unused_sms(),
        },
        fast_config(),
    );
    enqueue(&pool, &verify_email("verify:locked", "heidi@example.com")).await;
    enqueue(&pool, &verify_email("verify:free", "ivan@example.com")).await;
    // Another dispatcher's claim, caught between locking the row and committing its lease.
    let mut other = pool.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM outbox WHERE dedup_key = 'verify:locked' FOR UPDATE")
        .execute(&mut *other)
        .await
        .unwrap();

    let sent = tokio::time::timeout(Duration::from_secs(5), dispatcher.dispatch_due())
        .await
        .expect("a claim must skip a locked message, not wait for it")
        .unwrap();

    assert_eq!(sent, 1);
    mail.wait_for_email("ivan@example.com", message_wait())
        .await;
    assert!(mail.emails_to("heidi@example.com").is_empty());
    other.rollback().await.unwrap();
    assert_eq!(dispatcher.dispatch_due().await.unwrap(), 1);
    assert_eq!(mail.all().len(), 2);
}

#[tokio::test]
async fn a_message_whose_sender_crashed_mid_send_is_sent_again_once_its_lease_runs_out() {
    let pool = fresh_pool().await;
    let mail = MailServer::start().await;
    let dispatcher = Dispatcher::new(
        pool.clone(),
        Transports {
            email: smtp_to(mail.port()),
            sms: unused_sms(),
        },
        fast_config(),
    );
    enqueue(&pool, &verify_email("verify:crash", "frank@example.com")).await;
    // What a sender that claimed the message and died before marking it leaves behind.
    sqlx::query(
        "UPDATE outbox SET attempts = 1, leased_until = now() + interval '500 milliseconds' \
         WHERE dedup_key = 'verify:crash'",
    )
    .execute(&pool)
    .await
    .unwrap();
    let crashed_at = Instant::now();

    assert_eq!(
        dispatcher.dispatch_due().await.unwrap(),
        0,
        "a leased message has one sender"
    );
    let mut sent = 0;
    while sent == 0 && crashed_at.elapsed() < message_wait() {
        tokio::time::sleep(Duration::from_millis(25)).await;
        sent = dispatcher.dispatch_due().await.unwrap();
    }

    assert_eq!(sent, 1);
    assert!(crashed_at.elapsed() >= Duration::from_millis(400));
    mail.wait_for_email("frank@example.com", message_wait())
        .await;
    assert_eq!(mail.all().len(), 1);
    let (status, attempts, _) = state(&pool, "verify:crash").await;
    assert_eq!((status.as_str(), attempts), ("sent", 2));
}

#[tokio::test]
async fn a_running_dispatcher_wakes_on_notify_without_waiting_for_its_poll_and_stops_on_request() {
    let pool = fresh_pool().await;
    let mail = MailServer::start().await;
    let dispatcher = Dispatcher::new(
        pool.clone(),
        Transports {
            email: smtp_to(mail.port()),
            sms: unused_sms(),
        },
        DispatcherConfig {
            poll_interval_ms: 60_000,
            ..fast_config()
        },
    );
    let (stop, stopped) = watch::channel(false);
    let task = dispatcher.start(stopped);
    // Let it finish its first (empty) pass and settle into waiting.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let enqueued_at = Instant::now();

    enqueue(&pool, &verify_email("verify:notify", "grace@example.com")).await;

    mail.wait_for_email("grace@example.com", Duration::from_secs(10))
        .await;
    assert!(enqueued_at.elapsed() < Duration::from_secs(10));
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap();
}
