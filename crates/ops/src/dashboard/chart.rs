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
    let mut svg = head("chart", title);
    let Some(&(_, last)) = shown.last() else {
        return no_data(svg);
    };
    now_label(&mut svg, last, unit);
    let top = nice_ceiling(shown.iter().map(|p| p.1).fold(0.0, f64::max));
    let plot_w = WIDTH - LEFT - RIGHT;
    let x = |t: u64| LEFT + (t - from) as f64 / span_ms.max(1) as f64 * plot_w;
    let y = y_scale(top);
    grid(&mut svg, top, &y);
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
    path(&mut svg, "line", &shown, &x, &y);
    svg.push_str("</svg>");
    svg
}

/// An SVG chart's opening tag and title.
fn head(class: &str, title: &str) -> String {
    format!(
        r#"<svg class="{class}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{t}"><text class="title" x="{LEFT}" y="14">{t}</text>"#,
        t = escape(title)
    )
}

/// Closes a chart that has no points, saying so.
fn no_data(mut svg: String) -> String {
    let _ = write!(
        svg,
        r#"<text class="empty" x="{x}" y="{y}" text-anchor="middle">no data yet</text></svg>"#,
        x = WIDTH / 2.0,
        y = HEIGHT / 2.0
    );
    svg
}

/// The latest value, top right.
fn now_label(svg: &mut String, last: f64, unit: &str) {
    let _ = write!(
        svg,
        r#"<text class="now" x="{x}" y="14" text-anchor="end">{} {}</text>"#,
        number(last),
        escape(unit),
        x = WIDTH - RIGHT
    );
}

/// Values to the plot's height, 0 at the bottom and `top` at the top.
fn y_scale(top: f64) -> impl Fn(f64) -> f64 {
    let plot_h = HEIGHT - TOP - BOTTOM;
    move |v: f64| TOP + plot_h - (v / top).clamp(0.0, 1.0) * plot_h
}

/// Three grid lines (0, half, `top`) with their labels.
fn grid(svg: &mut String, top: f64, y: &dyn Fn(f64) -> f64) {
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
}

/// A path of class `class` through `points`.
fn path(
    svg: &mut String,
    class: &str,
    points: &[Point],
    x: &dyn Fn(u64) -> f64,
    y: &dyn Fn(f64) -> f64,
) {
    let _ = write!(svg, r#"<path class="{class}" d=""#);
    for (i, (t, v)) in points.iter().enumerate() {
        let _ = write!(
            svg,
            "{}{:.1},{:.1}",
            if i == 0 { "M" } else { " L" },
            x(*t),
            y(*v)
        );
    }
    svg.push_str(r#""/>"#);
}

/// One forecast point for [`forecast`]: the time, the value and the band
/// it should fall in (`None` while the forecaster learns its errors).
pub type Ahead = (u64, f64, Option<(f64, f64)>);

/// A chart of a series' recent `points` (solid) and its forecast `ahead`
/// (dashed) with the forecast's band shaded, and the `limit` at which the
/// series fails as a horizontal line. The time axis runs from the first
/// recent point to the last forecast; "now" is the last recent point.
pub fn forecast(
    title: &str,
    unit: &str,
    points: &[Point],
    ahead: &[Ahead],
    limit: Option<f64>,
) -> String {
    let points: Vec<Point> = points
        .iter()
        .copied()
        .filter(|(_, v)| v.is_finite())
        .collect();
    let ahead: Vec<Ahead> = ahead
        .iter()
        .copied()
        .filter(|(_, v, _)| v.is_finite())
        .collect();
    let mut svg = head("chart forecast", title);
    let (Some(&(from, _)), Some(&(now, last))) = (points.first(), points.last()) else {
        return no_data(svg);
    };
    now_label(&mut svg, last, unit);
    let until = ahead.iter().map(|a| a.0).fold(now, u64::max);
    let highest = points
        .iter()
        .map(|p| p.1)
        .chain(ahead.iter().map(|a| a.2.map_or(a.1, |b| b.1.max(a.1))))
        .chain(limit.filter(|l| l.is_finite()))
        .fold(0.0, f64::max);
    let top = nice_ceiling(highest);
    let plot_w = WIDTH - LEFT - RIGHT;
    let span = until.saturating_sub(from).max(1) as f64;
    let x = |t: u64| LEFT + t.saturating_sub(from) as f64 / span * plot_w;
    let y = y_scale(top);
    grid(&mut svg, top, &y);
    let minutes = |ms: u64| format!("{} min", (ms + 30_000) / 60_000);
    let _ = write!(
        svg,
        r#"<text class="axis" x="{LEFT}" y="{b}">−{}</text><text class="axis" x="{xn:.1}" y="{b}" text-anchor="middle">now</text><text class="axis" x="{r}" y="{b}" text-anchor="end">+{}</text>"#,
        minutes(now - from),
        minutes(until - now),
        b = HEIGHT - 4.0,
        xn = x(now),
        r = WIDTH - RIGHT
    );
    // The band: along the forecast's upper edge, back along its lower one,
    // starting from the last point seen.
    let banded: Vec<(u64, f64, f64)> = ahead
        .iter()
        .filter_map(|&(t, _, b)| b.map(|(lo, hi)| (t, lo, hi)))
        .collect();
    if !banded.is_empty() {
        let _ = write!(
            svg,
            r#"<path class="band" d="M{:.1},{:.1}"#,
            x(now),
            y(last)
        );
        for (t, _, hi) in &banded {
            let _ = write!(svg, " L{:.1},{:.1}", x(*t), y(*hi));
        }
        for (t, lo, _) in banded.iter().rev() {
            let _ = write!(svg, " L{:.1},{:.1}", x(*t), y(*lo));
        }
        svg.push_str(r#" Z"/>"#);
    }
    if let Some(l) = limit.filter(|l| l.is_finite()) {
        let _ = write!(
            svg,
            r#"<line class="limit" x1="{LEFT}" x2="{x2}" y1="{yl:.1}" y2="{yl:.1}"/><text class="axis limit-label" x="{x2}" y="{yt:.1}" text-anchor="end">limit {}</text>"#,
            number(l),
            x2 = WIDTH - RIGHT,
            yl = y(l),
            yt = y(l) - 3.0,
        );
    }
    path(&mut svg, "line", &points, &x, &y);
    if !ahead.is_empty() {
        let dashed: Vec<Point> = std::iter::once((now, last))
            .chain(ahead.iter().map(|&(t, v, _)| (t, v)))
            .collect();
        path(&mut svg, "ahead", &dashed, &x, &y);
    }
    svg.push_str("</svg>");
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

    #[test]
    fn forecasts_draw_their_band_their_line_and_the_limit() {
        let svg = forecast(
            "a<b",
            "MiB",
            &[(0, 1.0), (60_000, 2.0)],
            &[(360_000, 3.0, Some((2.5, 3.5))), (960_000, 4.0, None)],
            Some(10.0),
        );
        assert!(svg.contains("a&lt;b"));
        // The band follows the one forecast that has one: out and back.
        let band = svg.split(r#"class="band" d=""#).nth(1).unwrap();
        assert_eq!(band.split('"').next().unwrap().matches(" L").count(), 2);
        assert!(svg.contains(r#"class="ahead""#) && svg.contains("limit 10.0"));
        // The axis reaches the limit (10), so the band sits low.
        assert!(svg.contains(">10.0<"));
        let none = forecast("x", "", &[], &[], None);
        assert!(none.contains("no data yet") && !none.contains("<path"));
    }
}
