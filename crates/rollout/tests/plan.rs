//! Plans: the default is valid, a good plan reads back as written, and
//! every kind of bad plan is refused with its step and field named.

use rollout::{Comparator, Plan, Step};

#[test]
fn the_default_plan_goes_1_10_50_100_with_analyses_between() {
    let plan = Plan::default_plan();
    plan.check().unwrap();
    let weights: Vec<u32> = plan
        .steps
        .iter()
        .filter_map(|s| match s {
            Step::SetWeight { weight } => Some(*weight),
            _ => None,
        })
        .collect();
    assert_eq!(weights, [1, 10, 50, 100]);
    assert_eq!(
        plan.steps
            .iter()
            .filter(|s| matches!(s, Step::Analysis(_)))
            .count(),
        3
    );
    // It survives a round trip through its own JSON.
    let json = serde_json::to_string(&plan).unwrap();
    assert_eq!(Plan::from_json(&json).unwrap(), plan);
}

#[test]
fn a_plan_reads_as_written() {
    let plan = Plan::from_json(
        r#"{"timeout_ms": 600000, "steps": [
            {"set_weight": {"weight": 5}},
            {"pause": {"duration_ms": 30000}},
            {"analysis": {"checks": [{"metric": "latency_p99_ms", "comparator": "<", "threshold": 250}],
                          "interval_ms": 5000, "count": 4, "failure_limit": 1}},
            {"pause": {}},
            {"set_weight": {"weight": 100}}
        ]}"#,
    )
    .unwrap();
    assert_eq!(plan.timeout_ms, Some(600_000));
    assert_eq!(plan.steps[3], Step::Pause { duration_ms: None });
    let Step::Analysis(a) = &plan.steps[2] else {
        panic!("step 3 is an analysis")
    };
    assert_eq!((a.count, a.failure_limit, a.inconclusive_limit), (4, 1, 1));
    assert_eq!(a.checks[0].comparator, Comparator::Less);
    assert!(a.checks[0].comparator.holds(200.0, a.checks[0].threshold));
    assert!(!a.checks[0].comparator.holds(250.0, a.checks[0].threshold));
}

/// The error a plan gets, as text.
fn refused(json: &str) -> String {
    Plan::from_json(json)
        .expect_err("a bad plan is refused")
        .to_string()
}

#[test]
fn bad_plans_name_their_step() {
    let cases = [
        (
            r#"{"steps": [{"set_weight": {"weight": 10}}, {"canary_dance": {}}]}"#,
            "step 2: canary_dance: unknown step; allowed: set_weight, pause, analysis",
        ),
        (
            r#"{"steps": [{"set_weight": {"weight": 101}}]}"#,
            "step 1: set_weight.weight: 101 is not a percentage from 0 to 100",
        ),
        (
            r#"{"steps": [{"set_weight": {"weight": 50}}, {"set_weight": {"weight": 20}}, {"set_weight": {"weight": 100}}]}"#,
            "step 2: set_weight.weight: 20 is below the 50 of an earlier step; weights never go down (abort to go back)",
        ),
        (
            r#"{"steps": [{"analysis": {"checks": [{"metric": "happiness", "comparator": ">", "threshold": 1}]}}, {"set_weight": {"weight": 100}}]}"#,
            "step 1: analysis.checks.metric: no metric `happiness`; available: error_rate",
        ),
        (
            r#"{"steps": [{"set_weight": {"weight": 50}}]}"#,
            "steps: the last weight is 50; a plan ends with set_weight 100",
        ),
        (
            r#"{"steps": [{"analysis": {"checks": [{"metric": "error_rate", "comparator": "<", "threshold": 0.1}], "count": 2, "failure_limit": 2}}, {"set_weight": {"weight": 100}}]}"#,
            "step 1: analysis.failure_limit: 2 would never fail in 2 measurements",
        ),
        (
            r#"{"steps": [{"pause": {"duration_ms": 0}}, {"set_weight": {"weight": 100}}]}"#,
            "step 1: pause.duration_ms: a positive duration",
        ),
        (
            r#"{"steps": [{"set_weight": {"weight": 10, "extra": 1}}, {"set_weight": {"weight": 100}}]}"#,
            "step 1: set_weight: unknown field `extra`",
        ),
        (
            r#"{"steps": [{"set_weight": {"weight": 100}}], "colour": "red"}"#,
            "colour: unknown field",
        ),
        (
            r#"{"steps": [{"set_weight": {"weight": 10}}, {"region_wave": {"waves": [["eu"]]}}, {"set_weight": {"weight": 100}}]}"#,
            "step 2: region_wave: only as the first step",
        ),
        (
            r#"{"steps": [{"region_wave": {"waves": [["eu"], ["us", "eu"]]}}, {"set_weight": {"weight": 100}}]}"#,
            "step 1: region_wave.waves: region `eu` is in two waves",
        ),
        (
            r#"{"steps": [{"region_wave": {"waves": [[]]}}, {"set_weight": {"weight": 100}}]}"#,
            "step 1: region_wave.waves: a list of waves, each a non-empty list",
        ),
        (
            r#"{"steps": [{"blue_green": {"preview_route": "preview"}}, {"set_weight": {"weight": 100}}]}"#,
            "step 1: blue_green.preview_route: `preview` is not a path prefix",
        ),
        (
            r#"{"steps": [{"blue_green": {"preview_route": "/preview"}}, {"set_weight": {"weight": 30}}, {"set_weight": {"weight": 100}}]}"#,
            "step 2: set_weight.weight: 30 after a blue_green step; a blue-green switch is 0 or 100",
        ),
        (
            r#"{"steps": [{"set_weight": {"weight": 10}}, {"blue_green": {"preview_route": "/preview"}}, {"set_weight": {"weight": 100}}]}"#,
            "step 2: blue_green: comes before any weight above 0",
        ),
        (
            r#"{"steps": [{"set_weight": {"weight": 10}}, {"analysis": {"checks": [{"metric": "canary_errors / nope", "comparator": "<", "threshold": 1}]}}, {"set_weight": {"weight": 100}}]}"#,
            "step 2: analysis.checks.metric: no metric `nope`",
        ),
        (
            r#"{"steps": [{"set_weight": {"weight": 10}}, {"analysis": {"checks": [{"metric": "canary_errors /", "comparator": "<", "threshold": 1}]}}, {"set_weight": {"weight": 100}}]}"#,
            "step 2: analysis.checks.metric: `canary_errors /` is not a metric or a query over metrics: at the end",
        ),
        (r#"{"steps": []}"#, "steps: at least one step"),
        (r#"[1, 2]"#, "plan: must be an object"),
        (r#"{"steps": "#, "plan: not JSON"),
    ];
    for (json, want) in cases {
        let got = refused(json);
        assert!(
            got.starts_with(want),
            "{json}\n  got:  {got}\n  want: {want}…"
        );
    }
}

#[test]
fn plans_read_from_toml_as_from_json() {
    let toml = r#"
timeout_ms = 60000

[[steps]]
region_wave = { waves = [["eu"], ["us", "ap"]] }

[[steps]]
set_weight = { weight = 20 }

[[steps]]
analysis = { checks = [{ metric = "error_rate", comparator = "<=", threshold = 0.01 }], interval_ms = 2000, count = 2 }

[[steps]]
set_weight = { weight = 100 }
"#;
    let plan = Plan::parse(toml).unwrap();
    assert_eq!(plan.timeout_ms, Some(60_000));
    assert_eq!(plan.steps.len(), 4);
    assert_eq!(
        plan.waves().unwrap(),
        [vec!["eu".to_string()], vec!["us".into(), "ap".into()]]
    );
    let json = serde_json::to_string(&plan).unwrap();
    assert_eq!(Plan::parse(&json).unwrap(), plan);
    // TOML errors name the step as JSON's do.
    let bad = "[[steps]]\nset_weight = { weight = 300 }\n";
    assert!(
        Plan::parse(bad)
            .unwrap_err()
            .to_string()
            .starts_with("step 1: set_weight.weight: 300"),
    );
    assert!(
        Plan::parse("steps = [")
            .unwrap_err()
            .to_string()
            .starts_with("plan: neither JSON nor TOML")
    );
    // The blue-green plan is a valid plan with its preview.
    let bg = Plan::blue_green_plan("/preview/shop", 30_000);
    bg.check().unwrap();
    assert_eq!(bg.preview_route(), Some("/preview/shop"));
}
