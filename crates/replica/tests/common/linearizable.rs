//! A linearizability checker for registers (Wing & Gong's search, with
//! memoization as in Lowe's and Horn & Kroening's refinements): is there an
//! order of the operations, consistent with their real-time order, in which
//! a sequential register gives every observed result?
//!
//! Keys are independent registers, so each key's history is checked alone.
//! An operation whose outcome is unknown (the client gave up on it) may
//! have taken effect at any point after its invocation, or never.

use std::collections::{BTreeMap, HashSet};

/// What a client did to one register.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    Write(u64),
    /// A read and the value it returned (`None`: absent).
    Read(Option<u64>),
    /// Compare-and-swap and whether it swapped.
    Cas {
        expected: Option<u64>,
        new: u64,
        swapped: bool,
    },
}

/// One operation with its real-time interval; `returned: None` means the
/// outcome is unknown.
#[derive(Clone, Debug)]
pub struct Entry {
    pub key: String,
    pub op: Op,
    pub invoked: u64,
    pub returned: Option<u64>,
}

/// Checks every key's history; on failure, says which key.
pub fn check(history: &[Entry]) -> Result<(), String> {
    let mut by_key: BTreeMap<&str, Vec<&Entry>> = BTreeMap::new();
    for e in history {
        by_key.entry(&e.key).or_default().push(e);
    }
    for (key, ops) in by_key {
        if !linearizable(&ops) {
            return Err(format!(
                "key `{key}`: no linearization of {} operations",
                ops.len()
            ));
        }
    }
    Ok(())
}

fn step(state: Option<u64>, op: &Op, known: bool) -> Option<Option<u64>> {
    match *op {
        Op::Write(v) => Some(Some(v)),
        Op::Read(seen) => (!known || seen == state).then_some(state),
        Op::Cas {
            expected,
            new,
            swapped,
        } => {
            let matches = state == expected;
            if !known {
                // Unknown outcome: it swapped if it could.
                Some(if matches { Some(new) } else { state })
            } else if matches == swapped {
                Some(if swapped { Some(new) } else { state })
            } else {
                None
            }
        }
    }
}

fn linearizable(ops: &[&Entry]) -> bool {
    assert!(
        ops.len() <= 128,
        "the checker handles up to 128 operations per key"
    );
    let done_mask: u128 = ops
        .iter()
        .enumerate()
        .filter(|(_, e)| e.returned.is_some())
        .fold(0, |m, (i, _)| m | 1 << i);
    let mut seen = HashSet::new();
    search(ops, 0, None, done_mask, &mut seen)
}

/// Depth-first search over which operation takes effect next.
fn search(
    ops: &[&Entry],
    taken: u128,
    state: Option<u64>,
    done_mask: u128,
    seen: &mut HashSet<(u128, Option<u64>)>,
) -> bool {
    if taken & done_mask == done_mask {
        return true; // every completed operation is placed; unknown ones may never have happened
    }
    if !seen.insert((taken, state)) {
        return false;
    }
    // An operation can go next only if no pending completed operation
    // returned before it was invoked.
    let horizon = ops
        .iter()
        .enumerate()
        .filter(|(i, _)| taken & (1 << i) == 0)
        .filter_map(|(_, e)| e.returned)
        .min()
        .unwrap_or(u64::MAX);
    for (i, e) in ops.iter().enumerate() {
        if taken & (1 << i) != 0 || e.invoked > horizon {
            continue;
        }
        if let Some(next) = step(state, &e.op, e.returned.is_some())
            && search(ops, taken | 1 << i, next, done_mask, seen)
        {
            return true;
        }
    }
    false
}

/// Self-checks of the checker, run by the test that uses it.
pub fn self_check() {
    let e = |op, invoked, returned| Entry {
        key: "k".into(),
        op,
        invoked,
        returned,
    };
    // Sequential and consistent.
    assert!(
        check(&[
            e(Op::Write(1), 0, Some(1)),
            e(Op::Read(Some(1)), 2, Some(3))
        ])
        .is_ok()
    );
    // A read that saw a value nobody wrote.
    assert!(
        check(&[
            e(Op::Write(1), 0, Some(1)),
            e(Op::Read(Some(2)), 2, Some(3))
        ])
        .is_err()
    );
    // A stale read after a completed write: not linearizable.
    assert!(
        check(&[
            e(Op::Write(1), 0, Some(1)),
            e(Op::Write(2), 2, Some(3)),
            e(Op::Read(Some(1)), 4, Some(5)),
        ])
        .is_err()
    );
    // Concurrent write and read: either value is fine.
    assert!(
        check(&[
            e(Op::Write(1), 0, Some(1)),
            e(Op::Write(2), 2, Some(6)),
            e(Op::Read(Some(1)), 3, Some(5))
        ])
        .is_ok()
    );
    // An unknown write may have happened...
    assert!(check(&[e(Op::Write(7), 0, None), e(Op::Read(Some(7)), 2, Some(3))]).is_ok());
    // ...or not.
    assert!(check(&[e(Op::Write(7), 0, None), e(Op::Read(None), 2, Some(3))]).is_ok());
    // A CAS that claims to swap from a value that was not there.
    assert!(
        check(&[
            e(Op::Write(1), 0, Some(1)),
            e(
                Op::Cas {
                    expected: Some(2),
                    new: 3,
                    swapped: true
                },
                2,
                Some(3)
            ),
        ])
        .is_err()
    );
}
