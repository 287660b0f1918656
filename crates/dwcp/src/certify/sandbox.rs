//! Sandbox starts through the gateway's path, as the nodes measure them:
//! two apps of this run serve `examples/wagi/hello.wat`, one cold (a fresh
//! sandbox per request) and one warm (its pool of kept-alive instances);
//! the probe sends each sequential requests at the gateway and reads what
//! those requests added to the nodes' own histograms on `/metrics` —
//! `dwcp_sandbox_start_seconds` (cold starts) and the warm app's
//! `dwcp_request_duration_seconds` (arrival to answer).

use std::time::Duration;

use anyhow::Result;
use certify::Measurement;
use hyper::Method;
use serde_json::json;

use super::exposition::{self, Buckets};
use super::http::{self, Conn};
use super::probes::{self, Found, Target};

/// `family` summed over every member's `/metrics`.
async fn scrape(t: &Target, family: &str, with: &[&str]) -> Result<Buckets> {
    let mut all = Buckets::default();
    for api in &t.apis {
        let a = http::once(*api, &Method::GET, "/metrics", Some(&t.admin), None).await?;
        anyhow::ensure!(
            a.status == 200,
            "GET /metrics at {api} answered {}",
            a.status
        );
        let b = exposition::buckets(&String::from_utf8_lossy(&a.body), family, with);
        for (le, c) in b.0 {
            match all.0.iter_mut().find(|(x, _)| *x == le) {
                Some((_, n)) => *n += c,
                None => all.0.push((le, c)),
            }
        }
    }
    all.0.sort_by(|a, b| a.0.total_cmp(&b.0));
    Ok(all)
}

/// Cold and warm starts: `performance.sandbox.*`.
pub async fn starts(t: &Target, region: &str, found: &mut Found) -> Result<()> {
    const IDS: [&str; 3] = [
        "performance.sandbox.cold_start_p50",
        "performance.sandbox.cold_start_p99",
        "performance.sandbox.warm_p99",
    ];
    let Some(gw) = t.gateway else {
        for id in IDS {
            found.insert(id, Measurement::unmeasured("no gateway address listed"));
        }
        return Ok(());
    };
    crate::cli::progress::line("[certify] sandbox starts: a cold app and a warm app");
    let (cold, warm) = (
        format!("certify-{}-cold", t.run),
        format!("certify-{}-warm", t.run),
    );
    let measured = async {
        probes::deploy(t, &cold, probes::HELLO_WAT, region, json!({"warm": false})).await?;
        probes::deploy(t, &warm, probes::HELLO_WAT, region, json!({"warm": true})).await?;
        for app in [&cold, &warm] {
            probes::wait_gateway(
                gw,
                &format!("/{app}"),
                None,
                |s, b| s == 200 && b.starts_with(b"Hello"),
                Duration::from_secs(120),
            )
            .await?;
        }
        let n = if t.quick { 100 } else { 500 };
        let mut conn = Conn::open(gw).await?;
        let before = scrape(t, "dwcp_sandbox_start_seconds", &[]).await?;
        requests(&mut conn, &format!("/{cold}"), n).await?;
        let starts = scrape(t, "dwcp_sandbox_start_seconds", &[])
            .await?
            .since(&before);
        let label = format!("app=\"{warm}\"");
        let before = scrape(t, "dwcp_request_duration_seconds", &[&label]).await?;
        requests(&mut conn, &format!("/{warm}"), n).await?;
        let warm_answers = scrape(t, "dwcp_request_duration_seconds", &[&label])
            .await?
            .since(&before);
        anyhow::Ok(measure(n, &starts, &warm_answers))
    }
    .await;
    probes::delete_app(t, &cold).await;
    probes::delete_app(t, &warm).await;
    match measured {
        Ok(m) => found.extend(m),
        Err(e) => {
            for id in IDS {
                found.insert(id, Measurement::unmeasured(format!("{e:#}")));
            }
        }
    }
    Ok(())
}

/// `n` sequential GETs of `path`, each answered 200.
async fn requests(conn: &mut Conn, path: &str, n: u32) -> Result<()> {
    for _ in 0..n {
        let a = conn.send(&Method::GET, path, None, None).await?;
        anyhow::ensure!(a.status == 200, "GET {path} answered {}", a.status);
    }
    Ok(())
}

/// The three criteria from what `n` requests to each app added to the
/// nodes' histograms (pure).
fn measure(n: u32, starts: &Buckets, warm_answers: &Buckets) -> Vec<(&'static str, Measurement)> {
    let cold = |q: f64| match starts.quantile(q) {
        Some(s) if starts.count() > 0.0 => Measurement::of(
            s * 1e6,
            format!(
                "dwcp_sandbox_start_seconds on the nodes' /metrics: {:.0} fresh sandbox starts during {n} sequential requests to a cold app at the gateway (interpolated within the node's buckets)",
                starts.count()
            ),
        ),
        _ => Measurement::unmeasured(format!(
            "{n} requests to a cold app started no fresh sandbox in dwcp_sandbox_start_seconds"
        )),
    };
    let warm = match warm_answers.quantile(0.99) {
        Some(s) => Measurement::of(
            s * 1e3,
            format!(
                "the warm app's dwcp_request_duration_seconds on the nodes' /metrics (arrival to answer, served from its pool of kept-alive sandboxes): {:.0} requests, interpolated within the node's buckets",
                warm_answers.count()
            ),
        ),
        None => Measurement::unmeasured(format!(
            "{n} requests to a warm app added nothing to its dwcp_request_duration_seconds"
        )),
    };
    vec![
        ("performance.sandbox.cold_start_p50", cold(0.5)),
        ("performance.sandbox.cold_start_p99", cold(0.99)),
        ("performance.sandbox.warm_p99", warm),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(id: &str, m: &Measurement) -> certify::Status {
        let def = super::super::catalog::CATALOG
            .iter()
            .find(|d| d.id == id)
            .unwrap();
        certify::judge(&def.criterion(), m, &[], 0).status
    }

    /// Starts of 2 µs with a tail of 5 ms, and warm answers of 300 ms:
    /// the cold p99 and the warm p99 fail their criteria with their
    /// remediation; no start at all is unmeasured (and fails).
    #[test]
    fn slow_starts_and_slow_warm_answers_fail_their_criteria() {
        let starts = Buckets(vec![
            (0.0000025, 95.0),
            (0.001, 97.0),
            (0.01, 100.0),
            (f64::INFINITY, 100.0),
        ]);
        let warm = Buckets(vec![(0.00025, 1.0), (0.5, 100.0), (f64::INFINITY, 100.0)]);
        let got = measure(100, &starts, &warm);
        let by = |id: &str| got.iter().find(|(i, _)| *i == id).unwrap().1.clone();
        let p50 = by("performance.sandbox.cold_start_p50");
        assert!(p50.value.unwrap() <= 2.5, "{:?}", p50.value);
        assert_ne!(
            status("performance.sandbox.cold_start_p50", &p50),
            certify::Status::Fail
        );
        let p99 = by("performance.sandbox.cold_start_p99");
        assert!(p99.value.unwrap() > 1000.0, "{:?}", p99.value);
        assert_eq!(
            status("performance.sandbox.cold_start_p99", &p99),
            certify::Status::Fail
        );
        let w = by("performance.sandbox.warm_p99");
        assert!(w.value.unwrap() > 250.0, "{:?}", w.value);
        assert_eq!(
            status("performance.sandbox.warm_p99", &w),
            certify::Status::Fail
        );
        let none = measure(100, &Buckets::default(), &Buckets::default());
        assert!(none.iter().all(|(_, m)| m.value.is_none()));
    }
}
