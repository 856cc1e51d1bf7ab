//! One guest request: decode the payload for its type, act on the tree (or the
//! open transaction it names), and queue the reply and any watch events.
//!
//! Payloads are NUL-separated strings; every argument is checked here and a bad one
//! is an `XS_ERROR` reply naming the error, never a panic. Replies echo the request's
//! type, `req_id` and `tx_id`; success without data is `OK\0`. Operations only the
//! toolstack may use (`INTRODUCE`, `RELEASE`, `SET_TARGET`, `RESUME`, `CONTROL`,
//! `IS_DOMAIN_INTRODUCED`) get `EACCES`; unknown types get `EINVAL`.

use alloc::format;
use alloc::vec::Vec;

use super::path::{Path, WatchPath};
use super::tree::{Change, Perm, Perms, Who};
use super::watch::Watch;
use super::{queue, queue_event, Conn, Transaction, Xenstore};
use crate::abi::xenstore::{msg, XsError, XsdSockmsg, PAYLOAD_MAX};
use crate::addr::DomId;

impl Xenstore {
    /// Handles one complete request from `dom` and queues what it produces.
    pub(super) fn request(&mut self, dom: DomId, header: XsdSockmsg, payload: &[u8]) {
        self.stats.requests += 1;
        let mut events = Vec::new();
        let reply = self.execute(dom, header, payload, &mut events);
        let Some(conn) = self.conns.get_mut(&dom) else {
            return;
        };
        // Replies go to a ring whose messages carry at most XENSTORE_PAYLOAD_MAX
        // bytes (a long DIRECTORY is the usual case), as in xenstored.
        let reply = reply.and_then(|body| {
            if body.len() > PAYLOAD_MAX {
                Err(XsError::E2BIG)
            } else {
                Ok(body)
            }
        });
        let (ty, body) = match reply {
            Ok(body) => (header.ty, body),
            Err(e) => {
                self.stats.errors += 1;
                let mut b = Vec::from(e.name().as_bytes());
                b.push(0);
                (msg::ERROR, b)
            }
        };
        let reply_header = XsdSockmsg {
            ty,
            req_id: header.req_id,
            tx_id: header.tx_id,
            len: body.len() as u32,
        };
        queue(&mut conn.output, reply_header, &body);
        for e in events {
            queue_event(&mut conn.output, &self.limits, &mut self.stats, &e);
        }
    }

    /// Runs the request; returns the reply payload. Watch events for the caller that
    /// must follow its reply (a new watch's first event) go in `after`.
    fn execute(
        &mut self,
        dom: DomId,
        h: XsdSockmsg,
        payload: &[u8],
        after: &mut Vec<Vec<u8>>,
    ) -> Result<Vec<u8>, XsError> {
        let who = Who::Guest(dom);
        let home = self.conns.get(&dom).ok_or(XsError::EINVAL)?.home.clone();
        match h.ty {
            msg::READ | msg::DIRECTORY | msg::GET_PERMS => {
                let path = one_path(payload, &home)?;
                let tree = self.tree_for(dom, h.tx_id)?;
                let node = tree.read(who, &path)?;
                Ok(match h.ty {
                    msg::READ => node.value.clone(),
                    msg::DIRECTORY => nul_list(tree.children(&path).into_iter()),
                    _ => nul_list(node.perms.entries().iter().map(|p| p.to_text())),
                })
            }
            msg::WRITE => {
                let (raw, value) = split_first_arg(payload)?;
                let (path, _) = Path::parse(raw, &home)?;
                let limits = self.limits;
                let room = self.room_for_change(dom, h.tx_id)?;
                let change = self
                    .tree_for_mut(dom, h.tx_id)?
                    .write(who, &path, value, &limits, room)?;
                self.changed(dom, h.tx_id, change);
                Ok(ok())
            }
            msg::MKDIR => {
                let path = one_path(payload, &home)?;
                let limits = self.limits;
                let room = self.room_for_change(dom, h.tx_id)?;
                if let Some(c) = self
                    .tree_for_mut(dom, h.tx_id)?
                    .mkdir(who, &path, &limits, room)?
                {
                    self.changed(dom, h.tx_id, c);
                }
                Ok(ok())
            }
            msg::RM => {
                let path = one_path(payload, &home)?;
                self.room_for_change(dom, h.tx_id)?;
                if let Some(c) = self.tree_for_mut(dom, h.tx_id)?.rm(who, &path)? {
                    self.changed(dom, h.tx_id, c);
                }
                Ok(ok())
            }
            msg::SET_PERMS => {
                let args = nul_args(payload)?;
                let (raw, perms) = args.split_first().ok_or(XsError::EINVAL)?;
                let (path, _) = Path::parse(raw, &home)?;
                let list = perms
                    .iter()
                    .map(|p| Perm::parse(p))
                    .collect::<Result<Vec<_>, _>>()?;
                if list.len() > self.limits.max_perms {
                    return Err(XsError::E2BIG);
                }
                let perms = Perms::from_list(list).ok_or(XsError::EINVAL)?;
                let limits = self.limits;
                self.room_for_change(dom, h.tx_id)?;
                let change = self
                    .tree_for_mut(dom, h.tx_id)?
                    .set_perms(who, &path, perms, &limits)?;
                self.changed(dom, h.tx_id, change);
                Ok(ok())
            }
            msg::WATCH => {
                let watch = parse_watch(payload, &home)?;
                let max = self.limits.max_watches;
                if watch.bytes() > self.room(dom) {
                    return Err(XsError::EQUOTA);
                }
                let conn = self.conn(dom)?;
                if conn
                    .watches
                    .iter()
                    .any(|w| w.path == watch.path && w.token == watch.token)
                {
                    return Err(XsError::EEXIST);
                }
                if conn.watches.len() >= max {
                    return Err(XsError::E2BIG);
                }
                after.push(watch.initial_event(&home));
                conn.watches.push(watch);
                Ok(ok())
            }
            msg::UNWATCH => {
                let watch = parse_watch(payload, &home)?;
                let conn = self.conn(dom)?;
                let at = conn
                    .watches
                    .iter()
                    .position(|w| w.path == watch.path && w.token == watch.token)
                    .ok_or(XsError::ENOENT)?;
                conn.watches.remove(at);
                Ok(ok())
            }
            msg::RESET_WATCHES => {
                let conn = self.conn(dom)?;
                conn.watches.clear();
                conn.transactions.clear();
                Ok(ok())
            }
            msg::TRANSACTION_START => {
                if h.tx_id != 0 {
                    return Err(XsError::EBUSY);
                }
                let max = self.limits.max_transactions;
                if self.conn(dom)?.transactions.len() >= max {
                    return Err(XsError::ENOSPC);
                }
                // A transaction works on its own copy of the tree: the guest pays
                // for the copy.
                if self.tree.bytes() > self.room(dom) {
                    return Err(XsError::EQUOTA);
                }
                let tree = self.tree.clone();
                let conn = self.conn(dom)?;
                let id = conn.next_tx;
                conn.next_tx = conn.next_tx.wrapping_add(1).max(1);
                let base = tree.generation();
                conn.transactions.insert(
                    id,
                    Transaction {
                        tree,
                        base,
                        changes: Vec::new(),
                    },
                );
                Ok(nul_list([format!("{id}")].into_iter()))
            }
            msg::TRANSACTION_END => {
                let commit = match nul_args(payload)?.as_slice() {
                    [b"T"] => true,
                    [b"F"] => false,
                    _ => return Err(XsError::EINVAL),
                };
                let tx = self
                    .conn(dom)?
                    .transactions
                    .remove(&h.tx_id)
                    .ok_or(XsError::ENOENT)?;
                if commit {
                    if tx.base != self.tree.generation() {
                        return Err(XsError::EAGAIN);
                    }
                    self.tree = tx.tree;
                    for c in &tx.changes {
                        self.fire(c);
                    }
                }
                Ok(ok())
            }
            msg::GET_DOMAIN_PATH => {
                let args = nul_args(payload)?;
                let [id] = args.as_slice() else {
                    return Err(XsError::EINVAL);
                };
                let id = core::str::from_utf8(id)
                    .ok()
                    .filter(|s| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()))
                    .and_then(|s| s.parse::<u16>().ok())
                    .ok_or(XsError::EINVAL)?;
                Ok(nul_list([Path::home(DomId(id)).as_str()].into_iter()))
            }
            msg::CONTROL
            | msg::INTRODUCE
            | msg::RELEASE
            | msg::IS_DOMAIN_INTRODUCED
            | msg::RESUME
            | msg::SET_TARGET => Err(XsError::EACCES),
            _ => Err(XsError::EINVAL),
        }
    }

    /// Checks that a change may be made in transaction `tx` (0: none), which may
    /// record at most [`super::Limits::max_transaction_changes`] changes (`ENOSPC`
    /// beyond, as xenstored's `transaction-nodes` quota), and returns the bytes
    /// the guest may still add.
    fn room_for_change(&self, dom: DomId, tx: u32) -> Result<usize, XsError> {
        if tx != 0 {
            let conn = self.conns.get(&dom).ok_or(XsError::EINVAL)?;
            let t = conn.transactions.get(&tx).ok_or(XsError::ENOENT)?;
            if t.changes.len() >= self.limits.max_transaction_changes {
                return Err(XsError::ENOSPC);
            }
        }
        Ok(self.room(dom))
    }

    fn conn(&mut self, dom: DomId) -> Result<&mut Conn, XsError> {
        self.conns.get_mut(&dom).ok_or(XsError::EINVAL)
    }

    fn tree_for(&self, dom: DomId, tx: u32) -> Result<&super::Tree, XsError> {
        if tx == 0 {
            return Ok(&self.tree);
        }
        let conn = self.conns.get(&dom).ok_or(XsError::EINVAL)?;
        Ok(&conn.transactions.get(&tx).ok_or(XsError::ENOENT)?.tree)
    }

    fn tree_for_mut(&mut self, dom: DomId, tx: u32) -> Result<&mut super::Tree, XsError> {
        if tx == 0 {
            return Ok(&mut self.tree);
        }
        let conn = self.conns.get_mut(&dom).ok_or(XsError::EINVAL)?;
        Ok(&mut conn.transactions.get_mut(&tx).ok_or(XsError::ENOENT)?.tree)
    }

    /// Fires the watches for a change now, or at commit for a transaction.
    fn changed(&mut self, dom: DomId, tx: u32, change: Change) {
        if tx == 0 {
            self.fire(&change);
        } else if let Some(t) = self
            .conns
            .get_mut(&dom)
            .and_then(|c| c.transactions.get_mut(&tx))
        {
            if !t.changes.contains(&change) {
                t.changes.push(change);
            }
        }
    }
}

fn ok() -> Vec<u8> {
    Vec::from(&b"OK\0"[..])
}

/// Splits a payload of NUL-terminated strings; the last must be terminated.
fn nul_args(payload: &[u8]) -> Result<Vec<&[u8]>, XsError> {
    let body = payload.strip_suffix(&[0]).ok_or(XsError::EINVAL)?;
    Ok(body.split(|&c| c == 0).collect())
}

/// `path\0`, exactly one argument.
fn one_path(payload: &[u8], home: &Path) -> Result<Path, XsError> {
    match nul_args(payload)?.as_slice() {
        [raw] => Ok(Path::parse(raw, home)?.0),
        _ => Err(XsError::EINVAL),
    }
}

/// `path\0rest` for WRITE: the value is the rest, without a terminator.
fn split_first_arg(payload: &[u8]) -> Result<(&[u8], &[u8]), XsError> {
    let mut parts = payload.splitn(2, |&c| c == 0);
    match (parts.next(), parts.next()) {
        (Some(first), Some(rest)) => Ok((first, rest)),
        _ => Err(XsError::EINVAL),
    }
}

/// `path\0token\0`.
fn parse_watch(payload: &[u8], home: &Path) -> Result<Watch, XsError> {
    let args = nul_args(payload)?;
    let [raw, token] = args.as_slice() else {
        return Err(XsError::EINVAL);
    };
    let (path, relative) = WatchPath::parse(raw, home)?;
    Ok(Watch {
        path,
        token: token.to_vec(),
        relative,
    })
}

/// Each item followed by a NUL.
fn nul_list<S: AsRef<str>>(items: impl Iterator<Item = S>) -> Vec<u8> {
    let mut out = Vec::new();
    for s in items {
        out.extend_from_slice(s.as_ref().as_bytes());
        out.push(0);
    }
    out
}
