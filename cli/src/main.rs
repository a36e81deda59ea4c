//! `citaflow`: the command-line client of Citaflow.
//!
//! `import` and `load` are clients of the public REST API like any other; `dlq` is an operator
//! tool that reads Kafka directly.

mod api;
mod bench_availability;
mod demo;
mod dlq;
mod import;
mod load;
mod progress;
mod settings;

use std::{
    fmt::Write as _,
    io::{ErrorKind, Write as _},
    process::ExitCode,
};

use anyhow::Context;
use citaflow_platform::Settings;
use clap::{Parser, Subcommand};

/// Citaflow command-line client.
#[derive(Parser)]
#[command(
    version,
    about,
    propagate_version = true,
    after_help = "The API commands read --api-url (or CITAFLOW_API_URL, default http://127.0.0.1:8080) and either\n\
                  --token (or CITAFLOW_TOKEN) or --username (or CITAFLOW_USERNAME) with the password in\n\
                  CITAFLOW_PASSWORD (or the variable named by --password-env).\n\n\
                  Examples:\n  \
                  citaflow import --help\n  \
                  citaflow load --rate 200 --duration 20s --out result.json\n  \
                  citaflow dlq list --json"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Load users, centers, doctors and patients from CSV files through the API, then book one
    /// demo appointment. Safe to run again: what is already there is counted, not duplicated.
    #[command(after_help = import::HELP)]
    Import(import::ImportArgs),
    /// Send an open-loop mix of bookings, reads, cancellations and reschedules at a fixed rate
    /// and report latency percentiles, status counts and time to final state.
    #[command(after_help = load::HELP)]
    Load(load::LoadArgs),
    /// Look at and re-drive dead-lettered booking commands (operator tool: reads Kafka
    /// directly with the services' CITAFLOW__KAFKA__*, CITAFLOW__REGISTRY__* and
    /// CITAFLOW__TOPICS__* settings).
    #[command(
        subcommand,
        after_help = "Examples:\n  \
                      citaflow dlq list\n  \
                      citaflow dlq list --json | jq '.[] | select(.reason == \"exhausted\")'\n  \
                      citaflow dlq replay --dry-run && citaflow dlq replay"
    )]
    Dlq(DlqCommand),
    /// The services' settings contract: every CITAFLOW__ variable with its type and default,
    /// and a check of environment files and rendered manifests against it.
    #[command(subcommand)]
    Settings(settings::SettingsCommand),
    /// Time `GET /availability` for one center's week over an agenda it fills itself (a
    /// benchmark: creates a center, a service, doctors, hours, patients and bookings).
    BenchAvailability(bench_availability::BenchArgs),
}

#[derive(Subcommand)]
enum DlqCommand {
    /// List every record in the dead-letter topic with its provenance.
    ///
    /// Example: citaflow dlq list --json | jq '.[] | select(.reason == "exhausted")'
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Send the dead letters not replayed yet back to the request topic as new commands.
    ///
    /// Progress is kept in a consumer group, so running it twice does not send anything twice.
    /// Example: citaflow dlq replay --dry-run
    Replay {
        /// Consumer group that remembers what was replayed.
        #[arg(long, default_value = "citaflow-dlq-replay")]
        group: String,
        /// Show what would be replayed without sending or recording anything.
        #[arg(long)]
        dry_run: bool,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // Exit status of the API commands: 0 done, 1 done with failed rows or requests, 2 could
    // not run (bad input, unreachable API, refused credentials). `dlq` keeps 0/1.
    let result = match cli.command {
        Command::Import(args) => import::run(args).await.map_err(|e| (e, 2)),
        Command::Load(args) => load::run(args).await.map_err(|e| (e, 2)),
        Command::BenchAvailability(args) => bench_availability::run(args)
            .await
            .map(|()| 0)
            .map_err(|e| (e, 2)),
        Command::Dlq(command) => dlq_command(command).await.map(|()| 0).map_err(|e| (e, 1)),
        Command::Settings(command) => settings::run(command)
            .map(|(out, code)| {
                emit(&out);
                code
            })
            .map_err(|e| (e, 2)),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err((err, code)) => {
            eprintln!("error: {err:#}");
            ExitCode::from(code)
        }
    }
}

/// Writes a command's output to stdout. A reader that went away (`citaflow … | head`) is not
/// an error worth a panic: the rest of the output is dropped quietly.
pub(crate) fn emit(text: &str) {
    let mut stdout = std::io::stdout().lock();
    if let Err(err) = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        && err.kind() != ErrorKind::BrokenPipe
    {
        eprintln!("error: writing the output: {err}");
    }
}

/// The operator commands on the dead-letter topic.
async fn dlq_command(command: DlqCommand) -> anyhow::Result<()> {
    let settings = Settings::load().context("loading settings")?;
    let mut out = String::new();
    match command {
        DlqCommand::List { json } => {
            let letters = dlq::list(&settings).await?;
            if json {
                let _ = writeln!(out, "{}", serde_json::to_string_pretty(&letters)?);
            } else {
                let _ = writeln!(
                    out,
                    "{:<4} {:<8} {:<10} {:<8} {:<38} {:<10} ERROR",
                    "PART", "OFFSET", "REASON", "ATTEMPT", "BOOKING", "KIND"
                );
                for l in &letters {
                    let _ = writeln!(
                        out,
                        "{:<4} {:<8} {:<10} {:<8} {:<38} {:<10} {}",
                        l.partition,
                        l.offset,
                        l.reason.as_deref().unwrap_or("-"),
                        l.attempt.as_deref().unwrap_or("-"),
                        l.booking_id.as_deref().unwrap_or("(unreadable)"),
                        l.kind.as_deref().unwrap_or("-"),
                        l.error
                            .as_deref()
                            .unwrap_or("-")
                            .chars()
                            .take(100)
                            .collect::<String>(),
                    );
                }
                let _ = writeln!(out, "{} dead letter(s)", letters.len());
            }
        }
        DlqCommand::Replay {
            group,
            dry_run,
            json,
        } => {
            let report = dlq::replay(&settings, &group, dry_run).await?;
            if json {
                let _ = writeln!(out, "{}", serde_json::to_string(&report)?);
            } else {
                let what = if dry_run { "would replay" } else { "replayed" };
                let _ = writeln!(
                    out,
                    "{what} {}, skipped {} unreadable",
                    report.replayed, report.skipped_unreadable
                );
            }
        }
    }
    emit(&out);
    Ok(())
}
