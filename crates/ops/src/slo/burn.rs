//! Burn rates and the alert rules of the Google SRE workbook (chapter
//! "Alerting on SLOs", the table of recommended parameters for multiwindow,
//! multi-burn-rate alerts), and the error budget left.
//!
//! A burn rate is how fast the error budget is spent: 1 spends exactly the
//! budget over the SLO period, 14.4 spends 2 % of a 30-day budget in an
//! hour. Each rule needs both its long window (is the budget really being
//! spent?) and its short window (is it still being spent now?) above the
//! factor, so an alert fires soon after a burst starts and stops soon after
//! it ends.

use serde::Serialize;

use super::objective::SloKind;
use super::series::Series;

const MINUTE_MS: u64 = 60 * 1000;
const HOUR_MS: u64 = 60 * MINUTE_MS;
const DAY_MS: u64 = 24 * HOUR_MS;

/// Who an alert is for (`state`'s: incidents carry it).
pub use state::Severity;

/// One multiwindow rule: fires when the burn rate over both windows is above
/// `factor`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rule {
    pub name: &'static str,
    pub severity: Severity,
    pub long_ms: u64,
    pub short_ms: u64,
    pub factor: f64,
}

/// The workbook's recommended rules: 2 % of a 30-day budget spent in an hour
/// or 5 % in six hours pages; 10 % in three days opens a ticket.
pub const RULES: [Rule; 3] = [
    Rule {
        name: "slo-burn-1h",
        severity: Severity::Page,
        long_ms: HOUR_MS,
        short_ms: 5 * MINUTE_MS,
        factor: 14.4,
    },
    Rule {
        name: "slo-burn-6h",
        severity: Severity::Page,
        long_ms: 6 * HOUR_MS,
        short_ms: 30 * MINUTE_MS,
        factor: 6.0,
    },
    Rule {
        name: "slo-burn-3d",
        severity: Severity::Ticket,
        long_ms: 3 * DAY_MS,
        short_ms: 6 * HOUR_MS,
        factor: 1.0,
    },
];

/// A rule that fires now, with the burn rates that made it fire.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Firing {
    pub rule: &'static str,
    pub severity: Severity,
    pub kind: SloKind,
    pub long_burn: f64,
    pub short_burn: f64,
}

/// How many times the allowed rate bad events arrive at; `target` is the
/// objective, in (0, 1) (checked by [`super::Slo::check`]).
pub fn burn_rate(ratio_bad: f64, target: f64) -> f64 {
    ratio_bad / (1.0 - target)
}

/// Whether a burn rate is above a rule's factor. Strictly above, as in the
/// workbook's expressions (`> 14.4 * 0.001`): errors at exactly the
/// budgeted rate meet the objective and alert nobody. The relative margin
/// keeps a burn equal to the factor but for float rounding (0.001 / (1 -
/// 0.999) is not exactly 1) on the quiet side.
fn above(burn: f64, factor: f64) -> bool {
    burn > factor * (1.0 + 1e-9)
}

/// The rules that fire at `now_ms` for one objective of kind `kind` and
/// target `target`, measured by `series`. A window without events burns
/// nothing.
pub fn evaluate(kind: SloKind, target: f64, series: &Series, now_ms: u64) -> Vec<Firing> {
    let burn = |window_ms| burn_rate(series.ratio_bad(window_ms, now_ms).unwrap_or(0.0), target);
    RULES
        .iter()
        .filter_map(|rule| {
            let (long_burn, short_burn) = (burn(rule.long_ms), burn(rule.short_ms));
            (above(long_burn, rule.factor) && above(short_burn, rule.factor)).then_some(Firing {
                rule: rule.name,
                severity: rule.severity,
                kind,
                long_burn,
                short_burn,
            })
        })
        .collect()
}

/// The share of the period's error budget left at `now_ms`: 1 when nothing
/// was spent, 0 when exactly the budget was, negative when the objective
/// is missed. Over a full period this is 1 less the burn rate. While the
/// history is shorter than the period (a new SLO), the budget of the whole
/// period is projected from the traffic seen so far, so what was spent
/// counts for the part of the period that has elapsed: a day at exactly
/// the allowed error rate spends 1/30 of a 30-day budget, and 15 s of
/// errors a sliver of it (not 1000 budgets, as 1 less the burn rate of
/// those 15 s would say).
pub fn budget_remaining(target: f64, series: &Series, period_ms: u64, now_ms: u64) -> f64 {
    match series.ratio_bad(period_ms, now_ms) {
        Some(ratio) if period_ms > 0 => {
            let elapsed = series.history_ms(now_ms).min(period_ms);
            1.0 - burn_rate(ratio, target) * elapsed as f64 / period_ms as f64
        }
        _ => 1.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STEP_MS: u64 = 10_000;
    /// Requests per reading step.
    const PER_STEP: u64 = 10_000;

    /// A series fed every 10 s by an injected clock, with the share of bad
    /// requests the scenario wants at each step.
    struct Scenario {
        series: Series,
        now_ms: u64,
        good: u64,
        valid: u64,
    }

    impl Scenario {
        fn new() -> Self {
            let mut series = Series::new();
            series.observe(0, 0, 0);
            Scenario {
                series,
                now_ms: 0,
                good: 0,
                valid: 0,
            }
        }

        /// Advances the clock by one step with `bad_per_10k` bad requests
        /// in 10,000.
        fn step(&mut self, bad_per_10k: u64) {
            self.now_ms += STEP_MS;
            self.valid += PER_STEP;
            self.good += PER_STEP - bad_per_10k;
            self.series.observe(self.now_ms, self.good, self.valid);
        }

        fn fire(&self, target: f64) -> Vec<&'static str> {
            evaluate(SloKind::Availability, target, &self.series, self.now_ms)
                .into_iter()
                .map(|f| f.rule)
                .collect()
        }
    }

    #[test]
    fn burn_rate_is_the_bad_ratio_over_the_allowed_ratio() {
        assert!((burn_rate(0.01, 0.99) - 1.0).abs() < 1e-9);
        assert!((burn_rate(0.2, 0.999) - 200.0).abs() < 1e-6);
        assert_eq!(burn_rate(0.0, 0.999), 0.0);
    }

    #[test]
    fn errors_at_exactly_the_budgeted_rate_fire_nothing() {
        let mut s = Scenario::new();
        // Four days of 0.1 % errors against 99.9 %, evaluated every minute.
        for i in 0..(4 * DAY_MS / STEP_MS) {
            s.step(10);
            if i % 6 == 0 {
                assert_eq!(s.fire(0.999), Vec::<&str>::new(), "at {} ms", s.now_ms);
            }
        }
    }

    #[test]
    fn a_burst_pages_fast_then_slow_then_tickets_and_stops_after_it_ends() {
        let mut s = Scenario::new();
        // Three days of 0.05 % errors (half the budget) fire nothing.
        for i in 0..(3 * DAY_MS / STEP_MS) {
            s.step(5);
            if i % 60 == 0 {
                assert!(s.fire(0.999).is_empty());
            }
        }
        // Then 20 % errors (burn 200). The 1 h rule needs 14.4 × 60 min of
        // budget: (0.5 × 60 + 199.5 m) / 60 > 14.4 after m ≈ 4.2 min; the
        // 6 h rule after ≈ 9.9 min; the ticket, whose 3-day window holds
        // half a budget already, after ≈ 10.8 min.
        let mut first = std::collections::BTreeMap::new();
        for step in 1..=(15 * 6) {
            s.step(2_000);
            for rule in s.fire(0.999) {
                first.entry(rule).or_insert(step);
            }
            if step == 5 * 6 {
                // Five minutes in: only the fast page.
                assert_eq!(s.fire(0.999), vec!["slo-burn-1h"]);
                let f = &evaluate(SloKind::Availability, 0.999, &s.series, s.now_ms)[0];
                assert_eq!(f.severity, Severity::Page);
                assert!((f.short_burn - 200.0).abs() < 1e-6, "{}", f.short_burn);
                assert!(f.long_burn > 14.4 && f.long_burn < 20.0, "{}", f.long_burn);
            }
        }
        assert_eq!(first["slo-burn-1h"], 26, "4 min 20 s"); // ≈ 4.2 min
        assert_eq!(first["slo-burn-6h"], 60, "10 min"); // ≈ 9.9 min
        assert_eq!(first["slo-burn-3d"], 65, "10 min 50 s"); // ≈ 10.8 min
        // The burst ends: the 5-minute window clears the fast page within
        // minutes, though the hour still remembers the burst.
        let mut cleared = None;
        for step in 1..=(10 * 6) {
            s.step(5);
            if cleared.is_none() && !s.fire(0.999).contains(&"slo-burn-1h") {
                cleared = Some(step);
            }
        }
        let cleared = cleared.expect("the fast page clears");
        assert!(cleared <= 6 * 6, "cleared after {cleared} steps");
        assert!(burn_rate(s.series.ratio_bad(HOUR_MS, s.now_ms).unwrap(), 0.999) > 14.4);
    }

    #[test]
    fn a_window_without_events_burns_nothing() {
        let s = Scenario::new();
        assert!(s.fire(0.999).is_empty());
        assert_eq!(budget_remaining(0.999, &s.series, 30 * DAY_MS, 0), 1.0);
    }

    #[test]
    fn budget_remaining_on_a_hand_checked_example() {
        // 99 % over a 2-hour period: 10,000 requests allow 100 bad ones.
        let mut series = Series::new();
        series.observe(0, 0, 0);
        series.observe(HOUR_MS, 9_975, 10_000); // 25 bad in half the period
        // At this traffic the period holds 20,000 requests, 200 bad allowed:
        // 25 spent one eighth.
        let left = budget_remaining(0.99, &series, 2 * HOUR_MS, HOUR_MS);
        assert!((left - 0.875).abs() < 1e-9, "{left}");
        series.observe(2 * HOUR_MS, 19_725, 20_000); // 250 more: 275 of 200
        let left = budget_remaining(0.99, &series, 2 * HOUR_MS, 2 * HOUR_MS);
        assert!((left - (1.0 - 275.0 / 200.0)).abs() < 1e-9, "{left}");
        assert!(left < 0.0);
        // Over the last hour only (a full period): 250 bad in 10,000 is 2.5 budgets.
        let left = budget_remaining(0.99, &series, HOUR_MS, 2 * HOUR_MS);
        assert!((left - -1.5).abs() < 1e-9, "{left}");
    }

    #[test]
    fn a_new_slo_spends_its_budget_for_the_time_elapsed() {
        // 15 s of nothing but errors on a 99.9 % objective over 30 days:
        // the burn rate is 1000, but 15 s are 1/172,800 of the period.
        let mut series = Series::new();
        series.observe(0, 0, 0);
        series.observe(15_000, 0, 1_500);
        let left = budget_remaining(0.999, &series, 30 * DAY_MS, 15_000);
        let spent = 1000.0 * 15_000.0 / (30.0 * DAY_MS as f64);
        assert!((left - (1.0 - spent)).abs() < 1e-9, "{left}");
        assert!(left > 0.99, "{left}");
        // A day at exactly the allowed rate spends a thirtieth.
        let mut series = Series::new();
        series.observe(0, 0, 0);
        series.observe(DAY_MS, 999_000, 1_000_000);
        let left = budget_remaining(0.999, &series, 30 * DAY_MS, DAY_MS);
        assert!((left - (1.0 - 1.0 / 30.0)).abs() < 1e-6, "{left}");
    }
}
