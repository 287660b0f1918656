//! Synthetic metric series for tests and benchmarks, from a seed: the
//! same seed always gives the same series, on every machine (a
//! xorshift64* generator and Box-Muller normals, no platform maths
//! beyond `sin`, `ln`, `sqrt` and `cos`).

use crate::time::DAY_MS;

/// A small, seeded, portable random number generator (xorshift64*).
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (0 is replaced by a fixed odd constant).
    pub fn new(seed: u64) -> Rng {
        Rng(if seed == 0 {
            0x9e37_79b9_7f4a_7c15
        } else {
            seed
        })
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let u = self.uniform().max(f64::MIN_POSITIVE);
        let v = self.uniform();
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

/// What a synthetic series looks like.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// Requests per second: a daily cycle (busy days, quiet nights), a
    /// quieter weekend, slow growth, multiplicative noise.
    RequestRate,
    /// Live sandboxes: a whole number that follows a request rate with a
    /// lag, never below a floor.
    LiveSandboxes,
    /// Memory in bytes: a daily working set plus a sawtooth (allocation
    /// until a periodic collection), with noise.
    MemoryBytes,
}

/// `points` points of `shape`, one every `interval_ms`, from `start_ms`.
pub fn series(
    shape: Shape,
    seed: u64,
    start_ms: i64,
    interval_ms: i64,
    points: usize,
) -> Vec<(i64, f64)> {
    let mut rng = Rng::new(seed);
    let mut out = Vec::with_capacity(points);
    let mut sandboxes = 20.0;
    for i in 0..points {
        let t = start_ms + i as i64 * interval_ms;
        let day = t.rem_euclid(DAY_MS) as f64 / DAY_MS as f64;
        let weekday = t.div_euclid(DAY_MS).rem_euclid(7);
        let weekend = if weekday >= 5 { 0.6 } else { 1.0 };
        let days = (t - start_ms) as f64 / DAY_MS as f64;
        // Busiest mid-afternoon, quietest before dawn.
        let cycle = 1.0 + 0.6 * (std::f64::consts::TAU * (day - 0.375)).sin();
        let rate = 200.0 * cycle * weekend * (1.0 + 0.005 * days);
        let v = match shape {
            Shape::RequestRate => rate * (1.0 + 0.08 * rng.normal()),
            Shape::LiveSandboxes => {
                let want = (rate / 8.0).max(5.0);
                sandboxes += 0.3 * (want - sandboxes) + rng.normal();
                sandboxes.max(5.0).round()
            }
            Shape::MemoryBytes => {
                let saw = (i % 37) as f64 / 37.0;
                let mib = 512.0 + 256.0 * cycle + 128.0 * saw + 8.0 * rng.normal();
                (mib * 1_048_576.0).round()
            }
        };
        out.push((t, v));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_series() {
        let a = series(Shape::RequestRate, 7, 0, 300_000, 500);
        let b = series(Shape::RequestRate, 7, 0, 300_000, 500);
        let c = series(Shape::RequestRate, 8, 0, 300_000, 500);
        assert_eq!(a, b);
        assert_ne!(a, c);
        let mut rng = Rng::new(1);
        let mean = (0..10_000).map(|_| rng.normal()).sum::<f64>() / 10_000.0;
        assert!(mean.abs() < 0.05);
    }
}
