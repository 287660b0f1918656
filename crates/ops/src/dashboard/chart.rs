//! Line charts drawn as SVG on the server, so the dashboard needs no
//! charting script and shows the same picture to every browser.

use std::fmt::Write;

use super::history::Point;
use super::html::escape;

const WIDTH: f64 = 460.0;
const HEIGHT: f64 = 150.0;
/// Room for the axis labels (left) and the title (top).
const LEFT: f64 = 46.0;
const TOP: f64 = 22.0;
const BOTTOM: f64 = 18.0;
const RIGHT: f64 = 8.0;

/// A chart of `points` over the `span_ms` before `now_ms`, titled `title`,
/// values in `unit`. Points outside the span are left out; a chart with no
/// points says so instead of drawing an empty axis.
pub fn line(title: &str, unit: &str, points: &[Point], now_ms: u64, span_ms: u64) -> String {
    let from = now_ms.saturating_sub(span_ms);
    let shown: Vec<Point> = points
        .iter()
        .copied()
        .filter(|(t, v)| *t >= from && *t <= now_ms && v.is_finite())
        .collect();
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{title}">"#,
        title = escape(title)
    );
    let _ = write!(
        svg,
        r#"<text class="title" x="{LEFT}" y="14">{}</text>"#,
        escape(title)
    );
    let Some(&(_, last)) = shown.last() else {
        let _ = write!(
            svg,
            r#"<text class="empty" x="{x}" y="{y}" text-anchor="middle">no data yet</text></svg>"#,
            x = WIDTH / 2.0,
            y = HEIGHT / 2.0
        );
        return svg;
    };
    let _ = write!(
        svg,
        r#"<text class="now" x="{x}" y="14" text-anchor="end">{} {}</text>"#,
        number(last),
        escape(unit),
        x = WIDTH - RIGHT
    );
    let top = nice_ceiling(shown.iter().map(|p| p.1).fold(0.0, f64::max));
    let (plot_w, plot_h) = (WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM);
    let x = |t: u64| LEFT + (t - from) as f64 / span_ms.max(1) as f64 * plot_w;
    let y = |v: f64| TOP + plot_h - (v / top).clamp(0.0, 1.0) * plot_h;
    for k in 0..=2 {
        let value = top * f64::from(k) / 2.0;
        let _ = write!(
            svg,
            r#"<line class="grid" x1="{LEFT}" x2="{x2}" y1="{y0:.1}" y2="{y0:.1}"/><text class="axis" x="{lx}" y="{ly:.1}" text-anchor="end">{}</text>"#,
            number(value),
            x2 = WIDTH - RIGHT,
            y0 = y(value),
            lx = LEFT - 4.0,
            ly = y(value) + 4.0,
        );
    }
    let _ = write!(
        svg,
        r#"<text class="axis" x="{LEFT}" y="{b}">−{ago}</text><text class="axis" x="{r}" y="{b}" text-anchor="end">now</text>"#,
        ago = if span_ms >= 120_000 {
            format!("{} min", span_ms / 60_000)
        } else {
            format!("{} s", span_ms / 1000)
        },
        b = HEIGHT - 4.0,
        r = WIDTH - RIGHT
    );
    svg.push_str(r#"<path class="line" d=""#);
    for (i, (t, v)) in shown.iter().enumerate() {
        let _ = write!(
            svg,
            "{}{:.1},{:.1}",
            if i == 0 { "M" } else { " L" },
            x(*t),
            y(*v)
        );
    }
    svg.push_str(r#""/></svg>"#);
    svg
}

/// The smallest of 1, 2 or 5 times a power of ten at or above `max`
/// (1 for 0), so that the axis reads in round numbers.
fn nice_ceiling(max: f64) -> f64 {
    if max <= 0.0 || !max.is_finite() {
        return 1.0;
    }
    let power = 10f64.powf(max.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|c| *c >= max)
        .unwrap_or(10.0 * power)
}

/// A value for a label: no more digits than a reader needs.
pub fn number(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_tops_are_round() {
        assert_eq!(nice_ceiling(0.0), 1.0);
        assert_eq!(nice_ceiling(3.2), 5.0);
        assert_eq!(nice_ceiling(17.0), 20.0);
        assert_eq!(nice_ceiling(100.0), 100.0);
        assert_eq!(nice_ceiling(0.03), 0.05);
    }

    #[test]
    fn draws_what_is_in_the_span_and_escapes_titles() {
        let svg = line(
            "a<b",
            "ms",
            &[(0, 1.0), (50_000, 2.0), (60_000, 4.0)],
            60_000,
            30_000,
        );
        assert!(svg.contains("a&lt;b") && !svg.contains("a<b"));
        // Only the last two points are within 30 s of now.
        assert_eq!(svg.matches(" L").count(), 1);
        assert!(svg.contains(">4.00 ms<"));
        let empty = line("x", "ms", &[], 60_000, 30_000);
        assert!(empty.contains("no data yet") && !empty.contains("<path"));
    }
}
