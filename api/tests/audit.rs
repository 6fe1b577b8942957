//! `stratus audit verify` as an operator runs it: the real binary against a database, its report
//! on stdout and its exit status (0 the books match, 1 differences, 2 it could not run).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Output;

use stratus_api::database;
use stratus_api::settings::Secret;
use stratus_tests::wallets::{sample_books, Wallets};
use stratus_tests::{fresh_database_url, TEST_CHALLENGE_SECRET, TEST_JWT_SECRET};

/// Runs `stratus audit verify` on `database_url`, configured only by the environment.
async fn audit_verify(database_url: &str) -> Output {
    let dir = std::env::temp_dir().join(format!("stratus-audit-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    tokio::process::Command::new(env!("CARGO_BIN_EXE_stratus"))
        .args(["audit", "verify"])
        .env("DATABASE_URL", database_url)
        .env("STRATUS_DATA_DIR", &dir)
        .env("STRATUS_JWT_SECRET", TEST_JWT_SECRET)
        .env("STRATUS_CHALLENGE_SECRET", TEST_CHALLENGE_SECRET)
        .env("STRATUS_LOG", "warn")
        .env_remove("STRATUS_CONFIG")
        .current_dir(&dir)
        .output()
        .await
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test]
async fn audit_verify_exits_0_on_matching_books_and_1_listing_each_difference_after_tampering() {
    let url = fresh_database_url().await;
    let pool = database::connect(&Secret::new(url.as_str()), 2)
        .await
        .unwrap();
    sample_books(&Wallets::new(pool.clone())).await;

    // Nothing has run the ledger yet: the command catches it up itself.
    let clean = audit_verify(&url).await;
    sqlx::query("UPDATE ledger_entries SET amount_micros = 2 * amount_micros WHERE ledger_account = 'revenue:order'")
        .execute(&pool)
        .await
        .unwrap();
    let tampered = audit_verify(&url).await;

    let (said, complained) = (text(&clean.stdout), text(&clean.stderr));
    assert_eq!(clean.status.code(), Some(0), "{said}\n{complained}");
    assert!(
        said.contains("audit verify: 2 wallets, 13 wallet events, 7 movements"),
        "{said}"
    );
    assert!(said.contains("EUR: 8 postings, sum 0.000000"), "{said}");
    assert!(said.contains("USD: 6 postings, sum 0.000000"), "{said}");
    assert!(said.contains("clearing:manual"), "{said}");
    assert!(said.contains("OK: the postings match the log"), "{said}");
    assert!(said.contains("wallets read model at position"), "{said}");
    let (said, complained) = (text(&tampered.stdout), text(&tampered.stderr));
    assert_eq!(tampered.status.code(), Some(1), "{said}\n{complained}");
    assert!(said.contains("FAILED: 2 differences"), "{said}");
    assert!(said.contains("different posting: ledger has"), "{said}");
    assert!(
        said.contains("EUR postings sum to 30.000000 instead of zero"),
        "{said}"
    );
    assert!(
        complained.contains("audit verify found 2 differences"),
        "{complained}"
    );
}

#[tokio::test]
async fn audit_verify_exits_2_when_it_cannot_run() {
    let unreachable = "postgres://stratus@127.0.0.1:1/stratus";

    let output = audit_verify(unreachable).await;

    assert_eq!(output.status.code(), Some(2), "{}", text(&output.stderr));
    assert!(text(&output.stdout).is_empty());
}
