//! The node tree, its permissions and the per-domain node quota.
//!
//! The tree counts the nodes and bytes (`node_bytes`) each domain owns and the
//! bytes of the whole (what a transaction's copy costs); a guest's write or mkdir
//! that would add more bytes than the caller allows is refused with `EQUOTA`
//! before anything changes.
//!
//! Nodes live in one ordered map keyed by absolute path text, so a node's
//! descendants are the consecutive keys that start with `path/`. Every node has a
//! value and a permission list; every node but the root has a parent.
//!
//! Permissions follow Xen: the first entry names the owner and the access everyone
//! else gets by default; later entries grant a domain its own access. The control
//! plane (domain 0) and a node's owner may do anything to it; creating a node needs
//! write access to its nearest existing ancestor, whose permissions the new node
//! copies with the creating guest as owner. Removing a node needs write access to
//! it and takes its whole subtree.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use core::ops::Bound;

use super::path::Path;
use super::Limits;
use crate::abi::xenstore::XsError;
use crate::addr::DomId;

/// Who asks.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Who {
    /// The control plane: domain 0, privileged.
    Control,
    /// A guest.
    Guest(DomId),
}

impl Who {
    /// The domain id that owns what this caller creates.
    pub fn domid(self) -> DomId {
        match self {
            Who::Control => DomId(0),
            Who::Guest(d) => d,
        }
    }
}

/// Access one permission entry grants.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Access {
    /// `n`: nothing.
    None,
    /// `r`: read.
    Read,
    /// `w`: write.
    Write,
    /// `b`: both.
    Both,
}

impl Access {
    fn reads(self) -> bool {
        matches!(self, Access::Read | Access::Both)
    }

    fn writes(self) -> bool {
        matches!(self, Access::Write | Access::Both)
    }

    fn letter(self) -> char {
        match self {
            Access::None => 'n',
            Access::Read => 'r',
            Access::Write => 'w',
            Access::Both => 'b',
        }
    }
}

/// One permission entry.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Perm {
    /// The domain it names.
    pub dom: DomId,
    /// What it grants.
    pub access: Access,
}

impl Perm {
    /// Parses `<n|r|w|b><domid>`.
    pub fn parse(raw: &[u8]) -> Result<Perm, XsError> {
        let (&letter, digits) = raw.split_first().ok_or(XsError::EINVAL)?;
        let access = match letter {
            b'n' => Access::None,
            b'r' => Access::Read,
            b'w' => Access::Write,
            b'b' => Access::Both,
            _ => return Err(XsError::EINVAL),
        };
        let text = core::str::from_utf8(digits).map_err(|_| XsError::EINVAL)?;
        if text.is_empty() || !text.bytes().all(|c| c.is_ascii_digit()) {
            return Err(XsError::EINVAL);
        }
        let dom = text.parse::<u16>().map_err(|_| XsError::EINVAL)?;
        Ok(Perm {
            dom: DomId(dom),
            access,
        })
    }

    /// The entry as the wire writes it.
    pub fn to_text(self) -> String {
        alloc::format!("{}{}", self.access.letter(), self.dom.0)
    }
}

/// A node's permission list.
///
/// # Invariants
///
/// Never empty: entry 0 is the owner and the default access.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Perms(Vec<Perm>);

impl Perms {
    /// Owned by `owner`, everyone else gets `default`.
    pub fn owned(owner: DomId, default: Access) -> Perms {
        Perms(alloc::vec![Perm {
            dom: owner,
            access: default,
        }])
    }

    /// From a list; `None` if it is empty.
    pub fn from_list(list: Vec<Perm>) -> Option<Perms> {
        (!list.is_empty()).then_some(Perms(list))
    }

    /// Adds an entry for one domain.
    pub fn grant(mut self, dom: DomId, access: Access) -> Perms {
        self.0.push(Perm { dom, access });
        self
    }

    /// The owner.
    pub fn owner(&self) -> DomId {
        self.first().dom
    }

    /// Entry 0: the owner and the default access.
    #[expect(
        clippy::indexing_slicing,
        reason = "never empty (the invariant): each constructor puts the owner first and nothing removes it"
    )]
    fn first(&self) -> Perm {
        self.0[0]
    }

    /// The entries.
    pub fn entries(&self) -> &[Perm] {
        &self.0
    }

    fn access(&self, who: Who) -> Access {
        match who {
            Who::Control => Access::Both,
            Who::Guest(d) if d == self.owner() => Access::Both,
            Who::Guest(d) => self
                .0
                .iter()
                .skip(1)
                .find(|p| p.dom == d)
                .map_or(self.first().access, |p| p.access),
        }
    }

    /// Whether `who` may read the node.
    pub fn can_read(&self, who: Who) -> bool {
        self.access(who).reads()
    }

    /// Whether `who` may write the node.
    pub fn can_write(&self, who: Who) -> bool {
        self.access(who).writes()
    }
}

/// One node.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Node {
    /// Its value.
    pub value: Vec<u8>,
    /// Its permissions.
    pub perms: Perms,
}

/// A change to the tree, for the watches.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Change {
    /// The node written, created, re-permissioned or removed.
    pub path: Path,
    /// Its subtree went with it (watches below fire too).
    pub removed: bool,
}

/// The tree.
///
/// # Invariants
///
/// The root exists; every other node's parent exists; `owned[d]` is the number of
/// nodes whose owner is `d` and `owned_bytes[d]` their `node_bytes`; `bytes` is
/// the sum over all nodes; `generation` grows with every change.
#[derive(Clone, Debug)]
pub struct Tree {
    nodes: BTreeMap<String, Node>,
    owned: BTreeMap<DomId, u32>,
    owned_bytes: BTreeMap<DomId, usize>,
    bytes: usize,
    generation: u64,
}

/// The hypervisor memory one node takes: its path, value and permissions, and its
/// map entry counted twice because the B-tree keeps its nodes at least half full.
pub fn node_bytes(path: &str, node: &Node) -> usize {
    2 * (size_of::<String>() + size_of::<Node>())
        + path.len()
        + node.value.len()
        + size_of_val(node.perms.entries())
}

impl Tree {
    /// A tree with only the root, owned by domain 0 and private.
    pub fn new() -> Tree {
        let mut t = Tree {
            nodes: BTreeMap::new(),
            owned: BTreeMap::new(),
            owned_bytes: BTreeMap::new(),
            bytes: 0,
            generation: 0,
        };
        t.insert(
            &Path::root(),
            Node {
                value: Vec::new(),
                perms: Perms::owned(DomId(0), Access::None),
            },
        );
        t
    }

    /// Bumped by every change.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Nodes owned by `dom`.
    pub fn owned_by(&self, dom: DomId) -> u32 {
        self.owned.get(&dom).copied().unwrap_or(0)
    }

    /// Bytes of the nodes owned by `dom`.
    pub fn owned_bytes(&self, dom: DomId) -> usize {
        self.owned_bytes.get(&dom).copied().unwrap_or(0)
    }

    /// Bytes of all nodes (what a copy of the tree costs).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// A node, without permission checks.
    pub fn get(&self, path: &Path) -> Option<&Node> {
        self.nodes.get(path.as_str())
    }

    /// A node `who` may read.
    pub fn read(&self, who: Who, path: &Path) -> Result<&Node, XsError> {
        let node = self.nodes.get(path.as_str()).ok_or(XsError::ENOENT)?;
        if !node.perms.can_read(who) {
            return Err(XsError::EACCES);
        }
        Ok(node)
    }

    /// The names of a node's children, in order.
    pub fn children(&self, path: &Path) -> Vec<&str> {
        let prefix = path.descendant_prefix();
        self.descendants(&prefix)
            .filter_map(|p| {
                let rest = &p[prefix.len()..];
                (!rest.is_empty() && !rest.contains('/')).then_some(rest)
            })
            .collect()
    }

    /// Sets a node's value, creating it and its missing ancestors if needed. A
    /// guest is refused with `EQUOTA` if that would add more than `room` bytes.
    pub fn write(
        &mut self,
        who: Who,
        path: &Path,
        value: &[u8],
        limits: &Limits,
        room: usize,
    ) -> Result<Change, XsError> {
        if matches!(who, Who::Guest(_)) && value.len() > limits.max_value {
            return Err(XsError::E2BIG);
        }
        if let Some(node) = self.nodes.get(path.as_str()) {
            if !node.perms.can_write(who) {
                return Err(XsError::EACCES);
            }
            let growth = value.len().saturating_sub(node.value.len());
            if matches!(who, Who::Guest(_)) && growth > room {
                return Err(XsError::EQUOTA);
            }
            let mut node = self.remove(path.as_str()).ok_or(XsError::ENOENT)?;
            node.value = value.to_vec();
            self.insert(path, node);
            self.generation += 1;
        } else {
            self.create(who, path, value, limits, room)?;
        }
        Ok(Change {
            path: path.clone(),
            removed: false,
        })
    }

    /// Creates a node with an empty value if it does not exist (`None` if it did).
    pub fn mkdir(
        &mut self,
        who: Who,
        path: &Path,
        limits: &Limits,
        room: usize,
    ) -> Result<Option<Change>, XsError> {
        if let Some(node) = self.nodes.get(path.as_str()) {
            return if node.perms.can_read(who) {
                Ok(None)
            } else {
                Err(XsError::EACCES)
            };
        }
        self.create(who, path, &[], limits, room)?;
        Ok(Some(Change {
            path: path.clone(),
            removed: false,
        }))
    }

    /// Removes a node and its subtree (`None` if it did not exist but its parent
    /// does, which Xen treats as success).
    pub fn rm(&mut self, who: Who, path: &Path) -> Result<Option<Change>, XsError> {
        let Some(node) = self.nodes.get(path.as_str()) else {
            let parent_exists = path
                .parent()
                .is_some_and(|p| self.nodes.contains_key(p.as_str()));
            return if parent_exists {
                Ok(None)
            } else {
                Err(XsError::ENOENT)
            };
        };
        if !node.perms.can_write(who) {
            return Err(XsError::EACCES);
        }
        if path.parent().is_none() {
            return Err(XsError::EINVAL);
        }
        let prefix = path.descendant_prefix();
        let doomed: Vec<String> = self.descendants(&prefix).map(String::from).collect();
        for p in doomed.iter().map(String::as_str).chain([path.as_str()]) {
            self.remove(p);
        }
        self.generation += 1;
        Ok(Some(Change {
            path: path.clone(),
            removed: true,
        }))
    }

    /// Replaces a node's permissions. Only the control plane may give a node away.
    pub fn set_perms(
        &mut self,
        who: Who,
        path: &Path,
        perms: Perms,
        limits: &Limits,
    ) -> Result<Change, XsError> {
        let node = self.nodes.get(path.as_str()).ok_or(XsError::ENOENT)?;
        if !node.perms.can_write(who) {
            return Err(XsError::EACCES);
        }
        if perms.entries().len() > limits.max_perms {
            return Err(XsError::E2BIG);
        }
        let old_owner = node.perms.owner();
        if who != Who::Control && perms.owner() != old_owner {
            return Err(XsError::EACCES);
        }
        let mut node = self.remove(path.as_str()).ok_or(XsError::ENOENT)?;
        node.perms = perms;
        self.insert(path, node);
        self.generation += 1;
        Ok(Change {
            path: path.clone(),
            removed: false,
        })
    }

    /// Checks the invariants (for tests).
    pub fn check(&self) -> Result<(), &'static str> {
        let mut owned = BTreeMap::new();
        let mut owned_bytes = BTreeMap::new();
        for (path, node) in &self.nodes {
            let parent = match path.rfind('/') {
                Some(0) if path != "/" => Some("/"),
                Some(0) | None => None,
                Some(cut) => Some(&path[..cut]),
            };
            if parent.is_some_and(|p| !self.nodes.contains_key(p)) {
                return Err("a node without its parent");
            }
            *owned.entry(node.perms.owner()).or_insert(0u32) += 1;
            *owned_bytes.entry(node.perms.owner()).or_insert(0usize) += node_bytes(path, node);
        }
        if owned_bytes != self.owned_bytes || owned_bytes.values().sum::<usize>() != self.bytes {
            return Err("byte counts disagree");
        }
        if !self.nodes.contains_key("/") {
            return Err("no root");
        }
        if owned != self.owned {
            return Err("owner counts disagree");
        }
        Ok(())
    }

    fn create(
        &mut self,
        who: Who,
        path: &Path,
        value: &[u8],
        limits: &Limits,
        room: usize,
    ) -> Result<(), XsError> {
        let mut missing = alloc::vec![path.clone()];
        let mut ancestor = path.parent();
        let base = loop {
            let p = ancestor.ok_or(XsError::ENOENT)?;
            match self.nodes.get(p.as_str()) {
                Some(node) => break node.perms.clone(),
                None => {
                    ancestor = p.parent();
                    missing.push(p);
                }
            }
        };
        if !base.can_write(who) {
            return Err(XsError::EACCES);
        }
        // As in Xen: a guest owns what it creates; what the control plane creates
        // keeps the parent's permissions, so a guest still reads (and, where it owns
        // the parent, writes) what the host puts in its own subtree.
        let mut perms = base;
        if let Who::Guest(d) = who {
            if let Some(owner) = perms.0.first_mut() {
                owner.dom = d;
            }
            let count = self.owned_by(d) as usize + missing.len();
            if count > limits.max_nodes {
                return Err(XsError::ENOSPC);
            }
            let empty = Node {
                value: Vec::new(),
                perms: perms.clone(),
            };
            let growth: usize = missing
                .iter()
                .map(|p| node_bytes(p.as_str(), &empty))
                .sum::<usize>()
                + value.len();
            if growth > room {
                return Err(XsError::EQUOTA);
            }
        }
        for p in missing.iter().rev() {
            let v = if p == path {
                value.to_vec()
            } else {
                Vec::new()
            };
            self.insert(
                p,
                Node {
                    value: v,
                    perms: perms.clone(),
                },
            );
        }
        self.generation += 1;
        Ok(())
    }

    /// Keys strictly below the node whose descendant prefix is `prefix`.
    fn descendants<'a: 'b, 'b>(&'a self, prefix: &'b str) -> impl Iterator<Item = &'a str> + 'b {
        self.nodes
            .range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
            .map(|(p, _)| p.as_str())
            .take_while(move |p| p.starts_with(prefix))
            .filter(move |p| *p != prefix)
    }

    fn insert(&mut self, path: &Path, node: Node) {
        let bytes = node_bytes(path.as_str(), &node);
        *self.owned.entry(node.perms.owner()).or_insert(0) += 1;
        *self.owned_bytes.entry(node.perms.owner()).or_insert(0) += bytes;
        self.bytes += bytes;
        if let Some(old) = self.nodes.insert(String::from(path.as_str()), node) {
            self.forget(path.as_str(), &old);
        }
    }

    fn remove(&mut self, path: &str) -> Option<Node> {
        let node = self.nodes.remove(path)?;
        self.forget(path, &node);
        Some(node)
    }

    /// Takes a node that left the map out of the counts.
    fn forget(&mut self, path: &str, node: &Node) {
        let dom = node.perms.owner();
        let bytes = node_bytes(path, node);
        self.bytes -= bytes;
        if let Some(n) = self.owned_bytes.get_mut(&dom) {
            *n -= bytes;
            if *n == 0 {
                self.owned_bytes.remove(&dom);
            }
        }
        if let Some(n) = self.owned.get_mut(&dom) {
            *n -= 1;
            if *n == 0 {
                self.owned.remove(&dom);
            }
        }
    }
}

impl Default for Tree {
    fn default() -> Tree {
        Tree::new()
    }
}
