//! A client that disconnects in the middle of a command leaves no pooled connection inside an open
//! transaction and no half-done command (sqlx has had bugs here).

use std::time::Duration;

use serde_json::json;
use stratus_tests::TestApp;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

#[tokio::test]
async fn clients_that_hang_up_mid_command_leave_no_open_transactions_or_orphan_claims() {
    let app = TestApp::spawn().await;
    let address = app.root.trim_start_matches("http://").to_owned();

    for i in 0..24u64 {
        let body = json!({"name": "Quitter", "email": format!("quit{i}@example.com"), "password": "hang up early 123"})
            .to_string();
        let request = format!(
            "POST /api/v1/auth/register HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let mut stream = TcpStream::connect(&address).await.unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        // Hang up at a different point of the command each time: before, during and after hashing.
        tokio::time::sleep(Duration::from_millis(i * 7 % 90)).await;
        drop(stream);
    }

    let mut settled = false;
    for _ in 0..100 {
        let open: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND state LIKE 'idle in transaction%'",
        )
        .fetch_one(&app.pool)
        .await
        .unwrap();
        let claims = app.rows("SELECT value FROM unique_claims").await.len();
        let accounts = app.rows("SELECT account_id FROM accounts").await.len();
        let events = app
            .rows("SELECT 1 FROM events WHERE event_type = 'AccountRegistered'")
            .await
            .len();
        if open == 0 && claims == accounts && accounts == events {
            settled = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    assert!(settled, "open transactions or orphan claims remained");
    let after = app
        .post(
            "/auth/register",
            &json!({"name": "Stayer", "email": "stay@example.com", "password": "remained until done"}),
            None,
        )
        .await;
    assert_eq!(after.status.as_u16(), 201, "{}", after.body);
}
