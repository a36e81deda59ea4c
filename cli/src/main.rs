//! `citaflow`: the command-line client of Citaflow.

mod dlq;

use anyhow::Context;
use citaflow_platform::Settings;
use clap::{Parser, Subcommand};

/// Citaflow command-line client.
#[derive(Parser)]
#[command(version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Look at and re-drive dead-lettered booking commands (operator tool: reads Kafka
    /// directly with the services' CITAFLOW__KAFKA__*, CITAFLOW__REGISTRY__* and
    /// CITAFLOW__TOPICS__* settings).
    #[command(subcommand)]
    Dlq(DlqCommand),
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
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Dlq(command) => {
            let settings = Settings::load().context("loading settings")?;
            match command {
                DlqCommand::List { json } => {
                    let letters = dlq::list(&settings).await?;
                    if json {
                        println!("{}", serde_json::to_string_pretty(&letters)?);
                    } else {
                        println!("{:<4} {:<8} {:<10} {:<8} {:<38} {:<10} ERROR", "PART", "OFFSET", "REASON", "ATTEMPT", "BOOKING", "KIND");
                        for l in &letters {
                            println!(
                                "{:<4} {:<8} {:<10} {:<8} {:<38} {:<10} {}",
                                l.partition,
                                l.offset,
                                l.reason.as_deref().unwrap_or("-"),
                                l.attempt.as_deref().unwrap_or("-"),
                                l.booking_id.as_deref().unwrap_or("(unreadable)"),
                                l.kind.as_deref().unwrap_or("-"),
                                l.error.as_deref().unwrap_or("-").chars().take(100).collect::<String>(),
                            );
                        }
                        println!("{} dead letter(s)", letters.len());
                    }
                }
                DlqCommand::Replay { group, dry_run, json } => {
                    let report = dlq::replay(&settings, &group, dry_run).await?;
                    if json {
                        println!("{}", serde_json::to_string(&report)?);
                    } else {
                        let what = if dry_run { "would replay" } else { "replayed" };
                        println!("{what} {}, skipped {} unreadable", report.replayed, report.skipped_unreadable);
                    }
                }
            }
        }
    }
    Ok(())
}
