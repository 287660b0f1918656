//! What runs on every node: the [`gateway`] (HTTP ingress that routes
//! requests to apps' versions and runs them in sandboxes) and the [`agent`]
//! (reconciles templates, pools and routes against the desired state, and
//! reports the node's observed state).
//!
//! The gateway takes a [`gateway::RouteTable`] —
//! plain data that names, per host and path prefix, an app, its versions
//! with weights and prepared templates, and the route's limits — and serves
//! HTTP/1.1 and HTTP/2 on a listener. Whoever owns the node (the agent, the
//! `dwcp` binary, a test) builds the tables and swaps them in at runtime.
//!
//! Invariants:
//! - A guest failure never takes the gateway down: a trap, a timeout, an
//!   exhausted limit, output that is not CGI, even a panic while the
//!   guest's future is polled, ends that one request with a 5xx that
//!   carries its request id; the next request is served as before.
//! - Guests run on the worker thread that polls their request (wasmtime
//!   async): a short one never leaves it, a long one yields at every epoch
//!   tick, and at the route's timeout its future is dropped, which stops
//!   it. A cold route's request runs on a never-used instance from the
//!   version's `ColdPool`, prepared off the request path.
//! - Every response carries `x-request-id`, and every request is one line of
//!   the access log and is counted in the metrics of its app and version.
//! - Nothing queues without bound: a request past its app's concurrency
//!   limit is answered 503 at once, a body is read only up to the route's
//!   limit (413 past it), and the answer comes by the route's timeout (504).
//! - Routing and the weighted choice of a version are pure functions of the
//!   route table and the request (`routes.rs`), so they are testable
//!   without sockets and the same key always reaches the same version.
//!
//! This crate depends on `sandbox`, `state`, `rng` and `cluster` (the node
//! handle the agent reads the state and writes reports through, and the
//! shared accept loop and `/metrics` format the gateway uses); it must not
//! depend on `ops`, the controllers or the binary, and the gateway does no
//! I/O with the control plane (the agent feeds it route tables).

pub mod agent;
pub mod gateway;
