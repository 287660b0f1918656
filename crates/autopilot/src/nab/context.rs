//! What NAB's protocol hands a detector before the first point of a
//! series, apart from the points themselves: the minimum and maximum of
//! the whole file (`inputMin`, `inputMax`) and its length (NAB's runner
//! sizes the probationary period from it). Both are look-ahead. Numenta
//! HTM and ARTime use them; the autopilot's detectors use the range only,
//! and only when a NAB runner builds them with [`NabContext::known_range`]
//! — a live stream has no context, and `Ensemble::new` runs without it.

use super::input::Series;
use crate::detect::KnownRange;

/// The context NAB's runner gives a detector for one series.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NabContext {
    /// The smallest value in the whole series.
    pub input_min: f64,
    /// The largest value in the whole series.
    pub input_max: f64,
    /// How many points the series has.
    pub points: usize,
}

impl NabContext {
    /// The context of `series`, as NAB's runner computes it; `None` for an
    /// empty series or one with a value that is not finite.
    pub fn of(series: &Series) -> Option<NabContext> {
        let mut values = series.values.iter().copied();
        let first = values.next()?;
        let (mut min, mut max) = (first, first);
        for v in values {
            min = min.min(v);
            max = max.max(v);
        }
        (min.is_finite() && max.is_finite()).then_some(NabContext {
            input_min: min,
            input_max: max,
            points: series.values.len(),
        })
    }

    /// The range for `Ensemble::with_known_range`.
    pub fn known_range(&self) -> KnownRange {
        KnownRange {
            min: self.input_min,
            max: self.input_max,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_context_spans_the_whole_series() {
        let series = Series {
            timestamps_ms: vec![0, 1, 2],
            values: vec![3.0, -1.0, 2.0],
        };
        let c = NabContext::of(&series).unwrap();
        assert_eq!((c.input_min, c.input_max, c.points), (-1.0, 3.0, 3));
        assert_eq!(
            c.known_range(),
            KnownRange {
                min: -1.0,
                max: 3.0
            }
        );
        assert_eq!(NabContext::of(&Series::default()), None);
    }
}
