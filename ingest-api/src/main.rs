use clap::{Parser, Subcommand};
use citaflow_platform::{Settings, shutdown, telemetry};
use ingest_api::Application;

/// Citaflow's REST API. Configuration comes from CITAFLOW__* environment variables and the
/// optional file named by CITAFLOW_CONFIG.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API (the default).
    Serve,
    /// Apply the database migrations and exit.
    Migrate,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let settings = Settings::load()?;
    telemetry::init("ingest-api", &settings.log);
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => Application::build(settings).await?.run_until_stopped(shutdown::on_signal()).await,
        Command::Migrate => ingest_api::migrate(&settings).await,
    }
}
