//! `citaflow load`: an open-loop load generator against a running platform, through the public
//! API only.
//!
//! Open loop: request `i` is due at `start + i / rate`, whatever happened to earlier ones. When
//! `--concurrency` requests are already in flight a due request is not sent and is counted as
//! dropped, so a slow server shows up as drops and latency, never as a quietly slower schedule.
//! Latency is measured from when a request was due (not from when it happened to be sent), so
//! scheduler delays are not hidden either. The run is bounded by `--duration` (at most ten
//! minutes), targets loopback addresses only, and stops by itself.
//!
//! 202 → final state: a sample of creates (`--sample-percent`) is followed after its 202 by
//! polling `GET /bookings/{id}` every 20 ms until it is no longer `pending`. Two times are
//! reported: as the client saw it (202 received → first non-pending read, so up to one poll
//! interval late) and as the server recorded it (`decided_at - requested_at` of the booking).
//!
//! The parts: `directory` prepares the doctors, patients and centers; `schedule` decides what
//! each request is; `requests` sends it and follows sampled bookings; `stats` keeps the
//! histograms and counts; `report` is the result as JSON or text. This file reads the
//! arguments and runs the clock.

mod directory;
mod report;
mod requests;
mod schedule;
mod stats;

use std::{
    collections::BTreeMap,
    path::PathBuf,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use chrono::Utc;
use indicatif::ProgressBar;
use reqwest::Url;
use serde_json::json;
use tokio::sync::Semaphore;
use tokio_util::task::TaskTracker;

use crate::{
    api::{Api, ApiArgs},
    progress,
};
use directory::prepare;
use report::{LoadReport, Summary, ToFinal, render_table, round3};
use requests::Shared;
use schedule::{Mix, Planned, Rng};
use stats::{Stats, latency};

/// `citaflow load` arguments.
#[derive(Debug, clap::Args)]
pub struct LoadArgs {
    #[command(flatten)]
    pub api: ApiArgs,

    /// Requests per second to send (open loop).
    #[arg(long, default_value_t = 50.0, value_name = "RPS")]
    pub rate: f64,

    /// How long to send, e.g. 20s, 2m, 1500ms (at most 10m).
    #[arg(long, default_value = "10s", value_parser = parse_duration, value_name = "TIME")]
    pub duration: Duration,

    /// Most requests in flight; a request due while this many are in flight is dropped.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=2000), value_name = "N")]
    pub concurrency: u32,

    /// Relative weights of the operations.
    #[arg(long, default_value = "create=70,read=20,cancel=5,reschedule=5", value_parser = Mix::parse, value_name = "MIX")]
    pub mix: Mix,

    /// Doctors to spread bookings over.
    #[arg(long, default_value_t = 40, value_parser = clap::value_parser!(u32).range(1..=5000), value_name = "N")]
    pub doctors: u32,

    /// How many of the doctors are "hot" (get --hot-percent of the bookings between them).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(0..=5000), value_name = "N")]
    pub hot_doctors: u32,

    /// Share of creates that go to the hot doctors (a reschedule keeps its booking's doctor).
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u8).range(0..=100), value_name = "PCT")]
    pub hot_percent: u8,

    /// Patients to book for.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=5000), value_name = "N")]
    pub patients: u32,

    /// Centers to book at.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=1000), value_name = "N")]
    pub centers: u32,

    /// Reuse active doctors, patients and centers already in the API instead of creating
    /// new ones.
    #[arg(long)]
    pub reuse: bool,

    /// Share of creates followed from their 202 to their final state.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u8).range(0..=100), value_name = "PCT")]
    pub sample_percent: u8,

    /// Seed of the random choices (default: from the clock).
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,

    /// Write the result as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,

    /// Print the result as JSON instead of a table; no progress bar.
    #[arg(long)]
    pub json: bool,

    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// Help shown after `citaflow load --help`.
pub const HELP: &str = "\
What it does:
  1. Prepares its directory through the API: --centers, --doctors and --patients with unique
     names (prefix load-<run id>), or with --reuse the active ones already there.
  2. Sends --rate requests per second for --duration, open loop: each request is due at its
     time; one due while --concurrency requests are in flight is dropped (counted), never
     delayed. Operations, by --mix weight:
       create      POST /bookings (30-minute slots, next 90 days, 07:00-20:00 UTC);
                   --hot-percent of them go to the first --hot-doctors doctors
       read        GET /bookings/{id} of a booking made in this run, or a doctor's agenda
       cancel      POST /bookings/{id}/cancel of a booking made in this run
       reschedule  POST /bookings/{id}/reschedule of a booking made in this run
     A cancel or reschedule with nothing to act on yet is sent as a create.
  3. Waits for in-flight requests, then reports: achieved rate, dropped and late requests,
     HTTP latency (HDR histogram, from when each request was due: p50, p90, p99, p99.9, max)
     per operation, status counts, errors, and for --sample-percent of the creates the time
     from the 202 to the final state (polling GET /bookings/{id} every 20 ms; the server's own
     decided_at - requested_at is reported beside it).

Only loopback targets (127.0.0.0/8, ::1, localhost) are accepted.

Examples:
  CITAFLOW_USERNAME=admin CITAFLOW_PASSWORD=\"$(cat .run/secrets/admin-password)\" \\
    citaflow load --rate 200 --duration 20s --out result.json
  citaflow load --token \"$TOKEN\" --rate 50 --duration 5s --mix create=100 --json | jq .latency_ms.create
  citaflow load --rate 100 --duration 1m --doctors 200 --hot-doctors 2 --hot-percent 50 --reuse";

/// Parses `20s`, `1m`, `1500ms`, `1m30s` or plain seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let invalid = || format!("{text:?} is not a duration (e.g. 20s, 2m, 1500ms, 1m30s)");
    if let Ok(secs) = text.parse::<f64>() {
        return to_duration(secs).ok_or_else(invalid);
    }
    let mut total = 0.0;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..digits].parse().map_err(|_| invalid())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ms" => 0.001,
            "s" => 1.0,
            "m" | "min" => 60.0,
            "h" => 3600.0,
            _ => return Err(invalid()),
        };
        total += number * scale;
        rest = &rest[unit_len..];
    }
    to_duration(total).ok_or_else(invalid)
}

fn to_duration(secs: f64) -> Option<Duration> {
    (secs.is_finite() && secs > 0.0 && secs < 1e7).then(|| Duration::from_secs_f64(secs))
}

/// Refuses anything but loopback targets: load is only ever sent to this machine.
pub fn require_loopback(url: &Url) -> anyhow::Result<()> {
    let host = url.host_str().unwrap_or_default();
    let loopback = match host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<std::net::IpAddr>()
    {
        Ok(ip) => ip.is_loopback(),
        Err(_) => host.eq_ignore_ascii_case("localhost"),
    };
    if !loopback {
        bail!(
            "load is only sent to loopback addresses (127.0.0.0/8, ::1, localhost); {url} is not one"
        );
    }
    Ok(())
}

/// Runs the load; answers the exit code (0: the run completed; 1: every request failed).
pub async fn run(args: LoadArgs) -> anyhow::Result<u8> {
    let base = crate::api::base_url(&args.api.api_url)?;
    require_loopback(&base)?;
    if !(args.rate.is_finite() && args.rate > 0.0 && args.rate <= 5000.0) {
        bail!("--rate must be above 0 and at most 5000 requests per second");
    }
    if args.duration > Duration::from_secs(600) {
        bail!("--duration must be at most 10m");
    }
    if args.hot_doctors > args.doctors {
        bail!(
            "--hot-doctors ({}) cannot exceed --doctors ({})",
            args.hot_doctors,
            args.doctors
        );
    }
    let api = Api::connect(&args.api, args.concurrency as usize).await?;
    api.require_admin()
        .await
        .context("load prepares its own doctors, centers and patients")?;
    let dir = prepare(&api, &args).await?;
    let hot = (args.hot_doctors as usize).min(dir.doctors.len());

    let tomorrow = (Utc::now() + chrono::Duration::days(1)).date_naive();
    let first_day = tomorrow.and_hms_opt(0, 0, 0).expect("midnight").and_utc();
    let shared = Arc::new(Shared {
        api,
        dir,
        first_day,
        targets: Mutex::default(),
        stats: Mutex::new(Stats::new()),
        polls: AtomicU64::new(0),
        accepted: AtomicU64::new(0),
        tracker: TaskTracker::new(),
    });

    let total = (args.rate * args.duration.as_secs_f64()).floor().max(1.0) as u64;
    let bar = ProgressBar::with_draw_target(Some(total), progress::target(args.json || args.quiet));
    bar.set_style(progress::style(
        "[{elapsed_precise}] [{bar:30}] {pos}/{len} {msg}",
    ));
    let seed = args
        .seed
        .unwrap_or_else(|| Utc::now().timestamp_nanos_opt().unwrap_or_default() as u64);
    let mut rng = Rng(seed);
    let in_flight = Arc::new(Semaphore::new(args.concurrency as usize));
    let started_at = Utc::now();
    let start = Instant::now();
    let (mut sent, mut dropped, mut late) = (0u64, 0u64, 0u64);
    for i in 0..total {
        let due = start + Duration::from_secs_f64(i as f64 / args.rate);
        tokio::time::sleep_until(due.into()).await;
        if due.elapsed() > Duration::from_millis(10) {
            late += 1;
        }
        let plan = Planned::draw(&mut rng, &args, hot, &shared.dir);
        match in_flight.clone().try_acquire_owned() {
            Ok(permit) => {
                sent += 1;
                let shared2 = shared.clone();
                shared.tracker.spawn(async move {
                    shared2.execute(plan, due).await;
                    drop(permit);
                });
            }
            Err(_) => dropped += 1,
        }
        bar.inc(1);
        if i % 64 == 0 {
            bar.set_message(format!(
                "sent {sent}, dropped {dropped}, in flight {}",
                args.concurrency as usize - in_flight.available_permits()
            ));
        }
    }
    let send_window = start.elapsed();
    bar.set_message("waiting for in-flight requests and followed bookings");
    shared.tracker.close();
    let grace = Duration::from_secs(args.api.timeout_secs.max(1) + 35);
    let incomplete = tokio::time::timeout(grace, shared.tracker.wait())
        .await
        .is_err();
    bar.finish_and_clear();
    if incomplete {
        bail!(
            "requests still unanswered {}s after the run; the API may be stuck",
            grace.as_secs()
        );
    }

    let stats = shared.stats.lock().expect("stats lock");
    let mut latency_ms = BTreeMap::new();
    latency_ms.insert("all".to_owned(), latency(&stats.all));
    let mut status = BTreeMap::new();
    let mut answered = 0;
    for (op, s) in &stats.ops {
        latency_ms.insert(op.name().to_owned(), latency(&s.latency));
        status.insert(op.name().to_owned(), s.statuses.clone());
        answered += s
            .statuses
            .iter()
            .filter(|(k, _)| !k.starts_with("error:"))
            .map(|(_, v)| v)
            .sum::<u64>();
    }
    let errors_total = stats.errors.values().sum();
    let report = LoadReport {
        config: json!({
            "api_url": base.as_str(), "rate": args.rate, "duration_secs": args.duration.as_secs_f64(),
            "concurrency": args.concurrency, "mix": args.mix, "doctors": shared.dir.doctors.len(),
            "hot_doctors": hot, "hot_percent": args.hot_percent, "patients": shared.dir.patients.len(),
            "centers": shared.dir.centers.len(), "reuse": args.reuse, "sample_percent": args.sample_percent, "seed": seed,
        }),
        summary: Summary {
            started_at,
            scheduled: total,
            sent,
            dropped,
            late,
            answered,
            errors: errors_total,
            accepted_bookings: shared.accepted.load(Ordering::Relaxed),
            send_window_secs: round3(send_window.as_secs_f64()),
            achieved_rate: round3(sent as f64 / send_window.as_secs_f64().max(1e-9)),
            poll_requests: shared.polls.load(Ordering::Relaxed),
            directory_prefix: shared.dir.prefix.clone(),
        },
        latency_ms,
        status,
        to_final: ToFinal {
            method: "poll GET /bookings/{id} every 20 ms after the 202 (client); decided_at - requested_at (server)",
            followed: stats.followed,
            client_ms: latency(&stats.to_final_client),
            server_ms: latency(&stats.to_final_server),
            outcomes: stats.outcomes.clone(),
        },
        errors: stats.errors.clone(),
        error_samples: stats.error_samples.clone(),
    };
    drop(stats);
    let text = serde_json::to_string_pretty(&report)?;
    if let Some(path) = &args.out {
        std::fs::write(path, format!("{text}\n"))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if args.json {
        crate::emit(&format!("{text}\n"));
    } else {
        crate::emit(&render_table(&report, args.out.as_deref()));
    }
    Ok(if sent > 0 && answered == 0 { 1 } else { 0 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("20s"), Ok(Duration::from_secs(20)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1500ms"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        for bad in ["", "0s", "-1s", "10x", "s", "1.2.3s"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn only_loopback_is_a_target() {
        for ok in [
            "http://127.0.0.1:8080/",
            "http://127.1.2.3/",
            "http://[::1]:8080/",
            "http://LOCALHOST:8080/",
        ] {
            assert!(require_loopback(&Url::parse(ok).unwrap()).is_ok(), "{ok}");
        }
        for bad in [
            "http://10.0.0.1/",
            "http://192.168.1.1/",
            "http://example.com/",
            "http://0.0.0.0/",
        ] {
            assert!(
                require_loopback(&Url::parse(bad).unwrap()).is_err(),
                "{bad}"
            );
        }
    }
}
