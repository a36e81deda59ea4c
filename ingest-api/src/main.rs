use citaflow_platform::{Settings, shutdown, telemetry};
use clap::{Parser, Subcommand};
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
    /// Print the OpenAPI document (as `/openapi.json` serves it) and exit; needs no database,
    /// broker or secrets (the web app's API client is generated from it).
    Openapi,
    /// Apply the database migrations and exit.
    Migrate,
    /// Create the first admin (or reset an admin's password) and exit. The password is read
    /// from the environment variable named by --password-env (default CITAFLOW_ADMIN_PASSWORD),
    /// never from the command line.
    CreateAdmin {
        #[arg(long, default_value = "admin")]
        username: String,
        #[arg(long, default_value = "CITAFLOW_ADMIN_PASSWORD")]
        password_env: String,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let settings = Settings::load()?;
    let command = cli.command.unwrap_or(Command::Serve);
    if let Command::Openapi = command {
        // Only the document on stdout: no log lines.
        let document = ingest_api::http::document(&settings);
        println!("{}", serde_json::to_string_pretty(&document)?);
        return Ok(());
    }
    telemetry::init("ingest-api", &settings.log);
    match command {
        Command::Serve => {
            Application::build(settings)
                .await?
                .run_until_stopped(shutdown::on_signal())
                .await
        }
        Command::Openapi => unreachable!("answered above"),
        Command::Migrate => ingest_api::migrate(&settings).await,
        Command::CreateAdmin {
            username,
            password_env,
        } => {
            let password = std::env::var(&password_env)
                .map_err(|_| anyhow::anyhow!("set the admin password in {password_env}"))?;
            let created = ingest_api::create_admin(&settings, &username, password).await?;
            println!(
                "{} admin user {username}",
                if created { "created" } else { "updated" }
            );
            Ok(())
        }
    }
}
