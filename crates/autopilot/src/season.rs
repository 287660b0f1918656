//! Time of day and of week, from timestamps: how often a series is
//! sampled ([`Cadence`]) and, per slot of a period, what the last few
//! periods showed ([`SlotHistory`]). Slots come from the timestamp, not
//! from counting points, so irregular sampling (NAB's traffic series)
//! and gaps keep their phase.

use crate::time::DAY_MS;

/// A week in milliseconds.
pub const WEEK_MS: i64 = 7 * DAY_MS;

/// How many gaps between points the sampling interval is estimated from.
pub const CADENCE_GAPS: usize = 32;

/// The sampling interval of a series: the median of its first
/// [`CADENCE_GAPS`] positive gaps, fixed from then on.
#[derive(Clone, Debug, Default)]
pub struct Cadence {
    last_ms: Option<i64>,
    gaps_ms: Vec<i64>,
    interval_ms: Option<i64>,
}

impl Cadence {
    /// Notes a point's time; returns the interval once it is known.
    pub fn observe(&mut self, t_ms: i64) -> Option<i64> {
        if self.interval_ms.is_none() {
            if let Some(last) = self.last_ms
                && t_ms > last
            {
                self.gaps_ms.push(t_ms - last);
            }
            if self.gaps_ms.len() >= CADENCE_GAPS {
                self.gaps_ms.sort_unstable();
                self.interval_ms = Some(self.gaps_ms[self.gaps_ms.len() / 2]);
                self.gaps_ms = Vec::new();
            }
        }
        self.last_ms = Some(t_ms);
        self.interval_ms
    }

    pub fn interval_ms(&self) -> Option<i64> {
        self.interval_ms
    }
}

/// Per slot of a period (a day, a week), the last `depth` values seen in
/// that slot.
#[derive(Clone, Debug)]
pub struct SlotHistory {
    period_ms: i64,
    slot_ms: i64,
    slots: usize,
    depth: usize,
    /// `slots * depth` values, slot-major; `count[s]` of slot `s` are set.
    values: Vec<f64>,
    count: Vec<u16>,
    next: Vec<u16>,
}

/// At most this many values per slot.
pub const MAX_DEPTH: usize = 16;

/// At most this many slots per period (a week at 5-minute steps), so that
/// fast-sampled series keep a bounded history.
pub const MAX_SLOTS: usize = 2016;

impl SlotHistory {
    /// Slots as wide as the sampling interval (or wider, to keep at most
    /// [`MAX_SLOTS`]), `depth` values each (at most [`MAX_DEPTH`]). `None` when the period holds
    /// fewer than 4 samples: there is no shape to learn.
    pub fn new(period_ms: i64, interval_ms: i64, depth: usize) -> Option<SlotHistory> {
        let interval_ms = interval_ms.max(1);
        if period_ms / interval_ms < 4 {
            return None;
        }
        let slot_ms = interval_ms.max((period_ms + MAX_SLOTS as i64 - 1) / MAX_SLOTS as i64);
        // period / slot <= MAX_SLOTS, so the cast cannot truncate.
        let slots = ((period_ms + slot_ms - 1) / slot_ms) as usize;
        let depth = depth.clamp(1, MAX_DEPTH);
        Some(SlotHistory {
            period_ms,
            slot_ms,
            slots,
            depth,
            values: vec![0.0; slots * depth],
            count: vec![0; slots],
            next: vec![0; slots],
        })
    }

    fn slot(&self, t_ms: i64) -> usize {
        // rem_euclid is in [0, period); the quotient is below `slots`.
        ((t_ms.rem_euclid(self.period_ms) / self.slot_ms) as usize).min(self.slots - 1)
    }

    /// The median of what the slot of `t_ms` held in earlier periods;
    /// `None` until it holds `min_count` values.
    pub fn expected(&self, t_ms: i64, min_count: usize) -> Option<f64> {
        let s = self.slot(t_ms);
        let n = usize::from(self.count[s]);
        if n < min_count.max(1) {
            return None;
        }
        let mut v = [0.0; MAX_DEPTH];
        v[..n].copy_from_slice(&self.values[s * self.depth..s * self.depth + n]);
        v[..n].sort_by(f64::total_cmp);
        Some(crate::stats::quantile_sorted(&v[..n], 0.5))
    }

    /// Records `x` in the slot of `t_ms`, replacing its oldest value when full.
    pub fn push(&mut self, t_ms: i64, x: f64) {
        let s = self.slot(t_ms);
        let at = usize::from(self.next[s]);
        self.values[s * self.depth + at] = x;
        // depth <= MAX_DEPTH, so both stay within u16.
        self.next[s] = ((at + 1) % self.depth) as u16;
        self.count[s] = (usize::from(self.count[s]) + 1).min(self.depth) as u16;
    }

    /// Heap bytes held.
    pub fn memory_bytes(&self) -> usize {
        self.values.capacity() * size_of::<f64>()
            + (self.count.capacity() + self.next.capacity()) * 2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cadence_is_the_median_gap() {
        let mut c = Cadence::default();
        let mut t = 0;
        let mut got = None;
        for i in 0..=CADENCE_GAPS {
            t += if i % 5 == 0 { 600_000 } else { 300_000 };
            got = c.observe(t);
        }
        assert_eq!(got, Some(300_000));
    }

    #[test]
    fn slots_follow_the_time_of_day() {
        let mut h = SlotHistory::new(DAY_MS, 3_600_000, 3).unwrap();
        for day in 0..5 {
            for hour in 0..24 {
                h.push(day * DAY_MS + hour * 3_600_000, (hour + day) as f64);
            }
        }
        // Hour 7 held 9, 10, 11 (days 2..4): median 10.
        assert_eq!(
            h.expected(9 * DAY_MS + 7 * 3_600_000 + 60_000, 3),
            Some(10.0)
        );
        assert!(SlotHistory::new(DAY_MS, DAY_MS / 2, 3).is_none());
    }
}
