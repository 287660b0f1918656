//! Certification of a DWCP cluster (issue 17), the pure half: criteria as
//! data, the verdict on each measured value, category and overall scores,
//! waivers, and the report (a stable JSON schema, signed by its sha256, and
//! one self-contained HTML file).
//!
//! - [`criterion`]: a [`Criterion`] (id, category, description, threshold,
//!   remediation, the SOC 2 / ISO 27001 Annex A controls it gives evidence
//!   for) and a [`Measurement`] of it;
//! - [`verdict`]: [`judge`] — pass, warn, fail or waived from a
//!   measurement, a threshold and the waivers in force;
//! - [`score`]: [`Scores`] from verdicts only;
//! - [`report`]: [`Report`], its sha256, and [`diff`] of two reports;
//! - [`html`]: the report as one HTML page with inline SVG, no external
//!   asset.
//!
//! Invariants: a verdict comes from a value measured in this run — a
//! criterion that could not be measured fails, naming why; a waiver makes
//! a failure `waived`, never `pass`, and an expired waiver lapses; scores
//! count verdicts only. The controls named are evidence for an auditor,
//! never a claim of certification.
//!
//! It depends on no DWCP crate: the measuring (I/O against a live cluster)
//! is the `dwcp certify` command's.

pub mod criterion;
pub mod html;
pub mod report;
pub mod score;
pub mod verdict;

pub use criterion::{Category, Criterion, Direction, Measurement, Threshold};
pub use report::{Report, ReportError, SCHEMA, diff};
pub use score::{CategoryScore, Scores};
pub use verdict::{Status, Verdict, Waiver, judge};
