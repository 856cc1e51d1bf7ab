//! xenstore inside the hypervisor: the tree the guests and the control plane share,
//! served to each guest over its ring page.
//!
//! [`Xenstore`] holds the [`tree::Tree`] and one connection per introduced domain
//! (its watches, open transactions, a partly received request and the bytes still
//! to be written to its reply ring). A guest reaches it through
//! [`Xenstore::serve`] when it kicks its store event channel; the control plane
//! through the `control_*` calls, which act as privileged domain 0. Both may queue
//! watch events for guests, so after either the platform calls `serve` for each
//! guest whose [`Xenstore::has_output`] is set and notifies it if anything moved.
//!
//! Nothing a guest sends can exhaust the hypervisor: requests are bounded by the
//! wire format; nodes, watches, transactions, changes per transaction and value
//! sizes by [`Limits`] (Xen's xenstored quotas); replies by `XENSTORE_PAYLOAD_MAX`
//! (a longer one is `E2BIG`); and everything the store holds for a guest (its
//! nodes, the copy of the tree each of its transactions works on, their change
//! lists, its watches and queued bytes, see [`Xenstore::domain_bytes`]) by a byte
//! quota, [`Limits::max_bytes`] or less if the platform says so
//! ([`Xenstore::set_domain_quota`]), whose overrun is `EQUOTA`. A guest that does
//! not read its replies stops being served (back-pressure) while watch events
//! beyond the output limit are dropped and counted.
//!
//! Locking: none; the platform calls in with its one lock held (see the crate root).

mod domain;
mod path;
#[cfg(test)]
mod quota_tests;
mod request;
mod ring;
#[cfg(test)]
mod tests;
mod tree;
mod watch;

use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;

pub use domain::DomainKeys;
pub use path::{Path, WatchPath};
pub use ring::{RingPage, Served};
pub use tree::{Access, Change, Node, Perm, Perms, Tree, Who};

use crate::abi::codec::AbiRecord;
use crate::abi::xenstore::{XsError, XsdSockmsg};
use crate::addr::DomId;
use watch::Watch;

/// Quotas that keep a guest from exhausting the hypervisor through xenstore.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Nodes one guest may own.
    pub max_nodes: usize,
    /// Bytes in one value a guest writes.
    pub max_value: usize,
    /// Watches one guest may hold.
    pub max_watches: usize,
    /// Transactions one guest may have open.
    pub max_transactions: usize,
    /// Entries in one permission list.
    pub max_perms: usize,
    /// Bytes queued toward one guest's reply ring before it stops being served.
    pub max_output: usize,
    /// Nodes one transaction may change (Xen's `transaction-nodes` quota).
    pub max_transaction_changes: usize,
    /// Bytes the store may hold for one guest (Xen's per-domain memory quota).
    pub max_bytes: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_nodes: 1000,
            max_value: 2048,
            max_watches: 128,
            max_transactions: 10,
            max_perms: 8,
            max_output: 64 * 1024,
            max_transaction_changes: 1024,
            max_bytes: 2560 * 1024,
        }
    }
}

/// Counters for the control plane.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct Stats {
    /// Requests answered.
    pub requests: u64,
    /// Of which with an error reply.
    pub errors: u64,
    /// Watch events queued.
    pub events: u64,
    /// Watch events dropped because the guest's output queue was full.
    pub events_dropped: u64,
    /// Ring resets after a broken index or an unframable message.
    pub ring_resets: u64,
}

/// An open transaction: a private copy of the tree.
#[derive(Clone, Debug)]
struct Transaction {
    tree: Tree,
    base: u64,
    changes: Vec<Change>,
}

/// One guest's connection.
#[derive(Debug)]
struct Conn {
    home: Path,
    watches: Vec<Watch>,
    transactions: BTreeMap<u32, Transaction>,
    next_tx: u32,
    /// A request received in part (header, then payload).
    input: Vec<u8>,
    /// Bytes for the reply ring.
    output: VecDeque<u8>,
    /// The most bytes the store may hold for this guest.
    quota: usize,
}

impl Conn {
    /// What the connection itself holds: watches, transactions (each a copy of the
    /// tree and its change list) and queued bytes.
    fn bytes(&self) -> usize {
        let watches: usize = self.watches.iter().map(Watch::bytes).sum();
        let transactions: usize = self
            .transactions
            .values()
            .map(|t| {
                2 * size_of::<(u32, Transaction)>()
                    + t.tree.bytes()
                    + t.changes
                        .iter()
                        .map(|c| size_of::<Change>() + c.path.as_str().len())
                        .sum::<usize>()
            })
            .sum();
        watches + transactions + self.input.capacity() + self.output.len()
    }
}

/// The store.
pub struct Xenstore {
    tree: Tree,
    conns: BTreeMap<DomId, Conn>,
    limits: Limits,
    stats: Stats,
}

impl Xenstore {
    /// An empty store: the root and `/local/domain`, owned by domain 0.
    pub fn new(limits: Limits) -> Xenstore {
        let mut store = Xenstore {
            tree: Tree::new(),
            conns: BTreeMap::new(),
            limits,
            stats: Stats::default(),
        };
        let local = Path::root().child("local").and_then(|p| p.child("domain"));
        if let Some(p) = local {
            // The control plane may always create nodes in an empty tree.
            let _ = store.tree.mkdir(Who::Control, &p, &limits, usize::MAX);
        }
        store
    }

    /// The tree (read-only).
    pub fn tree(&self) -> &Tree {
        &self.tree
    }

    /// The counters.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Whether `dom` has bytes waiting for its reply ring.
    pub fn has_output(&self, dom: DomId) -> bool {
        self.conns.get(&dom).is_some_and(|c| !c.output.is_empty())
    }

    /// Creates `dom`'s home with the keys a toolstack writes and opens its
    /// connection.
    pub fn introduce_domain(&mut self, dom: DomId, keys: &DomainKeys<'_>) -> Result<(), XsError> {
        if self.conns.contains_key(&dom) || dom.0 == 0 || dom >= DomId::FIRST_RESERVED {
            return Err(XsError::EEXIST);
        }
        let home = Path::home(dom);
        domain::write_keys(&mut self.tree, &home, dom, keys, &self.limits)?;
        self.conns.insert(
            dom,
            Conn {
                home,
                watches: Vec::new(),
                transactions: BTreeMap::new(),
                next_tx: 1,
                input: Vec::new(),
                output: VecDeque::new(),
                quota: self.limits.max_bytes,
            },
        );
        self.fire_special("@introduceDomain");
        Ok(())
    }

    /// Bytes the store holds for `dom`: the nodes it owns and its connection's
    /// watches, transactions and queued bytes.
    pub fn domain_bytes(&self, dom: DomId) -> usize {
        self.tree.owned_bytes(dom) + self.conns.get(&dom).map_or(0, Conn::bytes)
    }

    /// Caps what the store may hold for `dom` at `bytes` (never above
    /// [`Limits::max_bytes`]); the platform passes what the domain's memory pool
    /// has room for. What it holds already stays.
    pub fn set_domain_quota(&mut self, dom: DomId, bytes: usize) {
        let max = self.limits.max_bytes;
        if let Some(conn) = self.conns.get_mut(&dom) {
            conn.quota = bytes.min(max);
        }
    }

    /// Bytes `dom` may still add before it reaches its quota.
    fn room(&self, dom: DomId) -> usize {
        let quota = self.conns.get(&dom).map_or(0, |c| c.quota);
        quota.saturating_sub(self.domain_bytes(dom))
    }

    /// Closes `dom`'s connection and removes its home.
    pub fn release_domain(&mut self, dom: DomId) -> Result<(), XsError> {
        let conn = self.conns.remove(&dom).ok_or(XsError::ENOENT)?;
        if let Some(change) = self.tree.rm(Who::Control, &conn.home)? {
            self.fire(&change);
        }
        self.fire_special("@releaseDomain");
        Ok(())
    }

    /// Reads a node as the control plane; relative paths are under `dom`'s home.
    pub fn control_read(&self, dom: DomId, path: &str) -> Result<Vec<u8>, XsError> {
        let (path, _) = Path::parse(path.as_bytes(), &Path::home(dom))?;
        Ok(self.tree.read(Who::Control, &path)?.value.clone())
    }

    /// Writes a node as the control plane and fires the watches on it.
    pub fn control_write(&mut self, dom: DomId, path: &str, value: &[u8]) -> Result<(), XsError> {
        let (path, _) = Path::parse(path.as_bytes(), &Path::home(dom))?;
        let change = self
            .tree
            .write(Who::Control, &path, value, &self.limits, usize::MAX)?;
        self.fire(&change);
        Ok(())
    }

    /// Lists a node's children as the control plane.
    pub fn control_list(&self, dom: DomId, path: &str) -> Result<Vec<&str>, XsError> {
        let (path, _) = Path::parse(path.as_bytes(), &Path::home(dom))?;
        self.tree.read(Who::Control, &path)?;
        Ok(self.tree.children(&path))
    }

    /// Removes a node and its subtree as the control plane.
    pub fn control_rm(&mut self, dom: DomId, path: &str) -> Result<(), XsError> {
        let (path, _) = Path::parse(path.as_bytes(), &Path::home(dom))?;
        if let Some(change) = self.tree.rm(Who::Control, &path)? {
            self.fire(&change);
        }
        Ok(())
    }

    /// Queues the watch events `change` triggers.
    fn fire(&mut self, change: &Change) {
        let Xenstore {
            tree,
            conns,
            limits,
            stats,
        } = self;
        for (&dom, conn) in conns.iter_mut() {
            for w in &conn.watches {
                if let Some(event) = w.event_for(change, tree, Who::Guest(dom), &conn.home) {
                    queue_event(&mut conn.output, limits, stats, &event);
                }
            }
        }
    }

    fn fire_special(&mut self, name: &str) {
        let Xenstore {
            conns,
            limits,
            stats,
            ..
        } = self;
        for conn in conns.values_mut() {
            for w in &conn.watches {
                if w.is_special(name) {
                    let event = w.event(name);
                    queue_event(&mut conn.output, limits, stats, &event);
                }
            }
        }
    }
}

/// Appends one message to a connection's output.
fn queue(output: &mut VecDeque<u8>, header: XsdSockmsg, payload: &[u8]) {
    let mut h = [0u8; XsdSockmsg::SIZE];
    header.encode(&mut h);
    output.extend(h);
    output.extend(payload.iter().copied());
}

/// Appends a watch event unless the output is over its limit.
fn queue_event(output: &mut VecDeque<u8>, limits: &Limits, stats: &mut Stats, payload: &[u8]) {
    if output.len() + XsdSockmsg::SIZE + payload.len() > limits.max_output {
        stats.events_dropped += 1;
        return;
    }
    stats.events += 1;
    let header = XsdSockmsg {
        ty: crate::abi::xenstore::msg::WATCH_EVENT,
        req_id: 0,
        tx_id: 0,
        len: payload.len() as u32,
    };
    queue(output, header, payload);
}
