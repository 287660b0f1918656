//! Why a topology is refused. Every variant names the entry (kind and name,
//! or its position when it has no valid name) and the field at fault.

use state::NameError;

/// A topology refused at start.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum TopologyError {
    /// The text is not TOML, or has a key or type the schema does not allow.
    #[error("topology is not valid: {0}")]
    Syntax(String),
    /// A name that is not a DNS label.
    #[error("{entry}: {source}")]
    BadName {
        /// Where the name is, e.g. `region[3].name`.
        entry: String,
        /// What is wrong with it.
        source: NameError,
    },
    /// An entry refers to a parent that is not declared.
    #[error("{kind} `{name}`.{field}: no {field} `{value}` is declared")]
    UnknownParent {
        /// `country`, `metro`, `region` or `rtt`.
        kind: &'static str,
        /// The entry's name.
        name: String,
        /// The field naming the parent.
        field: &'static str,
        /// The parent named.
        value: String,
    },
    /// An entry declared twice with different parents: the tree is a tree.
    #[error(
        "{kind} `{name}`.{field}: it is under two parents, {field} `{first}` and {field} `{second}`"
    )]
    TwoParents {
        /// `country`, `metro` or `region`.
        kind: &'static str,
        /// The entry's name.
        name: String,
        /// The parent's kind.
        field: &'static str,
        /// The parent of its first declaration.
        first: String,
        /// The parent of the later one.
        second: String,
    },
    /// A name used twice where names must be unique.
    #[error("{kind} `{name}`: the name is used twice{context}")]
    Duplicate {
        /// `country`, `metro`, `region`, `node` or `rtt`.
        kind: &'static str,
        /// The repeated name.
        name: String,
        /// Where the second use is, e.g. " (in region `b`)".
        context: String,
    },
    /// A coordinate out of range or not a number.
    #[error("region `{region}`.{field}: {value} is out of range; allowed {allowed}")]
    Coordinate {
        /// The region.
        region: String,
        /// `lat` or `lon`.
        field: &'static str,
        /// The value given.
        value: f64,
        /// The allowed range.
        allowed: &'static str,
    },
    /// A region without nodes cannot hold a Raft group.
    #[error("region `{region}`.nodes: a region needs at least one node")]
    NoNodes {
        /// The region.
        region: String,
    },
    /// More global voters than regions (voters must be in distinct regions),
    /// or none.
    #[error(
        "global.voters: {voters} voters over {regions} regions; allowed 1 to {regions} (one voter per region)"
    )]
    Voters {
        /// Voters asked for.
        voters: usize,
        /// Regions declared.
        regions: usize,
    },
    /// A number that must be positive and finite is not.
    #[error("{entry}: {value} is not allowed; {allowed}")]
    Number {
        /// Where the number is, e.g. `network.intra_region_ms`.
        entry: String,
        /// The value given.
        value: f64,
        /// What is allowed.
        allowed: &'static str,
    },
    /// A measured RTT faster than light in fibre over the pair's distance.
    #[error(
        "rtt `{a}`-`{b}`.ms: {ms} ms is below the physical floor of {floor_ms:.2} ms for {km:.0} km (light in fibre, both ways)"
    )]
    BelowFloor {
        /// One end.
        a: String,
        /// The other end.
        b: String,
        /// The RTT given.
        ms: f64,
        /// The floor for the pair.
        floor_ms: f64,
        /// The great-circle distance of the pair.
        km: f64,
    },
    /// An RTT override between a region and itself.
    #[error(
        "rtt `{region}`-`{region}`: an override needs two different regions (use network.intra_region_ms)"
    )]
    SelfPair {
        /// The region.
        region: String,
    },
}
