//! `citaflow settings`: the services' settings contract, printed and checked. Both come from
//! [`citaflow_platform::contract`], i.e. from the `Settings` type the services load.

use std::{collections::BTreeMap, fmt::Write as _, path::PathBuf};

use anyhow::Context;
use citaflow_platform::contract;
use clap::Subcommand;
use serde::Deserialize;

#[derive(Subcommand)]
pub enum SettingsCommand {
    /// Print every CITAFLOW__ setting with its type, default and description.
    ///
    /// Example: citaflow settings list --json | jq '.[] | select(.secret)'
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Check environment files and containers against the contract: unknown names, values of
    /// the wrong type, settings a service cannot start without. Exit status 1 on any problem.
    ///
    /// Example: citaflow settings check --env-file .run/stack.env
    Check {
        /// A file of `export NAME=value` lines (as `./dev` writes .run/stack.env).
        #[arg(long = "env-file")]
        env_files: Vec<PathBuf>,
        /// JSON written by scripts/chart_containers.py from rendered manifests: the containers
        /// that run a service, with their environment, and every CITAFLOW__ name mentioned.
        #[arg(long)]
        containers: Option<PathBuf>,
    },
}

/// What scripts/chart_containers.py extracts from rendered manifests.
#[derive(Deserialize)]
struct Manifests {
    containers: Vec<Container>,
    /// Every `CITAFLOW__…` name in the text, with where it was seen.
    mentions: Vec<Mention>,
}

#[derive(Deserialize)]
struct Container {
    origin: String,
    /// The service binary and its arguments, e.g. `["ingest-api", "migrate"]`.
    command: Vec<String>,
    /// The container's environment; `null` for a value from a Secret.
    env: BTreeMap<String, Option<String>>,
    /// The whole environment of a Secret is added (`envFrom.secretRef`).
    secret_env: bool,
    /// The container port named `http`.
    http_port: Option<u16>,
}

#[derive(Deserialize)]
struct Mention {
    name: String,
    at: String,
}

pub fn run(command: SettingsCommand) -> anyhow::Result<(String, u8)> {
    let mut out = String::new();
    match command {
        SettingsCommand::List { json } => {
            let all = contract::settings();
            if json {
                let _ = writeln!(out, "{}", serde_json::to_string_pretty(&all)?);
            } else {
                for s in &all {
                    let default = match &s.default {
                        serde_json::Value::Null => "(unset)".to_owned(),
                        serde_json::Value::String(v) => v.clone(),
                        other => other.to_string(),
                    };
                    let _ = writeln!(out, "{:<42} {:<24} {}", s.name, s.kind, default);
                }
            }
            Ok((out, 0))
        }
        SettingsCommand::Check {
            env_files,
            containers,
        } => {
            let mut problems = Vec::new();
            let mut checked = 0;
            for path in &env_files {
                let vars = contract::read_env_file(path)?;
                let vars = vars.iter().map(|(k, v)| (k.as_str(), Some(v.as_str())));
                for p in contract::check_env(vars) {
                    problems.push(format!("{}: {p}", path.display()));
                }
                checked += 1;
            }
            if let Some(path) = containers {
                let text = std::fs::read_to_string(&path)
                    .with_context(|| format!("reading {}", path.display()))?;
                let manifests: Manifests = serde_json::from_str(&text).with_context(|| {
                    format!("{} is not chart_containers.py output", path.display())
                })?;
                check_manifests(&manifests, &mut problems);
                checked += manifests.containers.len();
            }
            for p in &problems {
                let _ = writeln!(out, "{p}");
            }
            if problems.is_empty() {
                let _ = writeln!(
                    out,
                    "settings contract: {checked} environment(s) checked, no problem"
                );
                Ok((out, 0))
            } else {
                let _ = writeln!(out, "settings contract: {} problem(s)", problems.len());
                Ok((out, 1))
            }
        }
    }
}

fn check_manifests(manifests: &Manifests, problems: &mut Vec<String>) {
    let known: Vec<String> = contract::settings().into_iter().map(|s| s.name).collect();
    for m in &manifests.mentions {
        if !known.contains(&m.name) {
            problems.push(format!("{}: {} is not a setting", m.at, m.name));
        }
    }
    for c in &manifests.containers {
        let env = c.env.iter().map(|(k, v)| (k.as_str(), v.as_deref()));
        for p in contract::check_env(env) {
            problems.push(format!("{}: {p}", c.origin));
        }
        let Some((binary, args)) = c.command.split_first() else {
            continue;
        };
        let serving = args.first().is_none_or(|a| a == "serve");
        for name in contract::required(binary, serving) {
            if !c.env.contains_key(*name) && !c.secret_env {
                problems.push(format!(
                    "{}: `{}` starts without {name}",
                    c.origin,
                    c.command.join(" ")
                ));
            }
        }
        if !serving {
            continue;
        }
        let value = |name: &str| c.env.get(name).cloned().flatten();
        match (c.http_port, value("CITAFLOW__HTTP__PORT")) {
            (None, _) => problems.push(format!(
                "{}: no container port named http for the service's HTTP server",
                c.origin
            )),
            (Some(port), Some(set)) if set.trim() == port.to_string() => {}
            (Some(port), set) => problems.push(format!(
                "{}: CITAFLOW__HTTP__PORT={set:?} is not the http container port {port}",
                c.origin
            )),
        }
        if !matches!(
            value("CITAFLOW__HTTP__HOST").as_deref(),
            Some("0.0.0.0" | "::")
        ) {
            problems.push(format!(
                "{}: CITAFLOW__HTTP__HOST must be 0.0.0.0 (or ::) for the service to be reachable",
                c.origin
            ));
        }
    }
}
