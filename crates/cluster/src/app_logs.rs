//! Reading an app's log lines from every member of the cluster: this
//! node's ring, and each other member's over the peer port
//! (`POST /cluster/logs`, mutual TLS), merged by [`logs::merge`]. A
//! member that does not answer in time is listed as unreachable, so a
//! reader knows lines may be missing.

use std::time::Duration;

use super::node::{ClusterNode, node_name};
use crate::logs::{self, LogPage, LogQuery, NodePage, Unreachable};

/// The peer route a member answers a [`LogQuery`] on.
pub(crate) const PEER_LOGS_PATH: &str = "/cluster/logs";
/// How long a member has to answer; a reader waits at most this long.
const PEER_LOGS_TIMEOUT: Duration = Duration::from_secs(3);

impl ClusterNode {
    /// The lines of `query`'s app from every member of this node's
    /// cluster (its region's cell, in a planet), merged.
    pub async fn app_logs(&self, query: &LogQuery) -> LogPage {
        let status = self.replica().status();
        let mut asks = tokio::task::JoinSet::new();
        for (&id, address) in &status.members {
            if id == self.id() {
                continue;
            }
            let channel = self.channel(address);
            let query = query.clone();
            asks.spawn(async move {
                let node = node_name(id).to_string();
                let call = channel.call::<_, NodePage>(PEER_LOGS_PATH, &query);
                match tokio::time::timeout(PEER_LOGS_TIMEOUT, call).await {
                    Ok(Ok(page)) => Ok(page),
                    Ok(Err(e)) => Err(Unreachable {
                        node,
                        reason: e.to_string(),
                    }),
                    Err(_) => Err(Unreachable {
                        node,
                        reason: format!("no answer within {} s", PEER_LOGS_TIMEOUT.as_secs()),
                    }),
                }
            });
        }
        let mut pages = vec![self.app_log().page(query)];
        let mut unreachable = Vec::new();
        while let Some(answer) = asks.join_next().await {
            match answer {
                Ok(Ok(page)) => pages.push(page),
                Ok(Err(down)) => unreachable.push(down),
                // A panicked ask: nothing to merge from it.
                Err(_) => {}
            }
        }
        unreachable.sort_by(|a, b| a.node.cmp(&b.node));
        logs::merge(query, pages, unreachable)
    }
}
