//! The report: every figure beside the machine's ceilings and the targets of docs/benchmarks.md,
//! printed as tables and serialised to JSON.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::ceiling::Ceilings;
use crate::resources::Usage;
use crate::scenarios::Lag;
use crate::seed::Rebuild;
use crate::Args;

/// Megabytes (10^6 bytes, the unit of the RSS target) in a mebibyte (2^20 bytes, what /proc reports).
const MIB_IN_MB: f64 = 1.048_576;

/// Latency and outcome of one kind of request (or several taken together).
#[derive(Debug, Clone, Default, Serialize)]
pub struct RequestFigures {
    pub requests: u64,
    pub per_second: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub errors: u64,
    /// Answers by HTTP status (`0`: no answer).
    pub statuses: BTreeMap<String, u64>,
}

/// One load scenario.
#[derive(Debug, Clone, Serialize)]
pub struct LoadFigures {
    pub letter: char,
    pub title: String,
    pub users: usize,
    pub seconds: f64,
    pub overall: RequestFigures,
    /// The GET requests alone, when there were any.
    pub reads: Option<RequestFigures>,
    pub requests: BTreeMap<String, RequestFigures>,
    pub usage: Usage,
    pub projection_lag: Option<Lag>,
}

/// One target and whether it was met.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    pub figure: String,
    pub target: String,
    pub measured: String,
    pub met: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub cores: usize,
    pub memory_gib: f64,
    pub postgres: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    pub users: usize,
    pub flood_users: usize,
    pub wallets: usize,
    pub warmup_seconds: u64,
    pub measured_seconds: u64,
    pub pgbench_seconds: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub started_at: String,
    pub machine: Machine,
    pub settings: Settings,
    pub ceilings: Ceilings,
    pub loads: Vec<LoadFigures>,
    pub rebuild: Option<Rebuild>,
    pub verdicts: Vec<Verdict>,
    #[serde(skip)]
    pub postmaster_pid: Option<u32>,
}

impl Report {
    pub fn new(args: &Args, postgres: String, postmaster_pid: Option<u32>) -> Self {
        Self {
            started_at: chrono::Utc::now().to_rfc3339(),
            machine: Machine {
                cores: std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(1),
                memory_gib: memory_gib(),
                postgres,
            },
            settings: Settings {
                users: args.users,
                flood_users: args.flood_users,
                wallets: args.wallets,
                warmup_seconds: args.warmup,
                measured_seconds: args.seconds,
                pgbench_seconds: args.pgbench_seconds,
            },
            ceilings: Ceilings::default(),
            loads: Vec::new(),
            rebuild: None,
            verdicts: Vec::new(),
            postmaster_pid,
        }
    }

    pub fn all_met(&self) -> bool {
        self.verdicts.iter().all(|v| v.met)
    }

    fn load(&self, letter: char) -> Option<&LoadFigures> {
        self.loads.iter().find(|l| l.letter == letter)
    }

    /// Compares the figures with the targets of the issue (docs/benchmarks.md).
    pub fn judge(&mut self) {
        let mut verdicts = Vec::new();
        let mut push = |figure: &str, target: String, measured: String, met: bool| {
            verdicts.push(Verdict {
                figure: figure.to_owned(),
                target,
                measured,
                met,
            });
        };
        if let Some(a) = self.load('a') {
            let ceiling = self.ceilings.insert_tps(32).unwrap_or(0.0);
            let ratio = ratio(a.overall.per_second, ceiling);
            push(
                "(a) wallet commands/s, 32 connections",
                "≥ 40 % of INSERT ceiling @32".into(),
                format!(
                    "{:.0}/s = {:.0} % of {ceiling:.0}",
                    a.overall.per_second,
                    ratio * 100.0
                ),
                ratio >= 0.40,
            );
            push(
                "(a) p99",
                "≤ 15 ms".into(),
                format!("{:.2} ms", a.overall.p99_ms),
                a.overall.p99_ms <= 15.0,
            );
            push(
                "(a) errors",
                "0".into(),
                a.overall.errors.to_string(),
                a.overall.errors == 0,
            );
            if let Some(lag) = &a.projection_lag {
                push(
                    "projection lag under (a), p99",
                    "≤ 50 ms".into(),
                    format!("{:.2} ms", lag.p99_ms),
                    lag.p99_ms <= 50.0,
                );
            }
        }
        if let Some(b) = self.load('b') {
            push(
                "(b) one hot wallet",
                "≥ 1,000 commands/s, 0 errors".into(),
                format!("{:.0}/s, {} errors", b.overall.per_second, b.overall.errors),
                b.overall.per_second >= 1000.0 && b.overall.errors == 0,
            );
        }
        if let Some(c) = self.load('c') {
            let ceiling = self.ceilings.select_tps(32).unwrap_or(0.0);
            let ratio = ratio(c.overall.per_second, ceiling);
            push(
                "(c) read-model GETs/s, 32 connections",
                "≥ 40 % of PK-SELECT ceiling @32".into(),
                format!(
                    "{:.0}/s = {:.0} % of {ceiling:.0}",
                    c.overall.per_second,
                    ratio * 100.0
                ),
                ratio >= 0.40,
            );
            push(
                "(c) p99",
                "≤ 5 ms".into(),
                format!("{:.2} ms", c.overall.p99_ms),
                c.overall.p99_ms <= 5.0 && c.overall.errors == 0,
            );
        }
        if let Some(rebuild) = &self.rebuild {
            for run in &rebuild.runs {
                push(
                    &format!("(e) rebuild of {}", run.projection),
                    "≥ 100,000 events/s".into(),
                    format!(
                        "{:.0} events/s ({} events in {:.1} s)",
                        run.events_per_second, run.events, run.seconds
                    ),
                    run.events_per_second >= 100_000.0,
                );
            }
        }
        let long_fresh: Vec<&LoadFigures> = self.loads.iter().filter(|l| l.letter == 'f').collect();
        if let [long, fresh] = long_fresh.as_slice() {
            let p50 = ratio(long.overall.p50_ms, fresh.overall.p50_ms);
            let p99 = ratio(long.overall.p99_ms, fresh.overall.p99_ms);
            push(
                "(f) latency at 10,000 events vs fresh",
                "≤ 1.5 ×".into(),
                format!(
                    "p50 {:.2}/{:.2} ms = {p50:.2} ×, p99 {:.2}/{:.2} ms = {p99:.2} ×",
                    long.overall.p50_ms,
                    fresh.overall.p50_ms,
                    long.overall.p99_ms,
                    fresh.overall.p99_ms
                ),
                p50 <= 1.5 && p99 <= 1.5 && long.overall.errors == 0 && fresh.overall.errors == 0,
            );
        }
        if let Some(g) = self.load('g') {
            let reads = g.reads.clone().unwrap_or_default();
            push(
                "(g) GET p99 during a login flood",
                "≤ 20 ms".into(),
                format!(
                    "{:.2} ms ({:.0} GETs/s beside {:.0} logins/s)",
                    reads.p99_ms,
                    reads.per_second,
                    g.overall.per_second - reads.per_second
                ),
                reads.p99_ms <= 20.0 && g.overall.errors == 0,
            );
        }
        if let Some(d) = self.load('d') {
            push(
                "server RSS under (d)",
                "≤ 100 MB (95.4 MiB)".into(),
                format!(
                    "{:.1} MiB = {:.1} MB",
                    d.usage.server_peak_rss_mib,
                    d.usage.server_peak_rss_mib * MIB_IN_MB
                ),
                d.usage.server_peak_rss_mib * MIB_IN_MB <= 100.0,
            );
            push(
                "(d) errors",
                "0".into(),
                d.overall.errors.to_string(),
                d.overall.errors == 0,
            );
        }
        self.verdicts = verdicts;
    }

    /// The tables, on stdout.
    #[allow(clippy::print_stdout)]
    pub fn print(&self) {
        println!();
        println!(
            "machine: {} cores, {:.1} GiB; {}",
            self.machine.cores, self.machine.memory_gib, self.machine.postgres
        );
        println!();
        println!("| ceiling (pgbench) | clients | tps | avg latency |");
        println!("|---|---:|---:|---:|");
        for (kind, runs) in [
            ("single-row INSERT", &self.ceilings.insert),
            ("PK SELECT", &self.ceilings.select),
        ] {
            for run in runs {
                println!(
                    "| {kind} | {} | {:.0} | {:.2} ms |",
                    run.clients, run.tps, run.latency_avg_ms
                );
            }
        }
        println!();
        println!("| scenario | users | req/s | p50 | p95 | p99 | errors | server CPU | PG CPU | server peak RSS |");
        println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        for load in &self.loads {
            let o = &load.overall;
            println!(
                "| ({}) {} | {} | {:.0} | {:.2} ms | {:.2} ms | {:.2} ms | {} | {:.2} | {:.2} | {:.1} MiB |",
                load.letter,
                load.title,
                load.users,
                o.per_second,
                o.p50_ms,
                o.p95_ms,
                o.p99_ms,
                errors_cell(o.errors, &o.statuses),
                load.usage.server_cpu_cores,
                load.usage.postgres_cpu_cores,
                load.usage.server_peak_rss_mib
            );
            if load.requests.len() > 1 {
                for (name, r) in &load.requests {
                    println!(
                        "| &nbsp;&nbsp;{name} | | {:.0} | {:.2} ms | {:.2} ms | {:.2} ms | {} | | | |",
                        r.per_second,
                        r.p50_ms,
                        r.p95_ms,
                        r.p99_ms,
                        errors_cell(r.errors, &r.statuses)
                    );
                }
            }
            if let Some(lag) = &load.projection_lag {
                println!(
                    "| &nbsp;&nbsp;projection lag ({} samples) | | | {:.2} ms | | {:.2} ms | | | | |",
                    lag.samples, lag.p50_ms, lag.p99_ms
                );
            }
        }
        if let Some(rebuild) = &self.rebuild {
            println!();
            println!(
                "| rebuild (log of {} events) | events | seconds | events/s |",
                rebuild.log_events
            );
            println!("|---|---:|---:|---:|");
            for run in &rebuild.runs {
                println!(
                    "| {} | {} | {:.2} | {:.0} |",
                    run.projection, run.events, run.seconds, run.events_per_second
                );
            }
        }
        println!();
        println!("| target | goal | measured | met |");
        println!("|---|---|---|---|");
        for v in &self.verdicts {
            println!(
                "| {} | {} | {} | {} |",
                v.figure,
                v.target,
                v.measured,
                if v.met { "yes" } else { "**no**" }
            );
        }
    }
}

fn ratio(value: f64, base: f64) -> f64 {
    if base > 0.0 {
        value / base
    } else {
        0.0
    }
}

fn memory_gib() -> f64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
            line.split_whitespace().nth(1)?.parse::<f64>().ok()
        })
        .map(|kib| kib / 1024.0 / 1024.0)
        .unwrap_or(0.0)
}

/// The errors column: the count, and when there are any, every status seen with its count
/// (0 stands for no response at all), so that a rare error says what it was.
fn errors_cell(errors: u64, statuses: &BTreeMap<String, u64>) -> String {
    if errors == 0 {
        return "0".to_owned();
    }
    let seen: Vec<String> = statuses
        .iter()
        .map(|(status, n)| format!("{status}: {n}"))
        .collect();
    format!("{errors} ({})", seen.join(", "))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::errors_cell;

    #[test]
    fn an_error_count_names_the_statuses_seen() {
        let statuses: BTreeMap<String, u64> = [("0".to_owned(), 1), ("200".to_owned(), 5_199)]
            .into_iter()
            .collect();
        assert_eq!(errors_cell(0, &statuses), "0");
        assert_eq!(errors_cell(1, &statuses), "1 (0: 1, 200: 5199)");
    }
}
