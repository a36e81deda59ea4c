//! The database's ceiling for booking decisions, measured with the processor's own code:
//! N concurrent clients decide creates for random doctors and slots for a fixed time, and the
//! rate is printed as JSON. `scripts/bench.py` compares the platform's sustained rate with it.
//!
//! - `--batch 1` (the default): each call is [`decide::decide`], the transaction the processor
//!   runs for a command it decides alone.
//! - `--batch B`: each call is [`decide::decide_batch`] with B commands, the transaction the
//!   processor runs for a full batch (`processor.batch_max`): its ceiling at its best.
//! - `--raw B`: no rules at all, the table's own limit: each call is one multi-row insert of B
//!   confirmed appointments under the exclusion constraint, in its own transaction. No
//!   decision can be cheaper than writing its row.
//!
//! Usage: `decision-ceiling [--clients N] [--seconds S] [--doctors D] [--batch B | --raw B]`,
//! with the platform's settings in the environment (`CITAFLOW__DATABASE__URL` names a scratch
//! database that has been migrated). It adds D doctors, a center and a patient of its own
//! first.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use booking_processor::{
    command::{Action, Command, Create, Slot},
    decide::{self, Rules},
};
use chrono::{TimeZone, Utc};
use citaflow_platform::{Settings, db};
use uuid::Uuid;

const CENTER: Uuid = Uuid::from_u128(0x0000_0000_0000_4000_9000_0000_0000_0001);
const PATIENT: Uuid = Uuid::from_u128(0x0000_0000_0000_4000_a000_0000_0000_0001);
/// Slots are drawn from this many half hours after 2031-01-01, so collisions are rare.
const SLOTS: u128 = 400_000;

fn doctor(n: u128) -> Uuid {
    Uuid::from_u128(0x0000_0000_0000_4000_8000_0000_0000_0000 + n)
}

struct Args {
    clients: usize,
    seconds: u64,
    doctors: u128,
    batch: usize,
    raw: bool,
}

fn args() -> anyhow::Result<Args> {
    let mut args = Args {
        clients: 8,
        seconds: 10,
        doctors: 500,
        batch: 1,
        raw: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--clients" => args.clients = value.parse().context("--clients")?,
            "--seconds" => args.seconds = value.parse().context("--seconds")?,
            "--doctors" => args.doctors = value.parse().context("--doctors")?,
            "--batch" => args.batch = value.parse().context("--batch")?,
            "--raw" => {
                args.batch = value.parse().context("--raw")?;
                args.raw = true;
            }
            other => {
                bail!("unknown option {other} (--clients, --seconds, --doctors, --batch, --raw)")
            }
        }
    }
    if args.clients == 0 || args.doctors == 0 || args.batch == 0 {
        bail!("--clients, --doctors and --batch must be positive");
    }
    Ok(args)
}

async fn seed(pool: &sqlx::PgPool, doctors: u128) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO centers (id, name, address, timezone) VALUES ($1, 'Bench', 'x', 'UTC')
         ON CONFLICT DO NOTHING",
    )
    .bind(CENTER)
    .execute(pool)
    .await?;
    sqlx::query(
        "INSERT INTO patients (id, name, status) VALUES ($1, 'Bench', 'ACTIVE')
         ON CONFLICT DO NOTHING",
    )
    .bind(PATIENT)
    .execute(pool)
    .await?;
    let ids: Vec<Uuid> = (1..=doctors).map(doctor).collect();
    sqlx::query(
        "INSERT INTO doctors (id, name, specialty)
         SELECT id, 'Doctor ' || id, 'General' FROM UNNEST($1::uuid[]) AS id
         ON CONFLICT DO NOTHING",
    )
    .bind(&ids)
    .execute(pool)
    .await?;
    Ok(())
}

/// A create for a random doctor and half-hour slot (randomness from a v4 id).
fn random_create(doctors: u128) -> Command {
    let draw = Uuid::new_v4().as_u128();
    let epoch = Utc.with_ymd_and_hms(2031, 1, 1, 0, 0, 0).unwrap();
    let starts_at = epoch + chrono::Duration::minutes(30 * ((draw >> 64) % SLOTS) as i64);
    Command {
        command_id: Uuid::new_v4(),
        requested_by: None,
        requested_at: Utc::now(),
        action: Action::Create(Create {
            booking_id: Uuid::new_v4(),
            doctor_id: doctor(1 + draw % doctors),
            patient_id: PATIENT,
            center_id: CENTER,
            slot: Slot {
                starts_at,
                ends_at: starts_at + chrono::Duration::minutes(30),
            },
            reason: None,
            previous_booking_id: None,
            service_id: None,
        }),
    }
}

/// One multi-row insert of confirmed appointments, as `decide_batch` writes them, without any
/// of its reads: answers how many rows were written (a rare random collision is skipped).
async fn insert_raw(pool: &sqlx::PgPool, commands: &[Command]) -> anyhow::Result<u64> {
    let creates: Vec<&Create> = commands
        .iter()
        .filter_map(|c| match &c.action {
            Action::Create(create) => Some(create),
            _ => None,
        })
        .collect();
    let column = |f: fn(&Create) -> Uuid| creates.iter().map(|c| f(c)).collect::<Vec<_>>();
    let ids = column(|c| c.booking_id);
    let doctors = column(|c| c.doctor_id);
    let starts: Vec<_> = creates.iter().map(|c| c.slot.starts_at).collect();
    let ends: Vec<_> = creates.iter().map(|c| c.slot.ends_at).collect();
    let written = sqlx::query(
        "INSERT INTO appointments (id, command_id, doctor_id, patient_id, center_id, starts_at,
                                   ends_at, status, requested_at, decided_at, occupied_from,
                                   occupied_until)
         SELECT id, id, doctor, $4, $5, starts, ends, 'confirmed', now(), now(), starts, ends
           FROM unnest($1::uuid[], $2::uuid[], $3::timestamptz[], $6::timestamptz[])
                AS r(id, doctor, starts, ends)
         ON CONFLICT DO NOTHING",
    )
    .bind(&ids)
    .bind(&doctors)
    .bind(&starts)
    .bind(PATIENT)
    .bind(CENTER)
    .bind(&ends)
    .execute(pool)
    .await?
    .rows_affected();
    Ok(written)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = args()?;
    let mut settings = Settings::load()?;
    settings.database.max_connections = args.clients as u32 + 1;
    let pool = db::pool(&settings.database)?;
    seed(&pool, args.doctors)
        .await
        .context("seeding the directory")?;
    let rules = Rules::from(&settings.processor);
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let started = Instant::now();
    let clients: Vec<_> = (0..args.clients)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move {
                let (mut decided, mut calls, mut busy) = (0u64, 0u64, Duration::ZERO);
                while Instant::now() < deadline {
                    let commands: Vec<Command> = (0..args.batch)
                        .map(|_| random_create(args.doctors))
                        .collect();
                    let t0 = Instant::now();
                    decided += if args.raw {
                        insert_raw(&pool, &commands).await?
                    } else if args.batch == 1 {
                        decide::decide(&pool, rules, &commands[0]).await?;
                        1
                    } else {
                        decide::decide_batch(&pool, rules, &commands).await?;
                        commands.len() as u64
                    };
                    busy += t0.elapsed();
                    calls += 1;
                }
                anyhow::Ok((decided, calls, busy))
            })
        })
        .collect();
    let (mut decided, mut calls, mut busy) = (0u64, 0u64, Duration::ZERO);
    for client in clients {
        let (n, c, b) = client.await??;
        decided += n;
        calls += c;
        busy += b;
    }
    let wall = started.elapsed().as_secs_f64();
    // The latency is per transaction (a batch, or one raw insert of `batch` rows).
    println!(
        "{{\"clients\": {}, \"seconds\": {}, \"batch\": {}, \"raw\": {}, \"decisions\": {decided}, \"decisions_per_s\": {:.1}, \"latency_avg_ms\": {:.3}}}",
        args.clients,
        args.seconds,
        args.batch,
        args.raw,
        decided as f64 / wall,
        busy.as_secs_f64() * 1000.0 / calls.max(1) as f64,
    );
    Ok(())
}
