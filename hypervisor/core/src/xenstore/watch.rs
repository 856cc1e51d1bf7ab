//! Watches: which change a watch sees and the event it then gets.
//!
//! A watch on a node fires for a change to that node or any node below it, with the
//! changed node's path; when a node is removed with its subtree, watches below it
//! fire too, with their own path. A guest only hears about nodes it may read (or,
//! for removed nodes, nodes inside its own home). A watch set with a relative path
//! reports relative paths. The event payload is `path\0token\0`.

use alloc::vec::Vec;

use super::path::{Path, WatchPath};
use super::tree::{Change, Tree, Who};

/// One registered watch.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Watch {
    /// What it watches.
    pub path: WatchPath,
    /// The client's token, echoed in events.
    pub token: Vec<u8>,
    /// Whether it was set with a relative path.
    pub relative: bool,
}

impl Watch {
    /// The hypervisor memory the watch takes.
    pub fn bytes(&self) -> usize {
        let path = match &self.path {
            WatchPath::Node(p) => p.as_str().len(),
            WatchPath::Special(_) => 0,
        };
        size_of::<Watch>() + path + self.token.len()
    }

    /// Whether this is a watch on the special name `name`.
    pub fn is_special(&self, name: &str) -> bool {
        matches!(self.path, WatchPath::Special(s) if s == name)
    }

    /// The event payload for a change at `path` (already made relative if needed).
    pub fn event(&self, path: &str) -> Vec<u8> {
        let mut e = Vec::with_capacity(path.len() + self.token.len() + 2);
        e.extend_from_slice(path.as_bytes());
        e.push(0);
        e.extend_from_slice(&self.token);
        e.push(0);
        e
    }

    /// The event registration fires straight away.
    pub fn initial_event(&self, home: &Path) -> Vec<u8> {
        match &self.path {
            WatchPath::Node(p) => self.event(self.shown(p, home)),
            WatchPath::Special(s) => self.event(s),
        }
    }

    /// The event `change` gives `who` (the watch's owner), if any.
    pub fn event_for(
        &self,
        change: &Change,
        tree: &Tree,
        who: Who,
        home: &Path,
    ) -> Option<Vec<u8>> {
        let WatchPath::Node(watched) = &self.path else {
            return None;
        };
        let fired = if change.path.is_within(watched) {
            &change.path
        } else if change.removed && watched.is_within(&change.path) {
            watched
        } else {
            return None;
        };
        let visible = match tree.get(fired) {
            Some(node) => node.perms.can_read(who),
            None => fired.is_within(home),
        };
        visible.then(|| self.event(self.shown(fired, home)))
    }

    fn shown<'a>(&self, path: &'a Path, home: &Path) -> &'a str {
        if self.relative {
            path.relative_to(home)
        } else {
            path.as_str()
        }
    }
}
