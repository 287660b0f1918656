//! Isolation engines behind one trait: templates, sandboxes, pools and limits.
//!
//! A *template* is an artifact prepared on this node (validated, compiled,
//! its memory image ready) from which *sandboxes* start. A sandbox is one
//! isolated instance; an *invocation* runs one entry point in it with input
//! and collects its output. The [`Engine`] and [`Sandbox`] traits say this
//! independently of the isolation tier; [`wasm::WasmEngine`] is the
//! WebAssembly tier on wasmtime, [`microvm::MicroVmEngine`] runs static
//! x86-64 Linux programs in KVM microVMs with no guest kernel (the eBPF
//! tier comes later and today answers [`SandboxError::NotSupported`]).
//!
//! Invariants:
//! - Untrusted code never reaches the host: no files, network, environment
//!   or clock authority beyond what an invocation grants; every sandbox has
//!   a memory cap, a table cap, a wall-clock deadline (also over a module's
//!   start function), optional fuel and output caps.
//! - A trap, a timeout or an exhausted limit ends one invocation with a
//!   typed [`SandboxError`]; it never panics the host thread and never
//!   affects another sandbox.
//! - A *cold* start shares no state with any earlier invocation. What a
//!   *warm* start keeps is the explicit [`WarmPolicy`] of its pool.
//!
//! Guests run as futures (wasmtime's async support, epoch-based yielding):
//! a server polls them on its own worker threads, a short guest finishes in
//! the first poll and a long one yields at every epoch tick until its
//! deadline stops it. The crate spawns no tasks and uses no executor of its
//! own beyond a small `block_on` for its synchronous methods, and tokio's
//! timer only for a guest's sleep while a tokio runtime polls it. Its own
//! threads are the engine's epoch ticker and the preparer that fills cold
//! pools. It does no networking and must not depend on any other DWCP
//! crate.

mod artifact;
mod engine;
mod error;
mod limits;
pub mod microvm;
pub mod wagi;
pub mod wasm;

pub use artifact::{Artifact, Digest};
pub use engine::{DirGrant, Engine, EntryId, Invocation, Output, Sandbox, Template, Tier};
pub use error::SandboxError;
pub use limits::{Limits, WarmPolicy};
pub use microvm::{MicroVmConfig, MicroVmEngine, MicroVmPool, MicroVmSandbox, MicroVmTemplate};
pub use wasm::{
    ColdPool, ColdStats, HttpAnswer, HttpTemplate, Profile, SandboxGroup, SandboxPool, WarmPool,
    WasmConfig, WasmEngine, WasmSandbox, WasmTemplate,
};
