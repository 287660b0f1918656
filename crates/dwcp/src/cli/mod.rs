//! The client commands: each parses its flags, calls the HTTP API of a
//! node (`client.rs`: `--api` / `DWCP_API`, `--token` / `DWCP_TOKEN`) and
//! prints what it answered as a table (`table.rs`) or JSON. They decide
//! nothing: the API checks and the node applies. `dwcp run` is the one
//! local command here: it runs one sandbox from a file, with no node.

pub mod app;
pub mod apps;
pub mod audit;
pub mod autopilot;
pub mod autopilot_act;
pub mod backup;
pub mod capacity;
pub mod client;
pub mod cluster;
pub mod costs;
pub mod deploy;
pub mod incident;
pub mod logs;
pub mod nodes;
pub mod planet;
pub mod progress;
pub mod rollouts;
pub mod run;
pub mod runbook;
pub mod scale;
pub mod slo;
pub mod slo_export;
pub mod table;
pub mod tenant;
pub mod token;
pub mod user;
