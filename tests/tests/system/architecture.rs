//! The invariant that matters most: the domain crate does no I/O.

use std::process::Command;

/// Crates that do I/O and must never be reachable from `stratus-domain`.
const FORBIDDEN: &[&str] = &[
    "sqlx",
    "postgres-es",
    "actix-web",
    "actix-rt",
    "reqwest",
    "hyper",
    "lettre",
    "mio",
    "socket2",
    "rand",
    "getrandom",
];

#[test]
fn the_domain_crate_depends_on_no_io_crates() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = Command::new(cargo)
        .args([
            "tree",
            "-p",
            "stratus-domain",
            "-e",
            "normal",
            "--prefix",
            "none",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let tree = String::from_utf8_lossy(&output.stdout);
    let names: Vec<&str> = tree
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    for crate_name in FORBIDDEN {
        assert!(
            !names.contains(crate_name),
            "stratus-domain reaches {crate_name}:\n{tree}"
        );
    }
    // tokio arrives only through cqrs-es (its sync primitives), without networking or the clock driver.
    let tokio_line = tree.lines().find(|l| l.starts_with("tokio "));
    if let Some(line) = tokio_line {
        assert!(
            !line.contains("net"),
            "tokio with networking in the domain: {line}"
        );
    }
}
