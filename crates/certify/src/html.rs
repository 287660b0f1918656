//! The report as one self-contained HTML page: inline CSS and SVG, no
//! script, no external asset (it opens from a disk or an email). Every
//! text from the report is escaped.

use std::fmt::Write as _;

use crate::criterion::{Category, number};
use crate::report::Report;
use crate::verdict::{Status, Verdict};

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn colour(status: Status) -> &'static str {
    match status {
        Status::Pass => "#2e7d32",
        Status::Warn => "#b26a00",
        Status::Fail => "#c62828",
        Status::Waived => "#6a1b9a",
    }
}

/// The sorted samples' distribution as an SVG polyline (value by
/// percentile), 240 x 48.
fn distribution(v: &Verdict) -> String {
    if v.samples.len() < 2 {
        return String::new();
    }
    let mut s: Vec<f64> = v
        .samples
        .iter()
        .copied()
        .filter(|x| x.is_finite())
        .collect();
    s.sort_by(f64::total_cmp);
    let max = s.last().copied().unwrap_or(0.0).max(f64::MIN_POSITIVE);
    let n = s.len() - 1;
    let mut points = String::new();
    for (i, x) in s.iter().enumerate() {
        let _ = write!(
            points,
            "{:.1},{:.1} ",
            240.0 * i as f64 / n as f64,
            46.0 - 44.0 * x / max
        );
    }
    format!(
        "<svg width=\"240\" height=\"48\" role=\"img\" aria-label=\"distribution of {n1} samples, max {max} {unit}\"><polyline fill=\"none\" stroke=\"#1565c0\" stroke-width=\"1.5\" points=\"{points}\"/><text x=\"2\" y=\"10\" font-size=\"9\">max {max} {unit}</text></svg>",
        n1 = s.len(),
        max = escape(&number(max)),
        unit = escape(&v.unit),
    )
}

/// A bar per category score, 0 to 100.
fn score_bars(report: &Report) -> String {
    let mut svg = String::from(
        "<svg width=\"420\" height=\"150\" role=\"img\" aria-label=\"category scores\">",
    );
    for (i, category) in Category::ALL.iter().enumerate() {
        let y = 6 + i * 24;
        let score = report.scores.categories.get(category).and_then(|c| c.score);
        let width = score.unwrap_or(0.0) * 2.6;
        let _ = write!(
            svg,
            "<text x=\"0\" y=\"{}\" font-size=\"12\">{}</text><rect x=\"100\" y=\"{y}\" width=\"{width:.1}\" height=\"16\" fill=\"#1565c0\"/><text x=\"{:.1}\" y=\"{}\" font-size=\"12\">{}</text>",
            y + 13,
            category.as_str(),
            105.0 + width,
            y + 13,
            score.map_or_else(|| "none".into(), number),
        );
    }
    svg.push_str("</svg>");
    svg
}

/// The page.
pub fn render(report: &Report) -> String {
    let mut h = String::new();
    let overall = &report.scores.overall;
    let _ = write!(
        h,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>DWCP certification {sha}</title><style>body{{font-family:system-ui,sans-serif;margin:2em;color:#222}}table{{border-collapse:collapse;width:100%}}td,th{{border-bottom:1px solid #ddd;padding:4px 6px;text-align:left;vertical-align:top;font-size:13px}}.s{{font-weight:bold;color:#fff;padding:1px 6px;border-radius:3px}}code{{font-size:12px}}</style></head><body><h1>DWCP certification</h1><p>Target: {target}{quick} · dwcp {version} · started {started} ms after the epoch, took {took} s</p><p>Report sha256 (what approvers sign): <code>{sha}</code></p><p><b>Overall score {score}</b>: {pass} pass, {warn} warn, {fail} fail, {waived} waived of {total} criteria. {go}</p><p>The controls named are evidence for an auditor, not a certification.</p>{bars}<table><thead><tr><th>id</th><th>status</th><th>value</th><th>threshold</th><th>description and measurement</th><th>controls</th><th>distribution</th></tr></thead><tbody>",
        sha = escape(&report.sha256),
        target = escape(&report.target),
        quick = if report.quick { " (--quick)" } else { "" },
        version = escape(&report.dwcp_version),
        started = report.started_unix_ms,
        took = number(report.duration_ms as f64 / 1000.0),
        score = overall.score.map_or_else(|| "none".into(), number),
        pass = overall.pass,
        warn = overall.warn,
        fail = overall.fail,
        waived = overall.waived,
        total = overall.criteria,
        go = if report.scores.go() {
            "Nothing fails."
        } else {
            "Some criteria fail: see their remediation."
        },
        bars = score_bars(report),
    );
    for v in &report.criteria {
        let waiver = v.waiver.as_ref().map_or_else(String::new, |w| {
            format!(
                "<br><i>waived by {} until {} ms: {}</i>",
                escape(&w.by),
                w.expires_unix_ms,
                escape(&w.reason)
            )
        });
        let remedy = if matches!(v.status, Status::Pass) {
            String::new()
        } else {
            format!("<br><b>Remediation:</b> {}", escape(&v.remediation))
        };
        let _ = write!(
            h,
            "<tr id=\"{id}\"><td><code>{id}</code></td><td><span class=\"s\" style=\"background:{c}\">{status}</span></td><td>{value}</td><td>{threshold}</td><td>{desc}<br><small>{detail}</small>{remedy}{waiver}</td><td><small>{controls}</small></td><td>{plot}</td></tr>",
            id = escape(&v.id),
            c = colour(v.status),
            status = v.status.as_str(),
            value = v.value.map_or_else(
                || "unmeasured".into(),
                |x| format!("{} {}", number(x), escape(&v.unit))
            ),
            threshold = escape(&v.threshold),
            desc = escape(&v.description),
            detail = escape(&v.detail),
            controls = escape(&v.controls.join(", ")),
            plot = distribution(v),
        );
    }
    h.push_str("</tbody></table></body></html>\n");
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::criterion::{Criterion, Measurement, Threshold};

    #[test]
    fn the_page_is_self_contained_and_escapes_what_it_shows() {
        let measured = vec![(
            Criterion {
                id: "performance.commit.p99".into(),
                category: Category::Performance,
                description: "commit <p99>".into(),
                threshold: Threshold::at_most(50.0, "ms"),
                remediation: "faster disks".into(),
                controls: vec!["SOC2 A1.1".into()],
            },
            Measurement::with_samples(80.0, vec![1.0, 2.0, 80.0], "<script>x</script>"),
        )];
        let r = Report::new("http://a", false, 1, 2000, "0.1.0", &measured, &[]);
        let page = render(&r);
        assert!(page.contains(&r.sha256));
        assert!(page.contains("&lt;script&gt;") && !page.contains("<script>"));
        assert!(page.contains("<svg") && page.contains("<polyline"));
        assert!(page.contains("Remediation:</b> faster disks"));
        for external in ["http://", "https://", "src=", "href="] {
            let n = page.matches(external).count();
            let from_target = usize::from(external == "http://");
            assert_eq!(n, from_target, "{external} in the page");
        }
    }
}
