//! The machine's own ceiling, measured with pgbench before Stratus runs: single-row INSERT
//! transactions into a table shaped like `events`, and primary-key SELECTs from it, at 1, 8 and 32
//! clients. Stratus's figures are reported as ratios to these.

use std::path::PathBuf;

use serde::Serialize;
use tokio::process::Command;

use crate::server::Cluster;
use crate::{progress, BenchError, BenchResult};

/// Client counts of the ceiling runs.
pub const CLIENTS: [u32; 3] = [1, 8, 32];
/// Rows in the table the SELECT run reads from.
const SELECT_ROWS: u32 = 100_000;

const SCHEMA: &str = "CREATE TABLE events_like (
    aggregate_type  text        NOT NULL,
    aggregate_id    text        NOT NULL,
    sequence        bigint      NOT NULL,
    event_type      text        NOT NULL,
    event_version   text        NOT NULL,
    payload         jsonb       NOT NULL,
    metadata        jsonb       NOT NULL,
    global_position bigint      GENERATED ALWAYS AS IDENTITY,
    transaction_id  xid8        NOT NULL DEFAULT pg_current_xact_id(),
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (aggregate_type, aggregate_id, sequence)
)";

/// A payload and metadata of the size Stratus writes for a wallet credit.
const PAYLOAD: &str = r#"{"WalletRefunded": {"reference": "bench-0190a1b2c3d4e5f6a7b8c9d0e1f2a3b4", "refunds_debit": null, "amount": {"amount": "1.000000", "currency": "EUR"}, "reason": "goodwill", "balance_after": {"amount": "42.000000", "currency": "EUR"}, "refunded_at": "2026-11-21T10:00:00.000000Z"}}"#;
const METADATA: &str = r#"{"command_id": "0190a1b2-c3d4-e5f6-a7b8-c9d0e1f2a3b4", "actor_id": "0190a1b2-c3d4-e5f6-a7b8-c9d0e1f2a3b5", "actor_kind": "account", "request_id": "0190a1b2-c3d4-e5f6-a7b8-c9d0e1f2a3b6"}"#;

/// One pgbench run.
#[derive(Debug, Clone, Serialize)]
pub struct CeilingRun {
    pub clients: u32,
    pub tps: f64,
    pub latency_avg_ms: f64,
    pub failed: u64,
}

/// Both ceilings at every client count.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Ceilings {
    pub insert: Vec<CeilingRun>,
    pub select: Vec<CeilingRun>,
}

impl Ceilings {
    pub fn insert_tps(&self, clients: u32) -> Option<f64> {
        self.insert
            .iter()
            .find(|r| r.clients == clients)
            .map(|r| r.tps)
    }

    pub fn select_tps(&self, clients: u32) -> Option<f64> {
        self.select
            .iter()
            .find(|r| r.clients == clients)
            .map(|r| r.tps)
    }
}

pub async fn measure(cluster: &Cluster, seconds: u64) -> BenchResult<Ceilings> {
    let url = cluster.create_database("ceiling").await?;
    let pool = sqlx::PgPool::connect(&url).await?;
    sqlx::query(SCHEMA).execute(&pool).await?;
    sqlx::query("CREATE UNIQUE INDEX ON events_like (global_position)")
        .execute(&pool)
        .await?;
    sqlx::query("CREATE INDEX ON events_like (transaction_id, global_position)")
        .execute(&pool)
        .await?;
    sqlx::query(&format!(
        "INSERT INTO events_like (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
         SELECT 'wallet', 'pk-' || i, 1, 'WalletRefunded', '1', '{PAYLOAD}', '{METADATA}' \
         FROM generate_series(1, {SELECT_ROWS}) i"
    ))
    .execute(&pool)
    .await?;
    sqlx::query("VACUUM ANALYZE events_like")
        .execute(&pool)
        .await?;
    pool.close().await;

    let dir = tempfile::tempdir()?;
    let insert_script = dir.path().join("insert.sql");
    std::fs::write(
        &insert_script,
        format!(
            "\\set seq random(1, 1000000000000)\n\
             INSERT INTO events_like (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
             VALUES ('wallet', 'client-' || :client_id, :seq, 'WalletRefunded', '1', '{PAYLOAD}', '{METADATA}');\n"
        ),
    )?;
    let select_script = dir.path().join("select.sql");
    std::fs::write(
        &select_script,
        format!(
            "\\set i random(1, {SELECT_ROWS})\n\
             SELECT payload FROM events_like WHERE aggregate_type = 'wallet' AND aggregate_id = 'pk-' || :i AND sequence = 1;\n"
        ),
    )?;
    let pgbench = pgbench_binary();
    let mut ceilings = Ceilings::default();
    for clients in CLIENTS {
        progress(&format!("pgbench: single-row INSERT at {clients} clients"));
        ceilings
            .insert
            .push(pgbench_run(&pgbench, &url, &insert_script, clients, seconds).await?);
    }
    for clients in CLIENTS {
        progress(&format!("pgbench: primary-key SELECT at {clients} clients"));
        ceilings
            .select
            .push(pgbench_run(&pgbench, &url, &select_script, clients, seconds).await?);
    }
    Ok(ceilings)
}

/// pgbench from PATH, else from the newest server installation.
fn pgbench_binary() -> PathBuf {
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("pgbench"))
            .find(|candidate| candidate.is_file())
    });
    if let Some(found) = on_path {
        return found;
    }
    let mut installed: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|entry| entry.path().join("bin").join("pgbench"))
                .filter(|path| path.is_file())
                .collect()
        })
        .unwrap_or_default();
    installed.sort();
    installed.pop().unwrap_or_else(|| PathBuf::from("pgbench"))
}

async fn pgbench_run(
    pgbench: &PathBuf,
    url: &str,
    script: &PathBuf,
    clients: u32,
    seconds: u64,
) -> BenchResult<CeilingRun> {
    let threads = clients.min(2);
    let output = Command::new(pgbench)
        .args(["-n", "-M", "prepared"])
        .args(["-c", &clients.to_string(), "-j", &threads.to_string()])
        .args(["-T", &seconds.to_string()])
        .arg("-f")
        .arg(script)
        .arg(url)
        .output()
        .await?;
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(BenchError::failed(format!(
            "pgbench failed ({}): {}{}",
            output.status,
            text,
            String::from_utf8_lossy(&output.stderr)
        )));
    }
    let tps = figure_after(&text, "tps = ")
        .ok_or_else(|| BenchError::failed(format!("no tps in pgbench output: {text}")))?;
    let latency_avg_ms = figure_after(&text, "latency average = ").unwrap_or(0.0);
    let failed = figure_after(&text, "number of failed transactions: ").unwrap_or(0.0);
    Ok(CeilingRun {
        clients,
        tps,
        latency_avg_ms,
        // A count printed by pgbench: whole and non-negative.
        failed: failed.max(0.0) as u64,
    })
}

/// The number that follows `label` on the first line that has it.
fn figure_after(text: &str, label: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let rest = &line[line.find(label)? + label.len()..];
        let number: String = rest
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.')
            .collect();
        number.parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::figure_after;

    #[test]
    fn reads_the_figures_pgbench_prints() {
        let output = "number of transactions actually processed: 52100\n\
                      number of failed transactions: 0 (0.000%)\n\
                      latency average = 6.142 ms\n\
                      initial connection time = 21.403 ms\n\
                      tps = 5209.870113 (without initial connection time)\n";
        assert_eq!(figure_after(output, "tps = "), Some(5209.870113));
        assert_eq!(figure_after(output, "latency average = "), Some(6.142));
        assert_eq!(
            figure_after(output, "number of failed transactions: "),
            Some(0.0)
        );
        assert_eq!(figure_after(output, "nothing = "), None);
    }
}
