//! Global routing: where a client's requests go, and where a failed
//! region's load goes. Pure functions over the [`RttModel`]; ties go to the
//! lower region index, so the answer is the same on every node.

use serde::Serialize;

use super::geo::LatLon;
use super::rtt::RttModel;

/// Why failover targets cannot be chosen.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum RoutingError {
    /// `capacity` must have one entry per region.
    #[error("capacity: {given} entries for {regions} regions")]
    Capacity {
        /// Entries given.
        given: usize,
        /// Regions in the model.
        regions: usize,
    },
    /// A region index outside the model.
    #[error("region {region}: out of range (the model has {regions} regions)")]
    Region {
        /// The index.
        region: usize,
        /// Regions in the model.
        regions: usize,
    },
    /// No healthy region with capacity other than the failed one.
    #[error("no healthy region with capacity can take region {failed}'s load")]
    NoTarget {
        /// The failed region.
        failed: usize,
    },
}

/// The healthy region nearest a client by modelled RTT, or `None` when no
/// region is healthy. Indices outside the model are ignored.
pub fn nearest_healthy(model: &RttModel, client: LatLon, healthy: &[usize]) -> Option<usize> {
    healthy
        .iter()
        .copied()
        .filter(|&r| r < model.len())
        .map(|r| (model.client_ms(client, r), r))
        .min_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)))
        .map(|(_, r)| r)
}

/// One failover target and the share of the failed region's load it takes.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Share {
    /// The target region.
    pub region: usize,
    /// Its share, in (0, 1]; a failover's shares sum to 1.
    pub share: f64,
    /// Base RTT from the failed region, in ms.
    pub rtt_ms: f64,
}

/// Where a failed region's load goes: the `k` healthy regions nearest it
/// (by base RTT; regions without capacity skipped), each taking a share
/// proportional to its capacity. `capacity[r]` is region `r`'s spare
/// capacity in any unit; non-finite or non-positive means none.
pub fn failover_targets(
    model: &RttModel,
    failed: usize,
    healthy: &[usize],
    capacity: &[f64],
    k: usize,
) -> Result<Vec<Share>, RoutingError> {
    let regions = model.len();
    if capacity.len() != regions {
        return Err(RoutingError::Capacity {
            given: capacity.len(),
            regions,
        });
    }
    if let Some(&region) = healthy.iter().chain([&failed]).find(|&&r| r >= regions) {
        return Err(RoutingError::Region { region, regions });
    }
    let usable = |r: usize| capacity[r].is_finite() && capacity[r] > 0.0;
    let mut candidates: Vec<usize> = healthy
        .iter()
        .copied()
        .filter(|&r| r != failed && usable(r))
        .collect();
    candidates.sort_unstable();
    candidates.dedup();
    candidates.sort_by(|&a, &b| {
        model
            .base_ms(failed, a)
            .total_cmp(&model.base_ms(failed, b))
            .then(a.cmp(&b))
    });
    candidates.truncate(k);
    let total: f64 = candidates.iter().map(|&r| capacity[r]).sum();
    if candidates.is_empty() || !(total.is_finite() && total > 0.0) {
        return Err(RoutingError::NoTarget { failed });
    }
    Ok(candidates
        .into_iter()
        .map(|r| Share {
            region: r,
            share: capacity[r] / total,
            rtt_ms: model.base_ms(failed, r),
        })
        .collect())
}
