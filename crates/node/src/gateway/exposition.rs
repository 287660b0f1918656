//! The gateway's families on `/metrics`: requests, errors by class,
//! in-flight requests, open circuit breakers and latency histograms per
//! app and version, fresh sandbox starts, and the requests no route or no
//! version took. `dwcp up` hands the gateway to the API as a [`Source`].

use cluster::exposition::{Exposition, Source};

use super::{Gateway, VersionSnapshot};

impl Source for Gateway {
    fn expose(&self, out: &mut Exposition) {
        let gateway = self;
        let m = gateway.metrics();
        let version_labels = |v: &VersionSnapshot| {
            [
                ("tenant", v.tenant.clone()),
                ("app", v.app.clone()),
                ("version", v.version.to_string()),
            ]
        };
        let per_version = |out: &mut Exposition,
                           name: &str,
                           kind: &str,
                           help: &str,
                           value: fn(&VersionSnapshot) -> u64| {
            out.family(name, kind, help);
            for v in &m.versions {
                out.sample(name, &version_labels(v), value(v));
            }
        };
        per_version(
            out,
            "dwcp_requests_total",
            "counter",
            "Requests this node's gateway answered from an app's version.",
            |v| v.requests,
        );
        out.family(
        "dwcp_request_errors_total",
        "counter",
        "Requests answered with an error, by class: 4xx, 5xx (other than 504) and timeout (504).",
    );
        for v in &m.versions {
            for (class, n) in [
                ("4xx", v.errors_4xx),
                ("5xx", v.errors_5xx),
                ("timeout", v.timeouts),
            ] {
                let [t, a, ver] = version_labels(v);
                out.sample(
                    "dwcp_request_errors_total",
                    &[t, a, ver, ("class", class.to_string())],
                    n,
                );
            }
        }
        per_version(
            out,
            "dwcp_requests_in_flight",
            "gauge",
            "Requests admitted whose sandbox has not finished.",
            |v| v.in_flight,
        );
        per_version(
            out,
            "dwcp_circuit_open",
            "gauge",
            "1 while a version's circuit breaker keeps it out of its split on this gateway.",
            |v| u64::from(v.circuit_open),
        );
        out.family(
            "dwcp_request_duration_seconds",
            "histogram",
            "Time from a request's arrival to its answer, per app and version.",
        );
        for ((tenant, app, version), h) in gateway.latency_histograms() {
            let labels = [
                ("tenant", tenant),
                ("app", app),
                ("version", version.to_string()),
            ];
            out.histogram("dwcp_request_duration_seconds", &labels, &h);
        }
        out.family(
            "dwcp_sandbox_start_seconds",
            "histogram",
            "Time to start a fresh sandbox for a request (routes without a warm pool): from asking the version's cold pool to the call into the guest.",
        );
        out.histogram(
            "dwcp_sandbox_start_seconds",
            &[],
            &gateway.sandbox_start_histogram(),
        );
        out.family(
            "dwcp_version_tier",
            "gauge",
            "1 for each version this node serves, labelled with its isolation tier (wasm, microvm).",
        );
        for route in gateway.routes().routes() {
            for v in &route.versions {
                out.sample(
                    "dwcp_version_tier",
                    &[
                        ("tenant", route.app.tenant.to_string()),
                        ("app", route.app.app.to_string()),
                        ("version", v.number.to_string()),
                        ("tier", v.handle.tier().as_str().to_string()),
                    ],
                    1,
                );
            }
        }
        for (name, help, value) in [
            (
                "dwcp_gateway_unrouted_total",
                "Requests no route matched (404).",
                m.unrouted,
            ),
            (
                "dwcp_gateway_no_version_total",
                "Requests whose route had no version taking traffic (503).",
                m.no_version,
            ),
            (
                "dwcp_gateway_forwarded_total",
                "Requests sent on to another node's gateway.",
                m.forwarded,
            ),
        ] {
            out.family(name, "counter", help);
            out.sample(name, &[] as &[(&str, String)], value);
        }
    }
}
