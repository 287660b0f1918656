//! Category and overall scores, from verdicts only: pure.
//!
//! A score is the share of a category's criteria that pass, a warn
//! counting half, out of 100. Waived criteria count as failing in the
//! score (a waiver accepts a failure, it does not mend it) and are also
//! counted on their own.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::criterion::Category;
use crate::verdict::{Status, Verdict};

/// One category's counts and score.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CategoryScore {
    pub criteria: usize,
    pub pass: usize,
    pub warn: usize,
    pub fail: usize,
    pub waived: usize,
    /// 0 to 100; `null` for a category with no criterion.
    pub score: Option<f64>,
}

impl CategoryScore {
    fn add(&mut self, status: Status) {
        self.criteria += 1;
        match status {
            Status::Pass => self.pass += 1,
            Status::Warn => self.warn += 1,
            Status::Fail => self.fail += 1,
            Status::Waived => self.waived += 1,
        }
    }

    fn finish(&mut self) {
        self.score = (self.criteria > 0).then(|| {
            let points = self.pass as f64 + 0.5 * self.warn as f64;
            (1000.0 * points / self.criteria as f64).round() / 10.0
        });
    }
}

/// The report's scores.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Scores {
    pub overall: CategoryScore,
    pub categories: BTreeMap<Category, CategoryScore>,
}

impl Scores {
    /// Scores `verdicts`.
    pub fn of(verdicts: &[Verdict]) -> Scores {
        let mut overall = CategoryScore::default();
        let mut categories: BTreeMap<Category, CategoryScore> = BTreeMap::new();
        for v in verdicts {
            overall.add(v.status);
            categories.entry(v.category).or_default().add(v.status);
        }
        overall.finish();
        for c in categories.values_mut() {
            c.finish();
        }
        Scores {
            overall,
            categories,
        }
    }

    /// Whether nothing fails (waived criteria allowed).
    pub fn go(&self) -> bool {
        self.overall.fail == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(category: Category, status: Status) -> Verdict {
        Verdict {
            id: "x".into(),
            category,
            description: String::new(),
            threshold: String::new(),
            unit: String::new(),
            value: Some(1.0),
            status,
            detail: String::new(),
            remediation: String::new(),
            controls: vec![],
            waiver: None,
            samples: vec![],
        }
    }

    #[test]
    fn scores_count_passes_and_half_warns_and_never_waivers() {
        let s = Scores::of(&[
            verdict(Category::Security, Status::Pass),
            verdict(Category::Security, Status::Warn),
            verdict(Category::Security, Status::Waived),
            verdict(Category::Security, Status::Fail),
            verdict(Category::Performance, Status::Pass),
        ]);
        let sec = &s.categories[&Category::Security];
        assert_eq!((sec.pass, sec.warn, sec.waived, sec.fail), (1, 1, 1, 1));
        assert_eq!(sec.score, Some(37.5));
        assert_eq!(s.categories[&Category::Performance].score, Some(100.0));
        assert_eq!(s.overall.score, Some(50.0));
        assert!(!s.go());
        assert!(!s.categories.contains_key(&Category::Compliance));
        assert_eq!(Scores::of(&[]).overall.score, None);
    }
}
