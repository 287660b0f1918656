//! The OpenAPI description of the autopilot's routes (`autopilot.rs`),
//! merged into the document by [`merge`].

use serde_json::{Value, json};

use super::{PREFIX, ok, responses, schema};

fn query(name: &str, description: &str) -> Value {
    json!({ "name": name, "in": "query", "required": false, "description": description, "schema": { "type": "string" } })
}

fn path_param(name: &str, description: &str) -> Value {
    json!({ "name": name, "in": "path", "required": true, "description": description, "schema": { "type": "string" } })
}

const BAD_QUERY: (&str, &str) = (
    "400",
    "`invalid` with `field` naming the query parameter: an unknown parameter, a tenant, app or node that does not exist, a metric or kind not known, a horizon outside 5m..24h, a limit outside 1..500",
);
const CLUSTER_WIDE: (&str, &str) = (
    "403",
    "`forbidden`: a join token, or a user without a role on every tenant (`*`): the tenant-scoped routes show one tenant's",
);
const TENANT_ROLE: (&str, &str) = (
    "403",
    "`forbidden`: a join token, or a user without a role in the tenant",
);

fn list_params(with: &[&str]) -> Vec<Value> {
    let all = [
        ("tenant", "only this tenant's (cluster-wide routes)"),
        ("app", "only this app's (needs `tenant`)"),
        ("node", "only this node's"),
        (
            "metric",
            "only this metric's: request_rate, error_ratio, latency_p50_ms, latency_p99_ms, concurrency, live_sandboxes, memory_bytes, disk_bytes, silence_s, reporting_nodes",
        ),
        (
            "kind",
            "only this failure kind: slot_exhaustion, memory_exhaustion, disk_full, version_errors, version_latency, node_silent, region_capacity, load_past_capacity",
        ),
        ("status", "open, happened or cleared"),
        ("limit", "at most this many, 1 to 500 (default 100)"),
    ];
    all.iter()
        .filter(|(n, _)| with.contains(n))
        .map(|(n, d)| query(n, d))
        .collect()
}

fn paths() -> Vec<(&'static str, Value)> {
    let forecast_params = [
        query(
            "metric",
            "the series' metric (default request_rate): for a node request_rate, live_sandboxes, memory_bytes, ...; for an app request_rate, concurrency, ...",
        ),
        query(
            "horizon",
            "5m to 24h (e.g. 15m, 1h, 24h, or milliseconds); repeatable; default 5m, 15m, 1h, 6h and 24h",
        ),
        query("points", "recent points shown, 0 to 360 (default 60)"),
    ];
    let mut cluster_forecast = vec![
        query("tenant", "with `app`: the app forecast"),
        query("app", "with `tenant`"),
        query("node", "or a node"),
    ];
    cluster_forecast.extend(forecast_params.iter().cloned());
    let mut out = Vec::new();
    for (scope, forbidden) in [("cluster", CLUSTER_WIDE), ("tenant", TENANT_ROLE)] {
        let tenant_param = (scope == "tenant")
            .then(|| path_param("tenant", "the tenant's name"))
            .into_iter();
        // A tenant's routes take the tenant from the path, not the query.
        let with_tenant = |mut v: Vec<Value>| {
            if scope == "tenant" {
                v.retain(|p| p["name"] != "tenant");
            }
            v.extend(tenant_param.clone());
            v
        };
        out.push((
            if scope == "cluster" { "/autopilot/anomalies" } else { "/tenants/{tenant}/autopilot/anomalies" },
            json!({ "get": {
                "summary": format!("Anomalies the autopilot's detectors found ({scope}), newest first, each with its evidence: the series, observed and expected value, band, score, baseline and each detector's strength"),
                "operationId": format!("{scope}AutopilotAnomalies"),
                "parameters": with_tenant(list_params(&["tenant", "app", "node", "metric", "limit"])),
                "responses": responses(&[("200", ok("the anomalies", schema("AnomalyList")))], &[BAD_QUERY, forbidden])
            }}),
        ));
        out.push((
            if scope == "cluster" { "/autopilot/predictions" } else { "/tenants/{tenant}/autopilot/predictions" },
            json!({ "get": {
                "summary": format!("Failures the autopilot predicts ({scope}), newest first: what (kind), where (subject), when (eta with an interval) and why"),
                "operationId": format!("{scope}AutopilotPredictions"),
                "parameters": with_tenant(list_params(&["tenant", "app", "node", "kind", "status", "limit"])),
                "responses": responses(&[("200", ok("the predictions", schema("PredictionList")))], &[BAD_QUERY, forbidden])
            }}),
        ));
        out.push((
            if scope == "cluster" { "/autopilot/causes" } else { "/tenants/{tenant}/autopilot/causes" },
            json!({ "get": {
                "summary": format!("Root-cause rankings ({scope}), newest first: per trigger (an SLO alert, a strong anomaly, a prediction) the top five candidates with their evidence"),
                "operationId": format!("{scope}AutopilotCauses"),
                "parameters": with_tenant(list_params(&["tenant", "app", "node", "limit"])),
                "responses": responses(&[("200", ok("the diagnoses", schema("DiagnosisList")))], &[BAD_QUERY, forbidden])
            }}),
        ));
    }
    out.push((
        "/autopilot/forecast",
        json!({ "get": {
            "summary": "A node's or an app's forecast from the answering node's signals: recent points and, per horizon, the value, a 90 % band and the model that gave it",
            "operationId": "clusterAutopilotForecast",
            "parameters": cluster_forecast,
            "responses": responses(&[("200", ok("the forecast", schema("Forecast")))], &[
                BAD_QUERY, CLUSTER_WIDE,
                ("404", "`not_found`: no signal for the series yet, or a process that runs no autopilot"),
                ("409", "`conflict` naming `metric`: the series is still learning its sampling interval (too few points yet)"),
            ])
        }}),
    ));
    let mut app_forecast = vec![
        path_param("tenant", "the tenant's name"),
        path_param("app", "the app's name"),
    ];
    app_forecast.extend(forecast_params);
    out.push((
        "/tenants/{tenant}/apps/{app}/autopilot/forecast",
        json!({ "get": {
            "summary": "The app's forecast (request_rate by default, or concurrency, error_ratio, latency_p99_ms): recent points and, per horizon, the value, a 90 % band and the model",
            "operationId": "appAutopilotForecast",
            "parameters": app_forecast,
            "responses": responses(&[("200", ok("the forecast", schema("Forecast")))], &[
                BAD_QUERY, TENANT_ROLE,
                ("404", "`not_found`: the tenant does not exist, no signal yet, or no autopilot"),
                ("409", "`conflict` naming `metric`: the series is still learning its sampling interval (too few points yet)"),
            ])
        }}),
    ));
    out
}

fn schemas() -> Value {
    json!({
        "Subject": {
            "type": "object",
            "description": "where: one of {\"cluster\": null}, {\"region\": {region}}, {\"node\": {node}}, {\"tenant\": {tenant}}, {\"app\": {tenant, app}}, {\"version\": {tenant, app, version}}, {\"version_on_node\": {tenant, app, version, node}}"
        },
        "SeriesKey": {
            "type": "object",
            "required": ["subject", "metric"],
            "properties": { "subject": schema("Subject"), "metric": { "type": "string" } }
        },
        "Anomaly": {
            "type": "object",
            "description": "id, series, t_ms, observed, expected, band {low, high}, score (0..1; 0.5 and up is anomalous), baseline (recent|daily|weekly), detectors [{detector, strength, fired}]"
        },
        "AnomalyList": {
            "type": "object",
            "required": ["anomalies"],
            "properties": { "anomalies": { "type": "array", "items": schema("Anomaly") } }
        },
        "Prediction": {
            "type": "object",
            "description": "id, kind (what), subject (where), status (open|happened|cleared), first_ms, updated_ms, eta {at_ms, earliest_ms, latest_ms} (when), series, value, limit, trend_per_hour, trend_band {low, high}, why, incident (the incident it opened), closed_ms"
        },
        "PredictionList": {
            "type": "object",
            "required": ["predictions"],
            "properties": { "predictions": { "type": "array", "items": schema("Prediction") } }
        },
        "Diagnosis": {
            "type": "object",
            "description": "id, trigger ({slo_alert: {incident, tenant, app, slo}} | {anomaly: {series, t_ms}} | {prediction: {kind, subject}}), subject, t_ms, onset_ms, causes [{rank, candidate ({version}|{node}|{region}|{tenant}|{change: {revision, record, key}}), score, evidence [text]}] (at most 5)"
        },
        "DiagnosisList": {
            "type": "object",
            "required": ["diagnoses"],
            "properties": { "diagnoses": { "type": "array", "items": schema("Diagnosis") } }
        },
        "Forecast": {
            "type": "object",
            "description": "series, recent [{t_ms, value}], forecasts [{t_ms, horizon_ms, value, band {low, high} | null, coverage, model}], limit (the value at which the series fails, or null)"
        }
    })
}

pub(super) fn merge(doc: &mut Value) {
    for (path, item) in paths() {
        doc["paths"][format!("{PREFIX}{path}")] = item;
    }
    if let (Some(target), Value::Object(extra)) =
        (doc["components"]["schemas"].as_object_mut(), schemas())
    {
        target.extend(extra);
    }
}
