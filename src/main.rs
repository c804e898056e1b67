//! The `clampify` command: parses arguments, sets up logging and prints the outcome.

mod cli;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;

use cli::args::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(&cli);

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            return report_error(
                &anyhow::Error::new(err).context("start the async runtime"),
                cli.global.json,
            )
        }
    };
    let json = cli.global.json;
    match runtime.block_on(cli::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => report_error(&err, json),
    }
}

/// Logs go to stderr, so that stdout carries only results (and `--json` stays parseable).
fn init_tracing(cli: &Cli) {
    let default = match cli.command {
        Command::Watch(_) => "info",
        _ => "warn",
    };
    let filter = cli
        .global
        .log
        .clone()
        .unwrap_or_else(|| default.to_string());
    let filter = tracing_subscriber::EnvFilter::try_new(&filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // Colour codes only when a person reads stderr; journald and log files get plain text.
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}

/// Prints the error chain on one line, or as `{"error": ..., "hint": ...}` with `--json`.
#[allow(clippy::print_stdout, clippy::print_stderr)] // the one place errors reach the operator
fn report_error(err: &anyhow::Error, json: bool) -> ExitCode {
    let hint = cli::hint(err);
    if json {
        let body = serde_json::json!({ "error": format!("{err:#}"), "hint": hint });
        println!("{body}");
    } else {
        eprintln!("error: {err:#}");
        if let Some(hint) = hint {
            eprintln!("hint: {hint}");
        }
    }
    ExitCode::FAILURE
}
