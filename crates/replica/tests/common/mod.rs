//! An in-process network for cluster tests: every node's inbox in one map,
//! messages as direct calls, and nodes that can be cut off; and a
//! linearizability checker for the histories such tests record.

#![allow(dead_code)] // each test binary uses part of this

pub mod linearizable;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use futures_util::StreamExt;
use replica::{AppendAnswers, Appends, Call, Inbox, LinkError, NodeId, Reply, Transport};

/// Starts node `id` with its store in `dir`, on `router`'s network.
pub async fn start_replica(
    router: &Router,
    id: NodeId,
    dir: &std::path::Path,
    timing: &replica::Timing,
) -> replica::Replica {
    // A node restarted in the same process must wait until its previous
    // incarnation's tasks have let go of the file.
    let mut attempts = 0;
    let replica = loop {
        let started = replica::Replica::start(
            id,
            &dir.join(format!("node-{id}.redb")),
            Connection {
                router: router.clone(),
                from: id,
            },
            timing,
        )
        .await;
        match started {
            Ok(r) => break r,
            Err(e) if e.to_string().contains("already open") && attempts < 200 => {
                attempts += 1;
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            Err(e) => panic!("start replica {id}: {e}"),
        }
    };
    router.add(id, replica.inbox());
    replica
}

/// Every node's inbox, and which nodes are cut off.
#[derive(Clone, Default)]
pub struct Router {
    nodes: Arc<Mutex<BTreeMap<NodeId, Inbox>>>,
    down: Arc<Mutex<BTreeSet<NodeId>>>,
}

impl Router {
    pub fn add(&self, id: NodeId, inbox: Inbox) {
        self.nodes.lock().unwrap().insert(id, inbox);
        self.down.lock().unwrap().remove(&id);
    }

    /// Takes a node off the network (its messages in and out fail).
    pub fn cut(&self, id: NodeId) {
        self.down.lock().unwrap().insert(id);
    }

    /// Puts every node back on the network.
    pub fn heal(&self) {
        self.down.lock().unwrap().clear();
    }

    fn is_cut(&self, from: NodeId, to: NodeId) -> bool {
        let down = self.down.lock().unwrap();
        down.contains(&from) || down.contains(&to)
    }

    fn target(&self, from: NodeId, to: NodeId) -> Result<Inbox, LinkError> {
        if self.is_cut(from, to) {
            return Err(LinkError::Unreachable(format!("node {to} is cut off")));
        }
        self.nodes
            .lock()
            .unwrap()
            .get(&to)
            .cloned()
            .ok_or_else(|| LinkError::Unreachable(format!("node {to} is not running")))
    }
}

/// One node's side of the router: messages as direct calls.
pub struct Connection {
    pub router: Router,
    pub from: NodeId,
}

impl Transport for Connection {
    async fn call(&self, to: NodeId, _address: &str, call: Call) -> Result<Reply, LinkError> {
        let inbox = self.router.target(self.from, to)?;
        inbox
            .call(call)
            .await
            .map_err(|e| LinkError::Unreachable(e.to_string()))
    }

    async fn appends(
        &self,
        to: NodeId,
        _address: &str,
        appends: Appends,
    ) -> Result<AppendAnswers, LinkError> {
        let inbox = self.router.target(self.from, to)?;
        // A cut takes effect on a pipe already open, in both directions.
        let (router, from) = (self.router.clone(), self.from);
        let gate = router.clone();
        let appends = appends.take_while(move |_| {
            let open = !gate.is_cut(from, to);
            async move { open }
        });
        let answers = inbox.appends(appends).map(move |answer| {
            if router.is_cut(from, to) {
                return Err(LinkError::Unreachable(format!("node {to} is cut off")));
            }
            answer.map_err(|e| LinkError::Unreachable(e.to_string()))
        });
        Ok(Box::pin(answers))
    }
}
