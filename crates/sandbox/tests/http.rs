//! wasi:http components: prepared from the examples' component text,
//! answering in a fresh instance per request, stopped at their deadline.

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use sandbox::{Artifact, Engine, Limits, SandboxError, WasmConfig, WasmEngine};

fn example(rel: &str) -> Artifact {
    let path = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples")).join(rel);
    Artifact::new(
        std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display())),
    )
}

fn engine() -> WasmEngine {
    WasmEngine::new(WasmConfig {
        max_live: 16,
        ..WasmConfig::default()
    })
    .expect("engine")
}

fn request(path: &str) -> hyper::http::Request<Bytes> {
    hyper::http::Request::builder()
        .uri(format!("http://app.test{path}"))
        .header("host", "app.test")
        .body(Bytes::new())
        .expect("a valid request")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn header<'a>(answer: &'a sandbox::HttpAnswer, name: &str) -> Option<&'a [u8]> {
    answer
        .headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_slice())
}

#[test]
fn a_component_answers_every_request_in_a_fresh_instance() {
    let engine = engine();
    let template = engine
        .prepare_http(&example("http/hello.wat"), Limits::default())
        .expect("the example component prepares");
    let rt = runtime();
    for _ in 0..3 {
        let mut start = None;
        let answer = rt
            .block_on(template.handle(request("/hello"), 1 << 20, |t| start = Some(t)))
            .expect("answer");
        assert_eq!(answer.status, 200);
        assert_eq!(answer.body, b"Hello from DWCP!\n");
        assert_eq!(header(&answer, "content-type"), Some(&b"text/plain"[..]));
        // The instance counts the requests it handled: a reused one would
        // say 2, then 3.
        assert_eq!(header(&answer, "x-requests-seen"), Some(&b"1"[..]));
        assert!(start.is_some(), "the start was timed");
        assert!(!answer.truncated);
    }
    assert_eq!(engine.live(), 0, "every instance was released");
}

#[test]
fn a_body_past_the_limit_is_flagged_truncated() {
    let engine = engine();
    let template = engine
        .prepare_http(&example("http/hello.wat"), Limits::default())
        .expect("prepare");
    let answer = runtime()
        .block_on(template.handle(request("/"), 4, |_| {}))
        .expect("answer");
    assert!(answer.truncated);
    assert!(answer.body.len() <= 4);
}

#[test]
fn a_spinning_component_is_stopped_at_its_deadline() {
    let engine = engine();
    let limits = Limits {
        deadline: Duration::from_millis(200),
        ..Limits::default()
    };
    let template = engine
        .prepare_http(&example("http/spin.wat"), limits)
        .expect("prepare");
    match runtime().block_on(template.handle(request("/"), 1 << 20, |_| {})) {
        Err(SandboxError::Timeout { deadline }) => {
            assert_eq!(deadline, Duration::from_millis(200))
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert_eq!(engine.live(), 0);
    // The engine still serves.
    let hello = engine
        .prepare_http(&example("http/hello.wat"), Limits::default())
        .expect("prepare");
    let answer = runtime()
        .block_on(hello.handle(request("/"), 1 << 20, |_| {}))
        .expect("answer");
    assert_eq!(answer.status, 200);
}

#[test]
fn a_module_is_refused_as_a_component_and_a_component_as_a_module() {
    let engine = engine();
    match engine.prepare_http(&example("wagi/hello.wat"), Limits::default()) {
        Err(SandboxError::InvalidArtifact { reason }) => {
            assert!(reason.contains("wasi:http/incoming-handler"), "{reason}")
        }
        Err(other) => panic!("expected InvalidArtifact, got {other:?}"),
        Ok(_) => panic!("a module was prepared as a component"),
    }
    assert!(sandbox::wasm::is_component_artifact(
        example("http/hello.wat").bytes()
    ));
    assert!(!sandbox::wasm::is_component_artifact(
        example("wagi/hello.wat").bytes()
    ));
    match engine.prepare(&example("http/hello.wat"), Limits::default()) {
        Err(SandboxError::NotSupported { what }) => assert!(what.contains("wasi:http"), "{what}"),
        Err(other) => panic!("expected NotSupported, got {other:?}"),
        Ok(_) => panic!("a component was prepared as a module"),
    }
}
