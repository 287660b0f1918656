//! Tests of the summaries as a whole: seeded randomized property tests of
//! the CRDT laws and anti-entropy (`properties`), and SWIM membership and
//! convergence in the in-memory driver (`swim`).

mod properties;
mod swim;
