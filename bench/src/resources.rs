//! CPU and memory of the server and of PostgreSQL over a scenario, read from `/proc`.
//!
//! CPU is the processes' user+system time between two readings divided by the wall time (so 1.0
//! is one core busy). PostgreSQL's time is the postmaster's own and reaped children's plus every
//! live backend's. The server's peak RSS is `VmHWM`, reset at the start of each scenario through
//! `/proc/PID/clear_refs`, so it is the true peak of that scenario and not a sample.

use std::time::Instant;

/// Kernel clock ticks per second of `/proc/*/stat` (USER_HZ, 100 on Linux).
const CLOCK_TICKS_PER_SECOND: f64 = 100.0;

/// CPU time read at one moment.
#[derive(Debug, Clone, Copy)]
pub struct CpuReading {
    at: Instant,
    server_ticks: u64,
    postgres_ticks: u64,
}

/// What a scenario used.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Usage {
    /// Cores the server kept busy on average.
    pub server_cpu_cores: f64,
    /// Cores PostgreSQL kept busy on average.
    pub postgres_cpu_cores: f64,
    /// The server's peak resident memory during the scenario, in MiB.
    pub server_peak_rss_mib: f64,
}

pub struct Monitor {
    server: u32,
    postmaster: Option<u32>,
}

impl Monitor {
    pub fn new(server: u32, postmaster: Option<u32>) -> Self {
        Self { server, postmaster }
    }

    /// Resets the peak RSS and reads the CPU counters: the start of a scenario.
    pub fn start(&self) -> CpuReading {
        // Writing 5 resets VmHWM to the current RSS (Linux 4.0+); without it the peak is the
        // process's lifetime peak, which is still an upper bound.
        std::fs::write(format!("/proc/{}/clear_refs", self.server), "5").ok();
        self.read()
    }

    /// What was used since `start`.
    pub fn finish(&self, start: CpuReading) -> Usage {
        let end = self.read();
        let seconds = end.at.duration_since(start.at).as_secs_f64().max(1e-9);
        let cores = |from: u64, to: u64| {
            // Tick counts of a run are far below 2^52, so the conversion is exact.
            to.saturating_sub(from) as f64 / CLOCK_TICKS_PER_SECOND / seconds
        };
        Usage {
            server_cpu_cores: cores(start.server_ticks, end.server_ticks),
            postgres_cpu_cores: cores(start.postgres_ticks, end.postgres_ticks),
            server_peak_rss_mib: status_kib(self.server, "VmHWM:").unwrap_or(0) as f64 / 1024.0,
        }
    }

    fn read(&self) -> CpuReading {
        let server_ticks = stat(self.server).map(|s| s.own).unwrap_or(0);
        let postgres_ticks = self.postmaster.map(postgres_ticks).unwrap_or(0);
        CpuReading {
            at: Instant::now(),
            server_ticks,
            postgres_ticks,
        }
    }
}

struct Stat {
    parent: u32,
    /// utime + stime
    own: u64,
    /// cutime + cstime: children that have exited and been reaped
    reaped: u64,
}

/// Fields of `/proc/PID/stat` after the command name (which may hold spaces).
fn stat(pid: u32) -> Option<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // After the name: state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14).
    let number = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
    Some(Stat {
        parent: u32::try_from(number(1)?).ok()?,
        own: number(11)?.saturating_add(number(12)?),
        reaped: number(13)?.saturating_add(number(14)?),
    })
}

fn postgres_ticks(postmaster: u32) -> u64 {
    let Some(main) = stat(postmaster) else {
        return 0;
    };
    let mut total = main.own.saturating_add(main.reaped);
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.filter_map(Result::ok) {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            if let Some(child) = stat(pid) {
                if child.parent == postmaster {
                    total = total.saturating_add(child.own);
                }
            }
        }
    }
    total
}

fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = text.lines().find(|line| line.starts_with(field))?;
    line[field.len()..].split_whitespace().next()?.parse().ok()
}
