//! A private PostgreSQL cluster run from the machine's PostgreSQL server binaries.
//!
//! Stratus starts with `cargo run` and no configuration: when no `DATABASE_URL` is given it runs its own
//! PostgreSQL cluster (by default in `.stratus/postgres` under the data directory), and the test suite starts
//! one throwaway ("ephemeral") cluster per test process. This module does both, synchronously, before or
//! outside the async runtime:
//!
//! 1. it finds `initdb`, `pg_ctl` and `postgres` on `PATH`, else in the highest-version
//!    `/usr/lib/postgresql/<N>/bin` (Debian keeps them there, off `PATH`);
//! 2. runs `initdb` on first use (superuser `stratus`; a random password kept in `<data_dir>.password` with
//!    mode 0600 for persistent clusters, trust authentication for ephemeral ones);
//! 3. starts the server with `pg_ctl` on `127.0.0.1` at a free port, without a Unix socket (so no
//!    `/var/run/postgresql` permission issues), logging to `<data_dir>/server.log`, and waits until it answers
//!    the PostgreSQL protocol. A cluster already running in the directory (say, left over by a crash) is
//!    reused instead, at the port its `postmaster.pid` records.
//!
//! # Running as root
//! `initdb` and `postgres` refuse to run as root, yet CI and this project's machines run everything as root.
//! When the effective uid is 0 (read from `/proc/self/status`, else `id -u`; no libc), every PostgreSQL
//! program runs as the `postgres` system user (created by Debian's `postgresql` package) through
//! `runuser -u postgres --` (or `su -s /bin/sh postgres -c` where `runuser` is missing), after the cluster
//! directory has been handed to that user with `chown -R`. That user must be able to traverse every parent
//! of the directory; when one is closed to it (e.g. `/root`, mode 0700) starting fails with an error naming
//! that directory rather than with PostgreSQL's less direct complaint. Commands run with `/` as their
//! working directory so that an unreadable current directory does not matter.
//!
//! # The watchdog
//! Tests keep their cluster in a process-wide static that is never dropped, so [`Drop`] alone would leak
//! one server and one directory per test process. After an ephemeral cluster has started, a small detached
//! shell script (in its own session, stdio on `/dev/null`) polls every half second whether the owning
//! process is still alive (same pid and same start time, not a zombie); once it is gone the script stops
//! the server with `pg_ctl stop -m immediate` and removes the directory. [`PrivateCluster::stop`] ends
//! the watchdog after a normal shutdown.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::fs;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The cluster's superuser, created by `initdb -U`.
const SUPERUSER: &str = "stratus";
/// The system account PostgreSQL runs as when this process is root.
const SYSTEM_USER: &str = "postgres";
/// Where Debian and Ubuntu install the server binaries, one `<major>/bin` directory per version.
const VERSIONED_BIN_ROOT: &str = "/usr/lib/postgresql";
/// Directories searched for `runuser`, `su` and `setsid` besides `PATH` (root's `PATH` may lack `sbin`).
const SYSTEM_BIN_DIRS: [&str; 4] = ["/usr/sbin", "/sbin", "/usr/bin", "/bin"];
/// The server's log file, inside the cluster directory, as passed to `pg_ctl -l`.
const LOG_FILE_NAME: &str = "server.log";

/// How long `pg_ctl` may wait for the server to start or stop (`pg_ctl -t`). A fresh or cleanly stopped
/// cluster starts in well under a second; 30 s leaves room for crash recovery on a slow, busy machine.
const PG_CTL_WAIT_SECS: u32 = 30;
/// How long to wait, after `pg_ctl` reported the server started, for it to answer on its TCP port. `pg_ctl -w`
/// has already waited for the postmaster to report ready, so this only covers the listener coming up.
const READY_TIMEOUT_MS: u64 = 15_000;
/// Pause between two readiness probes: short, because a started server is normally ready at once.
const READY_POLL_INTERVAL_MS: u64 = 50;
/// Connect/read/write timeout of one readiness probe on the loopback interface.
const PROBE_IO_TIMEOUT_MS: u64 = 1_000;
/// Largest message read from the server during a probe; the ones it sends then are a few hundred bytes.
const PROBE_MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// How many messages a probe reads after a successful login while looking for ReadyForQuery: the server
/// sends about fifteen (parameter statuses, key data), so this only stops a confused peer.
const PROBE_MAX_MESSAGES: usize = 64;
/// The frontend Terminate message ('X', length 4), which ends a probe's session cleanly.
const TERMINATE_MESSAGE: [u8; 5] = [b'X', 0, 0, 0, 4];
/// How often the watchdog checks whether the owning process is still alive: half a second keeps the delay
/// before clean-up short while costing nothing noticeable.
const WATCHDOG_POLL_INTERVAL_MS: u64 = 500;
/// How many free ports to try when the server loses the race for the port it was given to another process
/// (the port is found by binding and releasing it, so another process may take it in between).
const START_ATTEMPTS: u32 = 3;
/// How many lines of `server.log` an error carries: enough for PostgreSQL's FATAL line and its context.
const LOG_TAIL_LINES: usize = 20;
/// How many bytes from the end of `server.log` are read to find those lines.
const LOG_TAIL_READ_BYTES: u64 = 64 * 1024;
/// Above this size `server.log` is moved to `server.log.old` before a start, so that a long-lived persistent
/// cluster's log does not grow without bound (the previous log stays available for one more start).
const LOG_ROTATE_BYTES: u64 = 16 * 1024 * 1024;
/// Length of the generated superuser password, alphanumeric: about 190 bits of entropy.
const PASSWORD_LEN: usize = 32;
/// How many fresh names [`ephemeral_dir`] tries before giving up (a clash needs two calls in one nanosecond).
const EPHEMERAL_DIR_ATTEMPTS: u32 = 16;

/// Where and how to run a private cluster.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// Where the cluster lives; created if missing. For `cargo run`: `.stratus/postgres` under the data dir.
    pub data_dir: PathBuf,
    /// true for tests: tuned for speed over durability (fsync=off, synchronous_commit=off,
    /// full_page_writes=off), trust authentication, and the directory is removed when the cluster stops —
    /// including when the owning process dies without running destructors (see the module's watchdog).
    pub ephemeral: bool,
}

/// Why a private cluster could not be started or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// No `initdb`/`pg_ctl`/`postgres` on this machine.
    #[error(
        "PostgreSQL server binaries (initdb, pg_ctl, postgres) were not found on PATH or under \
         /usr/lib/postgresql/*/bin. Install them (Debian/Ubuntu: `apt-get install postgresql`) or set \
         DATABASE_URL to use an existing server."
    )]
    BinariesNotFound,
    /// Running as root, and there is no `postgres` account to run the server as.
    #[error(
        "running as root, but there is no `postgres` system user to run PostgreSQL as (initdb and postgres \
         refuse to run as root). Install the server packages (Debian/Ubuntu: `apt-get install postgresql`, \
         which creates that user), run Stratus as an ordinary user, or set DATABASE_URL to use an existing \
         server."
    )]
    NoUnprivilegedUser,
    /// Running as root, and neither `runuser` nor `su` exists to switch to the `postgres` account.
    #[error(
        "running as root, but neither `runuser` nor `su` was found to run PostgreSQL as the `postgres` user. \
         Install them (Debian/Ubuntu: `apt-get install util-linux login`), run Stratus as an ordinary user, or \
         set DATABASE_URL to use an existing server."
    )]
    NoUserSwitchTool,
    /// Running as root, and a parent of the cluster directory is closed to the `postgres` account.
    #[error(
        "the `postgres` user cannot reach the cluster directory {}: {} (mode {mode:o}) does not let it \
         traverse. Put the cluster elsewhere (e.g. under /var/tmp or /srv), make the directory traversable \
         (`chmod o+x {}`), or set DATABASE_URL to use an existing server.",
        .data_dir.display(),
        .blocking_dir.display(),
        .blocking_dir.display()
    )]
    DirectoryNotTraversable {
        /// The cluster directory.
        data_dir: PathBuf,
        /// The first parent the `postgres` user cannot search.
        blocking_dir: PathBuf,
        /// That parent's permission bits.
        mode: u32,
    },
    /// A persistent cluster exists but the file with its superuser password is gone.
    #[error(
        "the cluster in {} exists but its password file {} is missing, so Stratus cannot log in to it. \
         Restore the file, or delete {} to let Stratus create a fresh cluster (its data is lost).",
        .data_dir.display(),
        .password_file.display(),
        .data_dir.display()
    )]
    PasswordFileMissing {
        /// The cluster directory.
        data_dir: PathBuf,
        /// Where the password was expected.
        password_file: PathBuf,
    },
    /// `initdb` failed.
    #[error("initdb failed for {} ({status}):\n{output}", .data_dir.display())]
    InitdbFailed {
        /// The cluster directory.
        data_dir: PathBuf,
        /// initdb's exit status.
        status: String,
        /// initdb's standard output and error.
        output: String,
    },
    /// `pg_ctl start` failed.
    #[error(
        "PostgreSQL failed to start from {} on port {port}: {output}\n--- last lines of {} ---\n{log_tail}",
        .data_dir.display(),
        .log_file.display()
    )]
    StartFailed {
        /// The cluster directory.
        data_dir: PathBuf,
        /// The port it was asked to listen on.
        port: u16,
        /// pg_ctl's standard output and error.
        output: String,
        /// The server log file.
        log_file: PathBuf,
        /// Its last lines.
        log_tail: String,
    },
    /// The server started but did not answer on its port in time.
    #[error(
        "PostgreSQL in {} did not accept connections on 127.0.0.1:{port} within {waited_ms} ms\n\
         --- last lines of {} ---\n{log_tail}",
        .data_dir.display(),
        .log_file.display()
    )]
    NotReady {
        /// The cluster directory.
        data_dir: PathBuf,
        /// The port probed.
        port: u16,
        /// How long it was probed.
        waited_ms: u64,
        /// The server log file.
        log_file: PathBuf,
        /// Its last lines.
        log_tail: String,
    },
    /// `pg_ctl stop` failed and the server is still running.
    #[error("stopping PostgreSQL in {} failed ({status}):\n{output}", .data_dir.display())]
    StopFailed {
        /// The cluster directory.
        data_dir: PathBuf,
        /// pg_ctl's exit status.
        status: String,
        /// pg_ctl's standard output and error.
        output: String,
    },
    /// A helper command (`chown`, `id`, `pg_ctl status`, …) failed.
    #[error("`{command}` failed ({status}):\n{output}")]
    CommandFailed {
        /// The command line.
        command: String,
        /// Its exit status.
        status: String,
        /// Its standard output and error.
        output: String,
    },
    /// A file-system or process operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

impl ClusterError {
    fn io(context: impl Into<String>) -> impl FnOnce(io::Error) -> Self {
        let context = context.into();
        move |source| Self::Io { context, source }
    }
}

/// A running private PostgreSQL cluster; stopped (and, when ephemeral, removed) by [`PrivateCluster::stop`]
/// or on drop.
pub struct PrivateCluster {
    data_dir: PathBuf,
    ephemeral: bool,
    port: u16,
    /// `None` for ephemeral clusters, which use trust authentication.
    password: Option<String>,
    binaries: Binaries,
    privilege: Privilege,
    watchdog: Option<Child>,
    /// Whether this value ran `pg_ctl start` (as opposed to reusing a running server), so that a failed start
    /// only stops a server it launched itself.
    launched: bool,
    stopped: bool,
}

impl fmt::Debug for PrivateCluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The password is deliberately left out.
        f.debug_struct("PrivateCluster")
            .field("data_dir", &self.data_dir)
            .field("ephemeral", &self.ephemeral)
            .field("port", &self.port)
            .field("stopped", &self.stopped)
            .finish_non_exhaustive()
    }
}

impl PrivateCluster {
    /// Finds the binaries, runs initdb on first use, starts the server on 127.0.0.1 at a free port,
    /// waits until it accepts connections, and returns. If a cluster in data_dir is already running
    /// (e.g. left over by a crash), reuses it (port read from postmaster.pid) instead of failing.
    pub fn start(options: ClusterOptions) -> Result<PrivateCluster, ClusterError> {
        let ClusterOptions {
            data_dir,
            ephemeral,
        } = options;
        let privilege = Privilege::detect()?;
        let binaries = Binaries::discover(read_pg_version(&data_dir).as_deref())?;
        fs::create_dir_all(&data_dir).map_err(ClusterError::io(format!(
            "creating the cluster directory {}",
            data_dir.display()
        )))?;
        let data_dir = fs::canonicalize(&data_dir).map_err(ClusterError::io(format!(
            "resolving the cluster directory {}",
            data_dir.display()
        )))?;
        let mut cluster = PrivateCluster {
            data_dir,
            ephemeral,
            port: 0,
            password: None,
            binaries,
            privilege,
            watchdog: None,
            launched: false,
            stopped: false,
        };
        match cluster.bring_up() {
            Ok(()) => Ok(cluster),
            Err(error) => {
                cluster.clean_up_failed_start();
                // Nothing is left to stop; `Drop` must not try again.
                cluster.stopped = true;
                Err(error)
            }
        }
    }

    /// A sqlx-compatible URL for `database` on this cluster, e.g.
    /// `postgres://stratus:PASSWORD@127.0.0.1:PORT/database` (no password for ephemeral clusters).
    pub fn url(&self, database: &str) -> String {
        let database = percent_encode(database);
        match &self.password {
            Some(password) => format!(
                "postgres://{SUPERUSER}:{password}@127.0.0.1:{}/{database}",
                self.port
            ),
            None => format!("postgres://{SUPERUSER}@127.0.0.1:{}/{database}", self.port),
        }
    }

    /// The TCP port the server listens on at 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server (pg_ctl stop -m fast, bounded wait), idempotent; removes the directory when ephemeral.
    pub fn stop(&mut self) -> Result<(), ClusterError> {
        if self.stopped {
            return Ok(());
        }
        if self.data_dir.join("postmaster.pid").exists() {
            let wait_secs = PG_CTL_WAIT_SECS.to_string();
            let args: [&OsStr; 8] = [
                "stop".as_ref(),
                "-D".as_ref(),
                self.data_dir.as_os_str(),
                "-m".as_ref(),
                "fast".as_ref(),
                "-w".as_ref(),
                "-t".as_ref(),
                wait_secs.as_ref(),
            ];
            let output = run(self.privilege.command(&self.binaries.pg_ctl, args))?;
            if !output.status.success() && self.is_running()? {
                return Err(ClusterError::StopFailed {
                    data_dir: self.data_dir.clone(),
                    status: output.status.to_string(),
                    output: combined_output(&output),
                });
            }
        }
        if self.ephemeral {
            remove_dir_if_present(&self.data_dir)?;
        }
        if let Some(mut watchdog) = self.watchdog.take() {
            // It would also notice the directory is gone and exit by itself; this just saves it the wait.
            // Failures mean it has already exited, which is fine.
            let _ = watchdog.kill();
            let _ = watchdog.wait();
        }
        self.stopped = true;
        tracing::info!(data_dir = %self.data_dir.display(), port = self.port, "private PostgreSQL cluster stopped");
        Ok(())
    }

    /// Everything `start` does once the directory exists; on error the caller cleans up.
    fn bring_up(&mut self) -> Result<(), ClusterError> {
        if let Privilege::AsPostgres { uid, gid, .. } = &self.privilege {
            check_traversable(&self.data_dir, *uid, *gid)?;
            chown_recursive(&self.data_dir, *uid, *gid)?;
        }
        let initialised = self.data_dir.join("PG_VERSION").exists();
        self.password = if self.ephemeral {
            None
        } else {
            Some(self.load_or_create_password(initialised)?)
        };
        if !initialised {
            self.initdb()?;
        }

        let reused = self.is_running()?;
        if reused {
            self.port = read_postmaster_port(&self.data_dir)?;
            tracing::info!(
                data_dir = %self.data_dir.display(),
                port = self.port,
                "reusing the PostgreSQL cluster already running in this directory"
            );
        } else {
            self.start_server()?;
        }
        self.wait_until_ready()?;
        if self.ephemeral {
            self.watchdog = Some(self.spawn_watchdog()?);
        }
        tracing::info!(
            data_dir = %self.data_dir.display(),
            port = self.port,
            ephemeral = self.ephemeral,
            reused,
            "private PostgreSQL cluster ready"
        );
        Ok(())
    }

    /// The superuser password of a persistent cluster: read from `<data_dir>.password`, or generated and
    /// saved there (mode 0600) before `initdb` so that a crash in between cannot lose it.
    fn load_or_create_password(&self, initialised: bool) -> Result<String, ClusterError> {
        let path = password_file(&self.data_dir);
        match fs::read_to_string(&path) {
            Ok(contents) => {
                let password = contents.trim().to_owned();
                if !password.is_empty() {
                    return Ok(password);
                }
                if initialised {
                    return Err(ClusterError::PasswordFileMissing {
                        data_dir: self.data_dir.clone(),
                        password_file: path,
                    });
                }
            }
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                if initialised {
                    return Err(ClusterError::PasswordFileMissing {
                        data_dir: self.data_dir.clone(),
                        password_file: path,
                    });
                }
            }
            Err(error) => {
                return Err(ClusterError::Io {
                    context: format!("reading the cluster password file {}", path.display()),
                    source: error,
                })
            }
        }
        let password = generate_password()?;
        write_private_file(&path, &password)?;
        Ok(password)
    }

    fn initdb(&self) -> Result<(), ClusterError> {
        let mut args: Vec<OsString> = vec![
            "-D".into(),
            self.data_dir.clone().into_os_string(),
            "-U".into(),
            SUPERUSER.into(),
            "--encoding=UTF8".into(),
            "--locale=C".into(),
        ];
        // initdb reads the password from a file; it must be readable by the user initdb runs as, and it
        // cannot live in the (still empty) cluster directory.
        let pwfile = sibling_path(&self.data_dir, ".initdb-pwfile");
        match &self.password {
            Some(password) => {
                remove_file_if_present(&pwfile)?;
                write_private_file(&pwfile, password)?;
                if let Privilege::AsPostgres { uid, gid, .. } = &self.privilege {
                    chown_recursive(&pwfile, *uid, *gid)?;
                }
                args.push("--auth=scram-sha-256".into());
                let mut pwfile_arg = OsString::from("--pwfile=");
                pwfile_arg.push(&pwfile);
                args.push(pwfile_arg);
            }
            None => {
                args.push("--auth=trust".into());
                // Skips the final fsync of the new cluster: a test cluster does not need to survive a crash.
                args.push("--no-sync".into());
            }
        }
        tracing::info!(data_dir = %self.data_dir.display(), "initialising a private PostgreSQL cluster");
        let result = run(self.privilege.command(&self.binaries.initdb, &args));
        if self.password.is_some() {
            remove_file_if_present(&pwfile)?;
        }
        let output = result?;
        if output.status.success() {
            Ok(())
        } else {
            Err(ClusterError::InitdbFailed {
                data_dir: self.data_dir.clone(),
                status: output.status.to_string(),
                output: combined_output(&output),
            })
        }
    }

    /// `pg_ctl start` at a fresh free port, retrying with another port if that one was taken meanwhile.
    fn start_server(&mut self) -> Result<(), ClusterError> {
        let log_file = self.log_file();
        rotate_log_if_large(&log_file)?;
        let mut attempt = 1;
        loop {
            let port = free_port()?;
            let log_offset = fs::metadata(&log_file).map(|meta| meta.len()).unwrap_or(0);
            let wait_secs = PG_CTL_WAIT_SECS.to_string();
            let server_options = self.server_options(port);
            let args: [&OsStr; 11] = [
                "start".as_ref(),
                "-D".as_ref(),
                self.data_dir.as_os_str(),
                "-l".as_ref(),
                log_file.as_os_str(),
                "-w".as_ref(),
                "-t".as_ref(),
                wait_secs.as_ref(),
                "-o".as_ref(),
                server_options.as_ref(),
                "-s".as_ref(),
            ];
            tracing::debug!(port, attempt, "starting PostgreSQL");
            self.launched = true;
            let output = run(self.privilege.command(&self.binaries.pg_ctl, args))?;
            if output.status.success() {
                self.port = port;
                return Ok(());
            }
            let new_log = read_log_since(&log_file, log_offset);
            let port_taken =
                new_log.contains("Address already in use") || new_log.contains("could not bind");
            if port_taken && attempt < START_ATTEMPTS && !self.is_running()? {
                tracing::warn!(
                    port,
                    "port was taken before PostgreSQL could bind it; trying another"
                );
                attempt += 1;
                continue;
            }
            return Err(ClusterError::StartFailed {
                data_dir: self.data_dir.clone(),
                port,
                output: combined_output(&output),
                log_file: log_file.clone(),
                log_tail: last_lines(&new_log, LOG_TAIL_LINES),
            });
        }
    }

    /// Options for the postmaster, as one string for `pg_ctl -o` (which passes it through `/bin/sh`).
    fn server_options(&self, port: u16) -> String {
        let mut options = format!(
            "-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories='' \
             -c max_connections=200 -c shared_buffers=128MB"
        );
        if self.ephemeral {
            options.push_str(" -c fsync=off -c synchronous_commit=off -c full_page_writes=off");
        }
        options
    }

    fn wait_until_ready(&self) -> Result<(), ClusterError> {
        let started = Instant::now();
        let deadline = started + Duration::from_millis(READY_TIMEOUT_MS);
        loop {
            if probe(self.port) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let log_file = self.log_file();
                return Err(ClusterError::NotReady {
                    data_dir: self.data_dir.clone(),
                    port: self.port,
                    waited_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                    log_tail: last_lines(&read_log_since(&log_file, 0), LOG_TAIL_LINES),
                    log_file,
                });
            }
            std::thread::sleep(Duration::from_millis(READY_POLL_INTERVAL_MS));
        }
    }

    /// Whether a server is running in the directory, per `pg_ctl status` (exit 0: running; 3: not running;
    /// 4: no usable data directory).
    fn is_running(&self) -> Result<bool, ClusterError> {
        if !self.data_dir.join("postmaster.pid").exists() {
            return Ok(false);
        }
        let args: [&OsStr; 3] = ["status".as_ref(), "-D".as_ref(), self.data_dir.as_os_str()];
        let output = run(self.privilege.command(&self.binaries.pg_ctl, args))?;
        Ok(output.status.success())
    }

    /// Starts the detached watchdog described in the module documentation.
    fn spawn_watchdog(&self) -> Result<Child, ClusterError> {
        let owner_pid = std::process::id();
        let owner_start = process_start_time("self").unwrap_or_default();
        let wait_secs = PG_CTL_WAIT_SECS.to_string();
        let stop_args: [&OsStr; 8] = [
            "stop".as_ref(),
            "-D".as_ref(),
            self.data_dir.as_os_str(),
            "-m".as_ref(),
            "immediate".as_ref(),
            "-w".as_ref(),
            "-t".as_ref(),
            wait_secs.as_ref(),
        ];
        let stop_command = self
            .privilege
            .shell_command(&self.binaries.pg_ctl, stop_args);
        let poll_secs = format!(
            "{}.{:03}",
            WATCHDOG_POLL_INTERVAL_MS / 1000,
            WATCHDOG_POLL_INTERVAL_MS % 1000
        );
        // `alive` treats a zombie, or a new process that reused the pid (other start time), as gone.
        let script = format!(
            r#"pid={pid}; start={start}; dir={dir}
alive() {{
  kill -0 "$pid" 2>/dev/null || return 1
  [ -r "/proc/$pid/stat" ] || return 0
  stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
  rest=${{stat##*\)}}
  set -- $rest
  [ "$1" != Z ] && [ "$1" != X ] || return 1
  [ -z "$start" ] || [ "${{20}}" = "$start" ]
}}
while [ -d "$dir" ] && alive; do sleep {poll_secs}; done
[ -d "$dir" ] || exit 0
{stop_command} >/dev/null 2>&1
rm -rf "$dir"
"#,
            pid = owner_pid,
            start = shell_quote(&owner_start),
            dir = shell_quote(&self.data_dir.to_string_lossy()),
        );
        let mut command = match find_system_program("setsid") {
            Some(setsid) => {
                // Not a process-group leader, so `setsid` calls setsid(2) and execs the shell in place.
                let mut command = Command::new(setsid);
                command.arg("/bin/sh");
                command
            }
            None => {
                let mut command = Command::new("/bin/sh");
                command.process_group(0);
                command
            }
        };
        command
            .arg("-c")
            .arg(script)
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = command.spawn().map_err(ClusterError::io(
            "starting the ephemeral cluster's watchdog",
        ))?;
        tracing::debug!(
            watchdog_pid = child.id(),
            owner_pid,
            "ephemeral cluster watchdog started"
        );
        Ok(child)
    }

    /// After a failed start: stop a server this call launched (or any in an ephemeral directory, which is
    /// about to be removed), and remove an ephemeral directory.
    fn clean_up_failed_start(&mut self) {
        if !self.launched && !self.ephemeral {
            return;
        }
        match self.is_running() {
            Ok(true) => {
                let args: [&OsStr; 5] = [
                    "stop".as_ref(),
                    "-D".as_ref(),
                    self.data_dir.as_os_str(),
                    "-m".as_ref(),
                    "fast".as_ref(),
                ];
                if let Err(error) = run(self.privilege.command(&self.binaries.pg_ctl, args)) {
                    tracing::warn!(%error, "could not stop PostgreSQL after a failed start");
                }
            }
            Ok(false) => {}
            Err(error) => tracing::warn!(%error, "could not check PostgreSQL after a failed start"),
        }
        if self.ephemeral {
            if let Err(error) = remove_dir_if_present(&self.data_dir) {
                tracing::warn!(%error, "could not remove the ephemeral cluster directory");
            }
        }
    }

    fn log_file(&self) -> PathBuf {
        self.data_dir.join(LOG_FILE_NAME)
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        if let Err(error) = self.stop() {
            tracing::warn!(%error, data_dir = %self.data_dir.display(), "could not stop the private PostgreSQL cluster");
        }
    }
}

/// Makes a fresh, uniquely named directory for an ephemeral cluster under the system temporary directory:
/// `stratus-test-pg-<pid>-<nanos>`, mode 0755 so the `postgres` user can use it once it is handed over.
pub fn ephemeral_dir() -> io::Result<PathBuf> {
    let mut last_error = None;
    for _ in 0..EPHEMERAL_DIR_ATTEMPTS {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|elapsed| elapsed.as_nanos())
            .unwrap_or(0);
        let dir =
            std::env::temp_dir().join(format!("stratus-test-pg-{}-{nanos}", std::process::id()));
        match fs::create_dir(&dir) {
            Ok(()) => {
                fs::set_permissions(&dir, fs::Permissions::from_mode(0o755))?;
                return Ok(dir);
            }
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => last_error = Some(error),
            Err(error) => return Err(error),
        }
    }
    Err(last_error
        .unwrap_or_else(|| io::Error::other("could not create a unique ephemeral directory")))
}

/// The three server programs, by absolute path (the `postgres` user's `PATH` may differ from ours).
#[derive(Debug, Clone)]
struct Binaries {
    initdb: PathBuf,
    pg_ctl: PathBuf,
}

impl Binaries {
    const NAMES: [&'static str; 3] = ["initdb", "pg_ctl", "postgres"];

    /// The binaries matching an existing cluster's major version if installed, else those on `PATH`, else
    /// the highest-version `/usr/lib/postgresql/<N>/bin` that has them all.
    fn discover(cluster_major: Option<&str>) -> Result<Self, ClusterError> {
        let root = Path::new(VERSIONED_BIN_ROOT);
        if let Some(major) = cluster_major {
            if let Some(found) = Self::in_dir(&root.join(major).join("bin")) {
                return Ok(found);
            }
        }
        if let Some(found) = Self::on_path() {
            return Ok(found);
        }
        let mut versions: Vec<(Vec<u32>, PathBuf)> = fs::read_dir(root)
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .filter_map(|entry| {
                        let version = parse_version(&entry.file_name().to_string_lossy())?;
                        Some((version, entry.path().join("bin")))
                    })
                    .collect()
            })
            .unwrap_or_default();
        versions.sort();
        versions
            .iter()
            .rev()
            .find_map(|(_, dir)| Self::in_dir(dir))
            .ok_or(ClusterError::BinariesNotFound)
    }

    fn in_dir(dir: &Path) -> Option<Self> {
        if Self::NAMES
            .iter()
            .all(|name| is_executable(&dir.join(name)))
        {
            Some(Self {
                initdb: dir.join("initdb"),
                pg_ctl: dir.join("pg_ctl"),
            })
        } else {
            None
        }
    }

    fn on_path() -> Option<Self> {
        let initdb = find_on_path("initdb")?;
        let pg_ctl = find_on_path("pg_ctl")?;
        // pg_ctl starts the `postgres` beside it (resolving symlinks); this only checks it is installed.
        find_on_path("postgres")?;
        Some(Self { initdb, pg_ctl })
    }
}

/// Who the PostgreSQL programs run as.
#[derive(Debug, Clone)]
enum Privilege {
    /// This process is not root: run them as ourselves.
    Current,
    /// This process is root: run them as the `postgres` system user.
    AsPostgres {
        switch: UserSwitch,
        uid: u32,
        gid: u32,
    },
}

#[derive(Debug, Clone)]
enum UserSwitch {
    /// `runuser -u postgres -- program args…`
    Runuser(PathBuf),
    /// `su -s /bin/sh postgres -c 'program args…'`
    Su(PathBuf),
}

impl Privilege {
    fn detect() -> Result<Self, ClusterError> {
        if effective_uid()? != 0 {
            return Ok(Self::Current);
        }
        let uid = postgres_id("-u")?;
        let gid = postgres_id("-g")?;
        let switch = if let Some(runuser) = find_system_program("runuser") {
            UserSwitch::Runuser(runuser)
        } else if let Some(su) = find_system_program("su") {
            UserSwitch::Su(su)
        } else {
            return Err(ClusterError::NoUserSwitchTool);
        };
        tracing::debug!(
            ?switch,
            uid,
            gid,
            "running as root: PostgreSQL will run as the postgres user"
        );
        Ok(Self::AsPostgres { switch, uid, gid })
    }

    /// A command running `program args…` as the right user, in `/`, with no standard input.
    fn command<I, S>(&self, program: &Path, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut command = match self {
            Self::Current => {
                let mut command = Command::new(program);
                command.args(args);
                command
            }
            Self::AsPostgres {
                switch: UserSwitch::Runuser(runuser),
                ..
            } => {
                let mut command = Command::new(runuser);
                command
                    .args(["-u", SYSTEM_USER, "--"])
                    .arg(program)
                    .args(args);
                command
            }
            Self::AsPostgres {
                switch: UserSwitch::Su(su),
                ..
            } => {
                let mut command = Command::new(su);
                command
                    .args(["-s", "/bin/sh", SYSTEM_USER, "-c"])
                    .arg(quoted_command_line(program, args));
                command
            }
        };
        command.current_dir("/").stdin(Stdio::null());
        command
    }

    /// The same as [`Privilege::command`], as one line for `/bin/sh`.
    fn shell_command<I, S>(&self, program: &Path, args: I) -> String
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let line = quoted_command_line(program, args);
        match self {
            Self::Current => line,
            Self::AsPostgres {
                switch: UserSwitch::Runuser(runuser),
                ..
            } => {
                format!(
                    "{} -u {SYSTEM_USER} -- {line}",
                    shell_quote(&runuser.to_string_lossy())
                )
            }
            Self::AsPostgres {
                switch: UserSwitch::Su(su),
                ..
            } => {
                format!(
                    "{} -s /bin/sh {SYSTEM_USER} -c {}",
                    shell_quote(&su.to_string_lossy()),
                    shell_quote(&line)
                )
            }
        }
    }
}

/// The effective uid, from `/proc/self/status` (`Uid: real effective saved fs`), else from `id -u`.
fn effective_uid() -> Result<u32, ClusterError> {
    if let Ok(status) = fs::read_to_string("/proc/self/status") {
        let effective = status
            .lines()
            .find_map(|line| line.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().nth(1))
            .and_then(|id| id.parse().ok());
        if let Some(uid) = effective {
            return Ok(uid);
        }
    }
    let mut command = Command::new("id");
    command.arg("-u").stdin(Stdio::null());
    parse_id_output(&run(command)?, "id -u")
}

/// The `postgres` user's uid (`flag` = `-u`) or primary gid (`-g`), or [`ClusterError::NoUnprivilegedUser`].
fn postgres_id(flag: &str) -> Result<u32, ClusterError> {
    let mut command = Command::new("id");
    command.args([flag, SYSTEM_USER]).stdin(Stdio::null());
    let output = run(command)?;
    if !output.status.success() {
        return Err(ClusterError::NoUnprivilegedUser);
    }
    parse_id_output(&output, &format!("id {flag} {SYSTEM_USER}"))
}

fn parse_id_output(output: &Output, command: &str) -> Result<u32, ClusterError> {
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .map_err(|_| ClusterError::CommandFailed {
            command: command.to_owned(),
            status: output.status.to_string(),
            output: combined_output(output),
        })
}

/// Fails with [`ClusterError::DirectoryNotTraversable`] if the user `uid`/`gid` cannot search every parent
/// of `data_dir` (owner, then group, then other execute bit, as the kernel decides; supplementary groups
/// are not considered).
fn check_traversable(data_dir: &Path, uid: u32, gid: u32) -> Result<(), ClusterError> {
    for dir in data_dir.ancestors().skip(1) {
        let meta =
            fs::metadata(dir).map_err(ClusterError::io(format!("inspecting {}", dir.display())))?;
        let mode = meta.mode();
        let searchable = if meta.uid() == uid {
            mode & 0o100 != 0
        } else if meta.gid() == gid {
            mode & 0o010 != 0
        } else {
            mode & 0o001 != 0
        };
        if !searchable {
            return Err(ClusterError::DirectoryNotTraversable {
                data_dir: data_dir.to_owned(),
                blocking_dir: dir.to_owned(),
                mode: mode & 0o7777,
            });
        }
    }
    Ok(())
}

fn chown_recursive(path: &Path, uid: u32, gid: u32) -> Result<(), ClusterError> {
    let mut command = Command::new("chown");
    command
        .arg("-R")
        .arg(format!("{uid}:{gid}"))
        .arg(path)
        .stdin(Stdio::null());
    let output = run(command)?;
    if output.status.success() {
        Ok(())
    } else {
        Err(ClusterError::CommandFailed {
            command: format!("chown -R {uid}:{gid} {}", path.display()),
            status: output.status.to_string(),
            output: combined_output(&output),
        })
    }
}

/// Runs a command to completion, capturing its output.
fn run(mut command: Command) -> Result<Output, ClusterError> {
    let description = describe(&command);
    tracing::debug!(command = %description, "running");
    command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .map_err(ClusterError::io(format!("running `{description}`")))
}

fn describe(command: &Command) -> String {
    std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|part| part.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

fn combined_output(output: &Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let joined = [stdout.trim(), stderr.trim()]
        .into_iter()
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>();
    if joined.is_empty() {
        "(no output)".to_owned()
    } else {
        joined.join("\n")
    }
}

/// One readiness probe: sends a protocol-3.0 startup message and reads the first reply, as `pg_isready`
/// does. An authentication request, or any error other than "the database system is starting up"
/// (SQLSTATE 57P03), means the server is accepting connections. Replies are read in full and a completed
/// login is ended with a Terminate message, so that closing the socket does not reset the connection (the
/// server would log "could not receive data from client" for every probe).
fn probe(port: u16) -> bool {
    let timeout = Duration::from_millis(PROBE_IO_TIMEOUT_MS);
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(mut stream) = TcpStream::connect_timeout(&address, timeout) else {
        return false;
    };
    if stream.set_read_timeout(Some(timeout)).is_err()
        || stream.set_write_timeout(Some(timeout)).is_err()
    {
        return false;
    }
    if stream.write_all(&startup_message()).is_err() {
        return false;
    }
    match read_message(&mut stream) {
        Ok((b'R', body)) => {
            // AuthenticationOk (trust): the server goes on to send its parameters and ReadyForQuery.
            if body.get(..4) == Some(&[0, 0, 0, 0][..]) {
                for _ in 0..PROBE_MAX_MESSAGES {
                    match read_message(&mut stream) {
                        Ok((b'Z', _)) => {
                            let _ = stream.write_all(&TERMINATE_MESSAGE);
                            break;
                        }
                        Ok(_) => {}
                        Err(_) => break,
                    }
                }
            }
            true
        }
        Ok((b'E', body)) => !body.windows(7).any(|field| field == b"C57P03\0"),
        _ => false,
    }
}

/// Reads one backend message: its type byte and body.
fn read_message(stream: &mut TcpStream) -> io::Result<(u8, Vec<u8>)> {
    let mut header = [0_u8; 5];
    stream.read_exact(&mut header)?;
    let length = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
    let body_length = length.saturating_sub(4);
    if body_length > PROBE_MAX_MESSAGE_BYTES {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "oversized message from the server",
        ));
    }
    let mut body = vec![0_u8; body_length];
    stream.read_exact(&mut body)?;
    Ok((header[0], body))
}

fn startup_message() -> Vec<u8> {
    const PROTOCOL_3_0: u32 = 196_608;
    let mut body = Vec::new();
    body.extend_from_slice(&PROTOCOL_3_0.to_be_bytes());
    for part in ["user", SUPERUSER, "database", "postgres"] {
        body.extend_from_slice(part.as_bytes());
        body.push(0);
    }
    body.push(0);
    let length = u32::try_from(body.len() + 4).unwrap_or(u32::MAX);
    let mut message = length.to_be_bytes().to_vec();
    message.extend_from_slice(&body);
    message
}

/// A port that was free on 127.0.0.1 a moment ago (bound to port 0 and released).
fn free_port() -> Result<u16, ClusterError> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .map_err(ClusterError::io("finding a free port on 127.0.0.1"))?;
    let port = listener
        .local_addr()
        .map_err(ClusterError::io("finding a free port on 127.0.0.1"))?
        .port();
    drop(listener);
    Ok(port)
}

/// The port recorded in a running cluster's `postmaster.pid` (its fourth line).
fn read_postmaster_port(data_dir: &Path) -> Result<u16, ClusterError> {
    let path = data_dir.join("postmaster.pid");
    let contents = fs::read_to_string(&path)
        .map_err(ClusterError::io(format!("reading {}", path.display())))?;
    parse_postmaster_port(&contents).ok_or_else(|| ClusterError::Io {
        context: format!("reading the port from {}", path.display()),
        source: io::Error::new(io::ErrorKind::InvalidData, "no port on its fourth line"),
    })
}

fn parse_postmaster_port(contents: &str) -> Option<u16> {
    contents
        .lines()
        .nth(3)?
        .trim()
        .parse()
        .ok()
        .filter(|port| *port != 0)
}

/// The major version of an existing cluster (`PG_VERSION`), used to prefer the matching binaries.
fn read_pg_version(data_dir: &Path) -> Option<String> {
    let version = fs::read_to_string(data_dir.join("PG_VERSION")).ok()?;
    let version = version.trim();
    parse_version(version).map(|_| version.to_owned())
}

/// `"15"` → `[15]`, `"9.6"` → `[9, 6]`; anything else is not a version directory.
fn parse_version(name: &str) -> Option<Vec<u32>> {
    name.split('.').map(|part| part.parse().ok()).collect()
}

fn is_executable(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

/// A system utility on `PATH`, else in the usual system directories.
fn find_system_program(name: &str) -> Option<PathBuf> {
    find_on_path(name).or_else(|| {
        SYSTEM_BIN_DIRS
            .iter()
            .map(|dir| Path::new(dir).join(name))
            .find(|candidate| is_executable(candidate))
    })
}

/// The start time (field 22 of `/proc/<pid>/stat`, in clock ticks since boot) that tells a process apart
/// from a later one with the same pid.
fn process_start_time(pid: &str) -> Option<String> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may contain spaces; fields after it are plain.
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(19).map(str::to_owned)
}

/// `<data_dir><suffix>`, beside the cluster directory.
fn sibling_path(data_dir: &Path, suffix: &str) -> PathBuf {
    let mut path = data_dir.as_os_str().to_owned();
    path.push(suffix);
    PathBuf::from(path)
}

fn password_file(data_dir: &Path) -> PathBuf {
    sibling_path(data_dir, ".password")
}

/// A random alphanumeric password from `/dev/urandom` (rejection sampling keeps it uniform).
fn generate_password() -> Result<String, ClusterError> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    // The largest multiple of the alphabet's size that fits in a byte: bytes at or above it are skipped.
    const ACCEPT_BELOW: u8 = 248;
    let mut urandom =
        fs::File::open("/dev/urandom").map_err(ClusterError::io("opening /dev/urandom"))?;
    let mut password = String::with_capacity(PASSWORD_LEN);
    let mut buffer = [0_u8; 64];
    while password.len() < PASSWORD_LEN {
        urandom
            .read_exact(&mut buffer)
            .map_err(ClusterError::io("reading /dev/urandom"))?;
        for byte in buffer.iter().copied().filter(|byte| *byte < ACCEPT_BELOW) {
            if password.len() == PASSWORD_LEN {
                break;
            }
            password.push(char::from(ALPHABET[usize::from(byte) % ALPHABET.len()]));
        }
    }
    Ok(password)
}

/// Writes `contents` and a newline to a new file readable only by its owner (mode 0600).
fn write_private_file(path: &Path, contents: &str) -> Result<(), ClusterError> {
    let context = format!("writing {}", path.display());
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(ClusterError::io(context.clone()))?;
    // `mode` only applies when the file is created; make sure an existing one is private too.
    file.set_permissions(fs::Permissions::from_mode(0o600))
        .map_err(ClusterError::io(context.clone()))?;
    file.write_all(format!("{contents}\n").as_bytes())
        .map_err(ClusterError::io(context.clone()))?;
    file.sync_all().map_err(ClusterError::io(context))
}

fn remove_file_if_present(path: &Path) -> Result<(), ClusterError> {
    match fs::remove_file(path) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => Err(ClusterError::Io {
            context: format!("removing {}", path.display()),
            source: error,
        }),
        _ => Ok(()),
    }
}

fn remove_dir_if_present(path: &Path) -> Result<(), ClusterError> {
    match fs::remove_dir_all(path) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => Err(ClusterError::Io {
            context: format!("removing {}", path.display()),
            source: error,
        }),
        _ => Ok(()),
    }
}

fn rotate_log_if_large(log_file: &Path) -> Result<(), ClusterError> {
    let large = fs::metadata(log_file).is_ok_and(|meta| meta.len() > LOG_ROTATE_BYTES);
    if large {
        fs::rename(log_file, sibling_path(log_file, ".old"))
            .map_err(ClusterError::io(format!("rotating {}", log_file.display())))?;
    }
    Ok(())
}

/// The log written since byte `offset` (at most its last [`LOG_TAIL_READ_BYTES`]), or a note why not.
fn read_log_since(log_file: &Path, offset: u64) -> String {
    let read = || -> io::Result<String> {
        let mut file = fs::File::open(log_file)?;
        let length = file.metadata()?.len();
        let start = offset
            .max(length.saturating_sub(LOG_TAIL_READ_BYTES))
            .min(length);
        file.seek(SeekFrom::Start(start))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    };
    read().unwrap_or_else(|error| format!("(could not read {}: {error})", log_file.display()))
}

fn last_lines(text: &str, count: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(count)..].join("\n");
    if tail.trim().is_empty() {
        "(the log is empty)".to_owned()
    } else {
        tail
    }
}

/// Quotes one word for `/bin/sh`.
fn shell_quote(word: &str) -> String {
    if !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-=:,+@%".contains(&b))
    {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

fn quoted_command_line<I, S>(program: &Path, args: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    std::iter::once(shell_quote(&program.to_string_lossy()))
        .chain(
            args.into_iter()
                .map(|arg| shell_quote(&arg.as_ref().to_string_lossy())),
        )
        .collect::<Vec<_>>()
        .join(" ")
}

/// Percent-encodes everything but RFC 3986 unreserved characters, for the database name in a URL.
fn percent_encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn quotes_shell_words() {
        assert_eq!(
            shell_quote("/usr/lib/postgresql/15/bin/pg_ctl"),
            "/usr/lib/postgresql/15/bin/pg_ctl"
        );
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(
            quoted_command_line(Path::new("/bin/pg_ctl"), ["-o", "-c x=''"]),
            r"/bin/pg_ctl -o '-c x='\'''\'''"
        );
    }

    #[test]
    fn reads_the_port_from_postmaster_pid() {
        let pid_file = "4242\n/tmp/pg\n1700000000\n54321\n\n127.0.0.1\n  1234   5678\nready   \n";
        assert_eq!(parse_postmaster_port(pid_file), Some(54321));
        assert_eq!(parse_postmaster_port("4242\n/tmp/pg\n"), None);
    }

    #[test]
    fn parses_version_directories() {
        assert_eq!(parse_version("15"), Some(vec![15]));
        assert_eq!(parse_version("9.6"), Some(vec![9, 6]));
        assert_eq!(parse_version("common"), None);
        let mut versions = [
            parse_version("9.6"),
            parse_version("16"),
            parse_version("15"),
        ];
        versions.sort();
        assert_eq!(versions.last().cloned().flatten(), Some(vec![16]));
    }

    #[test]
    fn generates_alphanumeric_passwords() {
        let first = generate_password().unwrap();
        let second = generate_password().unwrap();
        assert_eq!(first.len(), PASSWORD_LEN);
        assert!(first.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(first, second);
    }

    #[test]
    fn encodes_database_names() {
        assert_eq!(percent_encode("stratus_test-1"), "stratus_test-1");
        assert_eq!(percent_encode("a b/c"), "a%20b%2Fc");
    }

    #[test]
    fn keeps_the_last_log_lines() {
        assert_eq!(last_lines("a\nb\nc\n", 2), "b\nc");
        assert_eq!(last_lines("", 2), "(the log is empty)");
    }

    #[test]
    fn own_start_time_is_readable() {
        assert!(process_start_time("self").is_some_and(|start| start.parse::<u64>().is_ok()));
    }

    #[test]
    fn cluster_can_live_in_a_static() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<PrivateCluster>();
    }

    #[test]
    fn ephemeral_dirs_are_fresh() {
        let first = ephemeral_dir().unwrap();
        let second = ephemeral_dir().unwrap();
        assert_ne!(first, second);
        assert_eq!(
            fs::metadata(&first).unwrap().permissions().mode() & 0o777,
            0o755
        );
        fs::remove_dir(&first).unwrap();
        fs::remove_dir(&second).unwrap();
    }
}
