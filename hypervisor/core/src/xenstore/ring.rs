//! The ring protocol over a guest's `xenstore_domain_interface` page.
//!
//! The guest produces requests into `req[]` (advancing `req_prod`), the server
//! consumes them (advancing `req_cons`) and produces replies and watch events into
//! `rsp[]` (advancing `rsp_prod`). Indices run freely and wrap at 2^32; the byte for
//! index `i` is at `i % 1024`. A request may be larger than the ring (payloads go up
//! to 4096 bytes), so a partial one waits in the connection until the rest arrives;
//! replies larger than the free space wait in the output queue.
//!
//! The page is shared memory the guest may change at any time, so everything read
//! from it is an allegation: each index is read once per pass and checked, and the
//! page is only reached through [`RingPage`], which takes byte offsets and cannot
//! fail. Two cases cannot be answered with an error reply and reset the ring
//! instead (counted in [`Stats::ring_resets`](super::Stats)):
//!
//! - `req_prod - req_cons` more than the ring size (broken indices): the server sets
//!   `error = XENSTORE_ERROR_RINGIDX`, drops its partial request and resynchronises
//!   `req_cons` to `req_prod`.
//! - a header whose `len` exceeds `XENSTORE_PAYLOAD_MAX`: the message cannot be
//!   framed, so the server answers its `req_id` with `E2BIG`, drops whatever else is
//!   in the ring (`req_cons = req_prod`) and sets `error = XENSTORE_ERROR_PROTO`.
//!
//! The second case is also how a guest that lost its place in the stream gets it
//! back: bytes of 0xff complete whatever message is pending and then frame an
//! oversized header.
//!
//! A broken `rsp_cons` (the guest claims to have consumed more than was produced)
//! just stops output until it makes sense again.

use super::{queue, Xenstore};
use crate::abi::codec::AbiRecord;
use crate::abi::xenstore::{
    ring, XsError, XsdSockmsg, ERROR_PROTO, ERROR_RINGIDX, PAYLOAD_MAX, RING_SIZE,
};
use crate::addr::DomId;

/// Access to one guest's ring page, by byte offset within the page.
///
/// Implementations clip accesses to the page (the server only uses offsets below
/// the interface's 2076 bytes) and never fail: a guest changing the bytes
/// concurrently only gives the server values it then checks.
pub trait RingPage {
    /// Copies `buf.len()` bytes from `offset`.
    fn read(&self, offset: usize, buf: &mut [u8]);
    /// Copies `data` to `offset`.
    fn write(&mut self, offset: usize, data: &[u8]);
}

/// What one [`Xenstore::serve`] pass did.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct Served {
    /// Requests answered.
    pub requests: u32,
    /// Request bytes consumed.
    pub consumed: u32,
    /// Reply bytes produced.
    pub produced: u32,
}

impl Served {
    /// Whether the guest should be notified on its store event channel.
    pub fn notify(&self) -> bool {
        self.consumed > 0 || self.produced > 0
    }
}

const HEADER: usize = XsdSockmsg::SIZE;

fn read_u32(page: &dyn RingPage, offset: usize) -> u32 {
    let mut b = [0u8; 4];
    page.read(offset, &mut b);
    u32::from_le_bytes(b)
}

fn write_u32(page: &mut dyn RingPage, offset: usize, v: u32) {
    page.write(offset, &v.to_le_bytes());
}

impl Xenstore {
    /// Serves `dom`'s ring: writes queued output, reads and answers every complete
    /// request (while the output stays under its limit), writes the answers.
    pub fn serve(&mut self, dom: DomId, page: &mut dyn RingPage) -> Result<Served, XsError> {
        if !self.conns.contains_key(&dom) {
            return Err(XsError::ENOENT);
        }
        let mut done = Served::default();
        loop {
            done.produced += self.flush(dom, page);
            let Some((header, payload)) = self.receive(dom, page, &mut done) else {
                break;
            };
            self.request(dom, header, &payload);
            done.requests += 1;
        }
        done.produced += self.flush(dom, page);
        Ok(done)
    }

    /// Moves queued output into the reply ring; returns the bytes moved.
    fn flush(&mut self, dom: DomId, page: &mut dyn RingPage) -> u32 {
        let Some(conn) = self.conns.get_mut(&dom) else {
            return 0;
        };
        let cons = read_u32(page, ring::RSP_CONS);
        let prod = read_u32(page, ring::RSP_PROD);
        let used = prod.wrapping_sub(cons);
        if used > RING_SIZE {
            return 0;
        }
        let n = (RING_SIZE - used).min(conn.output.len() as u32);
        let end = prod.wrapping_add(n);
        let mut at = prod;
        while at != end {
            let (head, tail) = conn.output.as_slices();
            let src = if head.is_empty() { tail } else { head };
            // A contiguous run: up to the ring's end, the end of the free space and
            // the end of the queue's first slice.
            let run =
                ((RING_SIZE - at % RING_SIZE).min(end.wrapping_sub(at)) as usize).min(src.len());
            let Some(chunk) = src.get(..run).filter(|c| !c.is_empty()) else {
                break;
            };
            page.write(ring::RSP + (at % RING_SIZE) as usize, chunk);
            conn.output.drain(..run);
            at = at.wrapping_add(run as u32);
        }
        write_u32(page, ring::RSP_PROD, at);
        at.wrapping_sub(prod)
    }

    /// Reads request bytes until one message is complete; `None` when the ring has
    /// no complete message (or the output is over its limit).
    fn receive(
        &mut self,
        dom: DomId,
        page: &mut dyn RingPage,
        done: &mut Served,
    ) -> Option<(XsdSockmsg, alloc::vec::Vec<u8>)> {
        let limits = self.limits;
        let conn = self.conns.get_mut(&dom)?;
        if conn.output.len() >= limits.max_output {
            return None;
        }
        let cons = read_u32(page, ring::REQ_CONS);
        let prod = read_u32(page, ring::REQ_PROD);
        let avail = prod.wrapping_sub(cons);
        if avail > RING_SIZE {
            conn.input.clear();
            write_u32(page, ring::ERROR, ERROR_RINGIDX);
            write_u32(page, ring::REQ_CONS, prod);
            self.stats.ring_resets += 1;
            return None;
        }
        let mut at = cons;
        loop {
            let need = if conn.input.len() < HEADER {
                HEADER
            } else {
                HEADER + XsdSockmsg::decode(&conn.input).len as usize
            };
            if conn.input.len() >= HEADER {
                let header = XsdSockmsg::decode(&conn.input);
                if header.len as usize > PAYLOAD_MAX {
                    conn.input.clear();
                    write_u32(page, ring::REQ_CONS, prod);
                    write_u32(page, ring::ERROR, ERROR_PROTO);
                    done.consumed += prod.wrapping_sub(cons);
                    self.stats.ring_resets += 1;
                    self.stats.requests += 1;
                    self.stats.errors += 1;
                    let body = b"E2BIG\0";
                    let reply = XsdSockmsg {
                        ty: crate::abi::xenstore::msg::ERROR,
                        len: body.len() as u32,
                        ..header
                    };
                    queue(&mut conn.output, reply, body);
                    return None;
                }
                if conn.input.len() == need {
                    write_u32(page, ring::REQ_CONS, at);
                    done.consumed += at.wrapping_sub(cons);
                    let payload = conn.input.split_off(HEADER);
                    conn.input.clear();
                    return Some((header, payload));
                }
            }
            if at == prod {
                write_u32(page, ring::REQ_CONS, at);
                done.consumed += at.wrapping_sub(cons);
                return None;
            }
            let want = (need - conn.input.len()) as u32;
            let run = want
                .min(prod.wrapping_sub(at))
                .min(RING_SIZE - at % RING_SIZE) as usize;
            if conn.input.try_reserve(run).is_err() {
                // The allocator is out of room: the rest waits in the ring for the
                // next kick rather than aborting the hypervisor.
                write_u32(page, ring::REQ_CONS, at);
                done.consumed += at.wrapping_sub(cons);
                return None;
            }
            let start = conn.input.len();
            conn.input.resize(start + run, 0);
            if let Some(fresh) = conn.input.get_mut(start..) {
                page.read(ring::REQ + (at % RING_SIZE) as usize, fresh);
            }
            at = at.wrapping_add(run as u32);
        }
    }
}
