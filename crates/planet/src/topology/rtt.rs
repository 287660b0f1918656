//! [`RttModel`]: the round trip between any two regions.
//!
//! The base RTT of a pair is its measured value when the topology has an
//! override for it, else the fitted model over the physical floor
//! ([`Calibration::model_ms`]); within one region it is the topology's
//! `intra_region_ms`. A *sample* adds jitter: an exponential tail with a
//! mean of `tail` × base (2 % by default), drawn from a hash of (seed,
//! pair, draw index), so samples are symmetric, reproducible for a seed and
//! independent of call order — and never below the base, so never below
//! the floor.

use serde::Serialize;

use super::fit::Calibration;
use super::geo::{LatLon, floor_between_ms};
use super::tree::Topology;
use rng::{exponential, mix, unit};

/// The default mean of the jitter tail, as a fraction of the base RTT.
pub const DEFAULT_TAIL: f64 = 0.02;

/// A symmetric matrix of round trips in milliseconds between `n` regions.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RttMatrix {
    n: usize,
    ms: Vec<f64>,
}

impl RttMatrix {
    /// A matrix from a function of the pair (called for `a <= b` and
    /// mirrored, so the result is symmetric whatever `f` does).
    pub fn from_fn(n: usize, f: impl Fn(usize, usize) -> f64) -> RttMatrix {
        let mut ms = vec![0.0; n * n];
        for a in 0..n {
            for b in a..n {
                let v = f(a, b);
                ms[a * n + b] = v;
                ms[b * n + a] = v;
            }
        }
        RttMatrix { n, ms }
    }

    /// Regions in the matrix.
    pub fn len(&self) -> usize {
        self.n
    }

    /// Whether the matrix has no regions.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// The RTT between regions `a` and `b` (panics if either is out of
    /// range, like slice indexing).
    pub fn get(&self, a: usize, b: usize) -> f64 {
        self.ms[a * self.n + b]
    }
}

/// The RTT model of one topology. Deterministic: the same topology,
/// calibration and seed give the same numbers everywhere.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RttModel {
    calibration: Calibration,
    at: Vec<LatLon>,
    floor: RttMatrix,
    base: RttMatrix,
    seed: u64,
    tail: f64,
}

impl RttModel {
    /// The model of `topology` with `calibration` (e.g.
    /// [`Calibration::aws_2017`]) and the jitter seed.
    pub fn new(topology: &Topology, calibration: Calibration, seed: u64) -> RttModel {
        let at: Vec<LatLon> = topology.regions.iter().map(|r| r.at).collect();
        let n = at.len();
        let floor = RttMatrix::from_fn(n, |a, b| floor_between_ms(at[a], at[b]));
        let mut base = RttMatrix::from_fn(n, |a, b| {
            if a == b {
                topology.intra_region_ms
            } else {
                calibration.model_ms(floor.get(a, b))
            }
        });
        for o in &topology.overrides {
            // Validation put both indices in range and the value above the floor.
            base.ms[o.a * n + o.b] = o.ms;
            base.ms[o.b * n + o.a] = o.ms;
        }
        RttModel {
            calibration,
            at,
            floor,
            base,
            seed,
            tail: DEFAULT_TAIL,
        }
    }

    /// The same model with another jitter tail (mean, as a fraction of the
    /// base RTT; negative or non-finite values mean no jitter).
    pub fn with_tail(mut self, tail: f64) -> RttModel {
        self.tail = if tail.is_finite() { tail.max(0.0) } else { 0.0 };
        self
    }

    /// The calibration in use.
    pub fn calibration(&self) -> &Calibration {
        &self.calibration
    }

    /// Regions modelled.
    pub fn len(&self) -> usize {
        self.at.len()
    }

    /// Whether the model has no regions.
    pub fn is_empty(&self) -> bool {
        self.at.is_empty()
    }

    /// The physical floor between two regions (0 within one region).
    pub fn floor_ms(&self, a: usize, b: usize) -> f64 {
        self.floor.get(a, b)
    }

    /// The RTT between two regions without jitter.
    pub fn base_ms(&self, a: usize, b: usize) -> f64 {
        self.base.get(a, b)
    }

    /// Every pair's physical floor.
    pub fn floor_matrix(&self) -> &RttMatrix {
        &self.floor
    }

    /// Every pair's RTT without jitter.
    pub fn base_matrix(&self) -> &RttMatrix {
        &self.base
    }

    /// The `draw`-th sampled RTT between two regions: base plus jitter,
    /// the same for `(a, b)` and `(b, a)` and for every call with the same
    /// seed and draw.
    pub fn sample_ms(&self, a: usize, b: usize, draw: u64) -> f64 {
        let (lo, hi) = (a.min(b) as u64, a.max(b) as u64);
        let key = mix(self.seed ^ mix((lo << 32 | hi) ^ mix(draw.wrapping_add(1))));
        let base = self.base_ms(a, b);
        base + exponential(self.tail * base, unit(key))
    }

    /// The modelled RTT from a client at `at` to a region (the fitted model
    /// over the floor; overrides are between regions only).
    pub fn client_ms(&self, at: LatLon, region: usize) -> f64 {
        self.calibration
            .model_ms(floor_between_ms(at, self.at[region]))
    }
}
