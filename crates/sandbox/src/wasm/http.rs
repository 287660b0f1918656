//! wasi:http components: a WASI 0.2 component exporting
//! `wasi:http/incoming-handler` (what `wasmtime serve`, Spin and wasmCloud
//! run), prepared once and answering each request in a fresh instance.
//!
//! A component runs on the same wasmtime engine as the modules: the same
//! pooling allocator and profile, the same epoch ticker (a guest yields to
//! its executor at every tick and is stopped at its deadline), the same
//! memory and table limits, fuel and node-wide live count. What it may
//! import is the `wasi:http/proxy` world: clocks, random, stdio (stdout and
//! stderr captured, stdin empty), `wasi:io` and `wasi:http`. It reaches no
//! files, sockets or environment, and its outgoing HTTP requests are
//! refused (`HTTP-request-denied`): no app config grants hosts yet.
//!
//! Every request instantiates the component in a new store that is dropped
//! when the request is done: no instance ever serves two requests.

use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::http;
use wasmtime::Store;
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::{ErrorCode, Scheme};
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::{
    RequestOptions, WasiBody, WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView,
};

use super::invoke::MAX_RESOURCES;
use super::store::Limiter;
use super::template::{check_limits, is_component, not_webassembly};
use super::trap::classify;
use super::{Shared, epoch};
use crate::{Artifact, Digest, Limits, SandboxError};

/// The export a wasi:http component must have.
pub const INCOMING_HANDLER: &str = "wasi:http/incoming-handler";

/// A prepared wasi:http component: compiled and linked once; every request
/// runs in a fresh instance of it ([`HttpTemplate::handle`]).
pub struct HttpTemplate {
    shared: Arc<Shared>,
    pre: ProxyPre<HttpState>,
    limits: Limits,
    deadline_ticks: u64,
    digest: Digest,
}

/// What a wasi:http guest answered to one request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HttpAnswer {
    /// The response status the guest set.
    pub status: u16,
    /// The response headers, in order.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The response body, at most the `max_body_bytes` asked for.
    pub body: Vec<u8>,
    /// True when the body went past `max_body_bytes` (the rest was not
    /// read; the guest saw its stream closed).
    pub truncated: bool,
    /// What the guest wrote to stdout, at most the output cap.
    pub stdout: Vec<u8>,
    /// What the guest wrote to stderr, at most the output cap.
    pub stderr: Vec<u8>,
}

/// Whether `bytes` are a WebAssembly component, binary or text (first
/// token past whitespace and `;;` comments is `(component`), rather than
/// a core module.
pub fn is_component_artifact(bytes: &[u8]) -> bool {
    if is_component(bytes) {
        return true;
    }
    let Ok(text) = std::str::from_utf8(bytes) else {
        return false;
    };
    let mut rest = text.trim_start();
    while let Some(after) = rest.strip_prefix(";;") {
        rest = after
            .split_once('\n')
            .map_or("", |(_, next)| next)
            .trim_start();
    }
    rest.strip_prefix('(')
        .is_some_and(|r| r.trim_start().starts_with("component"))
}

impl std::fmt::Debug for HttpTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpTemplate")
            .field("digest", &self.digest.to_string())
            .field("limits", &self.limits)
            .finish()
    }
}

impl HttpTemplate {
    pub(crate) fn prepare(
        shared: &Arc<Shared>,
        artifact: &Artifact,
        limits: Limits,
    ) -> Result<HttpTemplate, SandboxError> {
        check_limits(shared, &limits)?;
        if let Some(reason) = not_webassembly(artifact.bytes()) {
            return Err(SandboxError::InvalidArtifact { reason });
        }
        if !is_component_artifact(artifact.bytes()) {
            return Err(SandboxError::InvalidArtifact {
                reason: format!(
                    "it is a core module, not a component exporting {INCOMING_HANDLER}"
                ),
            });
        }
        let invalid = |e: wasmtime::Error| SandboxError::InvalidArtifact {
            reason: format!("{e:#}"),
        };
        let component = Component::new(&shared.engine, artifact.bytes()).map_err(invalid)?;
        let mut linker = Linker::<HttpState>::new(&shared.engine);
        wasmtime_wasi_http::p2::add_to_linker_async(&mut linker)
            .map_err(|e| SandboxError::Engine(format!("cannot link wasi:http: {e:#}")))?;
        let pre = linker
            .instantiate_pre(&component)
            .map_err(|e| SandboxError::InvalidArtifact {
                reason: format!(
                    "{e:#}; a component may import only the wasi:http/proxy world (clocks, random, stdio, wasi:io, wasi:http)"
                ),
            })?;
        let pre = ProxyPre::new(pre).map_err(|e| SandboxError::InvalidArtifact {
            reason: format!("it does not export {INCOMING_HANDLER}: {e:#}"),
        })?;
        let deadline_ticks = epoch::deadline_ticks(limits.deadline, shared.config.epoch_tick);
        Ok(HttpTemplate {
            shared: shared.clone(),
            pre,
            limits,
            deadline_ticks,
            digest: artifact.digest(),
        })
    }

    /// The digest of the artifact this template was prepared from.
    pub fn digest(&self) -> Digest {
        self.digest
    }

    /// The limits every request's instance runs under.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Answers `request` in a fresh instance, dropped afterwards. The
    /// response body is read while the guest runs, up to `max_body_bytes`.
    /// `started` is told how long the instance took to start, up to the
    /// call into the guest's handler.
    ///
    /// The future runs the guest on the polling thread: a short guest is
    /// done in the first poll, a long one yields at every epoch tick until
    /// its deadline stops it. Dropping the future stops the guest.
    pub async fn handle(
        &self,
        request: http::Request<Bytes>,
        max_body_bytes: usize,
        started: impl FnOnce(std::time::Duration) + Send,
    ) -> Result<HttpAnswer, SandboxError> {
        let begun = std::time::Instant::now();
        let live = LiveOne::acquire(&self.shared)?;
        let cap = self.limits.output_bytes;
        let stdout = MemoryOutputPipe::new(cap);
        let stderr = MemoryOutputPipe::new(cap);
        let mut store = self.new_store(&stdout, &stderr)?;
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let engine = |e: wasmtime::Error| SandboxError::Engine(format!("{e:#}"));
        let request = request.map(Full::new);
        let incoming = store
            .data_mut()
            .http()
            .new_incoming_request(Scheme::Http, request)
            .map_err(engine)?;
        let outparam = store
            .data_mut()
            .http()
            .new_response_outparam(sender)
            .map_err(engine)?;

        // The guest, owning its store: when it is done (or stopped) the
        // store goes, and with it any body stream the guest left open.
        let guest = async move {
            let _live = live;
            let proxy = self
                .pre
                .instantiate_async(&mut store)
                .await
                .map_err(|e| classify(e, &self.limits))?;
            started(begun.elapsed());
            proxy
                .wasi_http_incoming_handler()
                .call_handle(&mut store, incoming, outparam)
                .await
                .map_err(|e| classify(e, &self.limits))
        };
        let (ran, answered) = tokio::join!(guest, read_response(receiver, max_body_bytes));
        let mut answer = match (ran, answered) {
            (_, Answered::Head(answer)) if answer.truncated => answer,
            (Err(error), _) => return Err(error),
            (Ok(()), Answered::Head(answer)) => answer,
            (Ok(()), Answered::Nothing) => {
                return Err(bad_answer(
                    "it returned without setting a response (response-outparam.set)".into(),
                ));
            }
            (Ok(()), Answered::Error(code)) => {
                return Err(bad_answer(format!("it answered with the error {code:?}")));
            }
            (Ok(()), Answered::BodyFailed(why)) => {
                return Err(bad_answer(format!("its response body failed: {why}")));
            }
        };
        answer.stdout = stdout.contents().to_vec();
        answer.stderr = stderr.contents().to_vec();
        Ok(answer)
    }

    fn new_store(
        &self,
        stdout: &MemoryOutputPipe,
        stderr: &MemoryOutputPipe,
    ) -> Result<Store<HttpState>, SandboxError> {
        let wasi = WasiCtx::builder()
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .build();
        let mut table = ResourceTable::new();
        table.set_max_capacity(MAX_RESOURCES);
        let state = HttpState {
            limiter: Limiter::new(&self.limits),
            deadline_tick: self.shared.clock.now().saturating_add(self.deadline_ticks),
            table,
            wasi,
            http: WasiHttpCtx::new(),
            hooks: RefuseOutgoing,
        };
        let mut store = Store::new(&self.shared.engine, state);
        store.limiter(|s| &mut s.limiter);
        let clock = self.shared.clock.clone();
        store.epoch_deadline_callback(move |ctx| {
            let tick = epoch::at_tick(clock.now(), ctx.data().deadline_tick);
            Ok(epoch::update(tick))
        });
        store.set_epoch_deadline(self.deadline_ticks.min(epoch::YIELD_EVERY_TICKS));
        if self.shared.config.fuel {
            store
                .set_fuel(self.limits.fuel.unwrap_or(u64::MAX))
                .map_err(|e| SandboxError::Engine(format!("{e:#}")))?;
        }
        Ok(store)
    }
}

fn bad_answer(reason: String) -> SandboxError {
    SandboxError::BadOutput {
        entry: format!("{INCOMING_HANDLER}.handle"),
        reason,
    }
}

/// What came back on the response outparam.
enum Answered {
    /// A response: its head and (some of) its body.
    Head(HttpAnswer),
    /// `response-outparam.set` with an error.
    Error(ErrorCode),
    /// The body broke off with an error.
    BodyFailed(String),
    /// Never set: the guest failed or returned without answering.
    Nothing,
}

/// Waits for the guest's response and reads its body, at most
/// `max_body_bytes` of it (then stops reading, flagged `truncated`).
async fn read_response(
    receiver: tokio::sync::oneshot::Receiver<Result<hyper::Response<HyperOutgoingBody>, ErrorCode>>,
    max_body_bytes: usize,
) -> Answered {
    let response = match receiver.await {
        Ok(Ok(response)) => response,
        Ok(Err(code)) => return Answered::Error(code),
        Err(_) => return Answered::Nothing,
    };
    let (parts, mut body) = response.into_parts();
    let mut answer = HttpAnswer {
        status: parts.status.as_u16(),
        headers: parts
            .headers
            .iter()
            .map(|(n, v)| (n.as_str().to_string(), v.as_bytes().to_vec()))
            .collect(),
        ..HttpAnswer::default()
    };
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => {
                if let Ok(data) = frame.into_data() {
                    if answer.body.len() + data.len() > max_body_bytes {
                        answer.truncated = true;
                        return Answered::Head(answer);
                    }
                    answer.body.extend_from_slice(&data);
                }
            }
            Err(e) => return Answered::BodyFailed(e.to_string()),
        }
    }
    Answered::Head(answer)
}

/// One live sandbox counted against the node's limit while a request runs.
struct LiveOne(Arc<Shared>);

impl LiveOne {
    fn acquire(shared: &Arc<Shared>) -> Result<LiveOne, SandboxError> {
        shared.acquire_live(1)?;
        Ok(LiveOne(shared.clone()))
    }
}

impl Drop for LiveOne {
    fn drop(&mut self) {
        self.0.release_live(1);
    }
}

/// The store of one request's instance.
pub(crate) struct HttpState {
    limiter: Limiter,
    /// The epoch tick at which the request's deadline falls.
    deadline_tick: u64,
    table: ResourceTable,
    wasi: WasiCtx,
    http: WasiHttpCtx,
    hooks: RefuseOutgoing,
}

impl WasiView for HttpState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for HttpState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

/// Refuses every outgoing request of a guest: no app config grants hosts.
struct RefuseOutgoing;

type SendResult = wasmtime_wasi_http::Result<(
    http::Response<WasiBody>,
    Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
)>;

impl WasiHttpHooks for RefuseOutgoing {
    fn send_request(
        &mut self,
        _request: http::Request<WasiBody>,
        _options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
    ) -> Box<dyn Future<Output = SendResult> + Send> {
        Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) })
    }
}
