//! The Numenta Anomaly Benchmark's scoring, in Rust: its files parsed
//! from text ([`input`]) and its scorer ([`score`]), checked against
//! NAB's official scorer on Numenta HTM's published results (see
//! `tests/nab_scorer.rs`), and the context NAB's protocol hands a
//! detector ([`context`]).

pub mod context;
pub mod input;
pub mod score;

pub use context::NabContext;
pub use input::{InputError, Profile, Results, Series, Window};
pub use score::{ProfileScore, Scored, Tally, probationary_points, scaled_sigmoid, tally};
