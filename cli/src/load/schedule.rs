//! What each request of a run is: the mix of operations and its weights, the slots bookings
//! go to, and the seeded random choices, all decided before the request is due.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{LoadArgs, directory::Directory};

/// The kinds of request the generator sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    Create,
    Read,
    Cancel,
    Reschedule,
}

impl Op {
    const ALL: [Op; 4] = [Op::Create, Op::Read, Op::Cancel, Op::Reschedule];

    pub(super) fn name(self) -> &'static str {
        match self {
            Op::Create => "create",
            Op::Read => "read",
            Op::Cancel => "cancel",
            Op::Reschedule => "reschedule",
        }
    }
}

/// Weights of the operations, e.g. `create=70,read=20,cancel=5,reschedule=5`.
#[derive(Debug, Clone, Serialize)]
pub struct Mix(pub BTreeMap<Op, u32>);

impl Mix {
    pub fn parse(text: &str) -> Result<Mix, String> {
        let mut weights = BTreeMap::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, weight) = part
                .split_once('=')
                .ok_or_else(|| format!("{part:?}: expected name=weight"))?;
            let op = Op::ALL
                .into_iter()
                .find(|op| op.name() == name.trim())
                .ok_or_else(|| {
                    format!("{name:?} is not an operation (create, read, cancel, reschedule)")
                })?;
            let weight: u32 = weight
                .trim()
                .parse()
                .map_err(|_| format!("{part:?}: the weight must be a whole number"))?;
            if weights.insert(op, weight).is_some() {
                return Err(format!("{name:?} appears twice"));
            }
        }
        if weights.values().sum::<u32>() == 0 {
            return Err("at least one operation needs a weight above 0".into());
        }
        Ok(Mix(weights))
    }

    pub(super) fn pick(&self, roll: u64) -> Op {
        let total: u64 = self.0.values().map(|w| u64::from(*w)).sum();
        let mut roll = roll % total;
        for (op, weight) in &self.0 {
            if roll < u64::from(*weight) {
                return *op;
            }
            roll -= u64::from(*weight);
        }
        unreachable!("roll is below the total weight")
    }
}

/// SplitMix64: small, fast and good enough to spread requests; no dependency needed.
pub(super) struct Rng(pub(super) u64);

impl Rng {
    pub(super) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub(super) fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// One scheduled request, fully decided by the scheduler (so the run is reproducible with
/// --seed up to which bookings exist when it runs).
#[derive(Debug, Clone, Copy)]
pub(super) struct Planned {
    pub op: Op,
    pub doctor: usize,
    pub patient: usize,
    pub center: usize,
    pub slot: u32,
    pub pick: u64,
    pub follow: bool,
}

impl Planned {
    /// Draws the next request: its operation by the mix, its doctor (one of the first `hot`
    /// with `--hot-percent` odds), patient, center, slot, which booking of the run it acts on,
    /// and whether it is followed to its final state. The draws are made in this order every
    /// time, so a seed gives the same schedule.
    pub(super) fn draw(rng: &mut Rng, args: &LoadArgs, hot: usize, dir: &Directory) -> Planned {
        let n = dir.doctors.len();
        let op = args.mix.pick(rng.next());
        let doctor = if hot > 0 && (hot == n || rng.below(100) < args.hot_percent as usize) {
            rng.below(hot)
        } else {
            hot + rng.below(n - hot)
        };
        Planned {
            op,
            doctor,
            patient: rng.below(dir.patients.len()),
            center: rng.below(dir.centers.len()),
            slot: rng.below((SLOTS_PER_DAY * DAYS) as usize) as u32,
            pick: rng.next(),
            follow: rng.below(100) < args.sample_percent as usize,
        }
    }
}

/// Slots: 30 minutes, 07:00–20:00 UTC (26 a day), over the 90 days after tomorrow.
const SLOTS_PER_DAY: u32 = 26;
const DAYS: u32 = 90;

pub(super) fn slot_start(first_day: DateTime<Utc>, slot: u32) -> DateTime<Utc> {
    first_day
        + chrono::Duration::days(i64::from(slot / SLOTS_PER_DAY))
        + chrono::Duration::minutes(7 * 60 + 30 * i64::from(slot % SLOTS_PER_DAY))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mixes_follow_their_weights() {
        let mix = Mix::parse("create=70, read=20,cancel=5,reschedule=5").unwrap();
        let mut counts = BTreeMap::new();
        let mut rng = Rng(7);
        for _ in 0..100_000 {
            *counts.entry(mix.pick(rng.next())).or_insert(0u32) += 1;
        }
        assert!(
            (69_000..71_000).contains(&counts[&Op::Create]),
            "{counts:?}"
        );
        assert!((4_500..5_500).contains(&counts[&Op::Cancel]), "{counts:?}");
        assert_eq!(Mix::parse("read=1").unwrap().pick(12345), Op::Read);
        for bad in [
            "create",
            "create=x",
            "delete=5",
            "create=0",
            "create=1,create=2",
        ] {
            assert!(Mix::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn slots_are_half_hours_in_the_day_window() {
        let day = "2030-01-01T00:00:00Z".parse().unwrap();
        assert_eq!(slot_start(day, 0).to_rfc3339(), "2030-01-01T07:00:00+00:00");
        assert_eq!(
            slot_start(day, 25).to_rfc3339(),
            "2030-01-01T19:30:00+00:00"
        );
        assert_eq!(
            slot_start(day, 26).to_rfc3339(),
            "2030-01-02T07:00:00+00:00"
        );
    }
}
