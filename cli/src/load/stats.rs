//! What a run measures: an HDR latency histogram and status counts per operation, the times
//! from 202 to the final state, and errors by kind; percentiles in milliseconds for the
//! report.

use std::{collections::BTreeMap, time::Duration};

use hdrhistogram::Histogram;
use serde::Serialize;

use super::schedule::Op;

/// Latency and outcome counts of one kind of request.
pub(super) struct OpStats {
    pub latency: Histogram<u64>,
    pub statuses: BTreeMap<String, u64>,
}

/// The longest time a histogram holds: 10 minutes, in microseconds.
pub(super) const MAX_MICROS: u64 = 600_000_000;

pub(super) fn histogram() -> Histogram<u64> {
    // Microseconds, 1 µs to 10 min, 3 significant digits.
    Histogram::new_with_bounds(1, MAX_MICROS, 3).expect("valid histogram bounds")
}

/// A time as a histogram value: microseconds, within the histograms' bounds.
pub(super) fn micros(elapsed: Duration) -> u64 {
    (elapsed.as_micros() as u64).clamp(1, MAX_MICROS)
}

/// Everything a run measured, behind one lock.
pub(super) struct Stats {
    pub ops: BTreeMap<Op, OpStats>,
    pub all: Histogram<u64>,
    pub to_final_client: Histogram<u64>,
    pub to_final_server: Histogram<u64>,
    pub outcomes: BTreeMap<String, u64>,
    pub errors: BTreeMap<String, u64>,
    pub error_samples: Vec<String>,
    pub followed: u64,
}

impl Stats {
    pub(super) fn new() -> Self {
        Stats {
            ops: BTreeMap::new(),
            all: histogram(),
            to_final_client: histogram(),
            to_final_server: histogram(),
            outcomes: BTreeMap::new(),
            errors: BTreeMap::new(),
            error_samples: Vec::new(),
            followed: 0,
        }
    }
}

/// Percentiles of a histogram, in milliseconds.
#[derive(Debug, Serialize)]
pub struct Latency {
    pub count: u64,
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

pub(super) fn latency(h: &Histogram<u64>) -> Latency {
    let ms = |micros: u64| micros as f64 / 1000.0;
    if h.is_empty() {
        return Latency {
            count: 0,
            mean: 0.0,
            p50: 0.0,
            p90: 0.0,
            p99: 0.0,
            p999: 0.0,
            max: 0.0,
        };
    }
    Latency {
        count: h.len(),
        mean: h.mean().round() / 1000.0,
        p50: ms(h.value_at_quantile(0.50)),
        p90: ms(h.value_at_quantile(0.90)),
        p99: ms(h.value_at_quantile(0.99)),
        p999: ms(h.value_at_quantile(0.999)),
        max: ms(h.max()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_in_milliseconds() {
        let mut h = histogram();
        for micros in 1..=1000u64 {
            h.record(micros * 1000).unwrap();
        }
        let l = latency(&h);
        assert_eq!(l.count, 1000);
        assert!((l.p50 - 500.0).abs() < 1.0, "{l:?}");
        assert!((l.max - 1000.0).abs() < 1.0, "{l:?}");
    }
}
