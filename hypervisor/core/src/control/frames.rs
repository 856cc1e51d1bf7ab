//! The frame verbs of the control protocol: page offline, online and query by
//! machine frame (xen-hptool's `mem-offline`, `mem-online`, `mem-query`), the p2m
//! by guest frame (xen-mfndump's lookups) and exchange of guest frames for copies.
//!
//! Each frame is described by one token, `key=value` pairs joined by commas:
//!
//! | key | value |
//! |---|---|
//! | `mfn` | the machine frame, `0x` hex |
//! | `state` | `online`, `pending` (offline once its owner lets go of it), `offlined`, or `invalid` (not RAM) |
//! | `broken` | `1` when the frame was reported broken (it never comes back) |
//! | `owner` | `free`, `hypervisor`, `none` (offlined) or `dN` (domain N) |
//! | `lent` | `dN`: a hypervisor frame lent to domain N (shared_info, grant table, xenstore ring) |
//! | `gfn` | where the owner (or borrower) maps it, `0x` hex |
//!
//! A p2m token has `gfn`, `frames` (how many of the range it covers), then `type`
//! (`none` for a hole, `ram`, `ram-logdirty` or `hypervisor`) and, when mapped,
//! `mfn` (backing its first gfn) and `leaf` (`4K`, `2M` or `1G`).
//!
//! Offline and online check the whole range first: a frame that is not RAM or that
//! the hypervisor owns or lends refuses the request, and nothing changes.
//!
//! A broken frame that backs guest memory is not copied (its contents are lost):
//! the guest frame becomes unmapped (`type=broken`) and the guest is told which one,
//! under its xenstore home, when its memory driver said it handles lost frames:
//!
//! | node | who writes it | meaning |
//! |---|---|---|
//! | `control/feature-broken-frames` | the guest (ebb.ko), `1` | it handles the nodes below |
//! | `control/broken-frames/<gfn>` | the hypervisor (decimal gfn, empty value) | that guest frame's contents are lost |
//!
//! The guest takes the page out of use (Linux: `memory_failure()`), gives the gfn
//! back with `XENMEM_decrease_reservation` (the frame then goes offline) and removes
//! the node. A guest that touches the gfn before is crashed, as is a guest without
//! the feature at once: it would have no way to learn that the page is gone.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use super::exec::{Context, Effect};
use super::protocol::{error_reply, ok_reply};
use crate::addr::{DomId, Gfn, GfnRange, Mfn, MfnRange};
use crate::error::{Errno, Error};
use crate::heap::FrameState;
use crate::hv::Hypervisor;
use crate::p2m::{EntryType, PageSize};

/// `mem-offline`: every frame offline (`broken`: for good), a frame in use by the
/// guest moved to a copy first, or left pending when no frame is free.
pub(super) fn offline(cx: &mut Context<'_>, range: MfnRange, broken: bool) -> (String, Effect) {
    if let Some(refusal) = refuse_unmovable(cx.hv, range) {
        return (refusal, Effect::None);
    }
    let mut tokens = Vec::new();
    let mut lost = Vec::new();
    for mfn in frames_of(range) {
        match cx.hv.page_offline(mfn, broken, cx.frames) {
            Ok(reply) => tokens.push(with_result(frame_token(cx.hv, mfn), reply.result)),
            Err(e) => return (failed(e), Effect::P2m),
        }
        lost.extend(
            cx.hv
                .broken_gfn(mfn)
                .filter(|&(owner, _)| owner == cx.domain),
        );
    }
    let reply = ok_reply(tokens.iter().map(String::as_str));
    match report_lost_frames(cx, &lost) {
        Ok(()) => (reply, Effect::P2m),
        Err(why) => (reply, Effect::Crash(why)),
    }
}

/// Tells the guest which of its frames lost their contents; the reason to crash it
/// when it cannot be told.
fn report_lost_frames(cx: &mut Context<'_>, lost: &[(DomId, Gfn)]) -> Result<(), String> {
    let Some(&(_, first)) = lost.first() else {
        return Ok(());
    };
    let handled = cx
        .store
        .control_read(cx.domain, BROKEN_FEATURE_NODE)
        .is_ok_and(|v| v == b"1");
    if !handled {
        return Err(format!(
            "gfn {:#x} lost its contents (broken frame) and the guest has no driver that handles lost frames ({BROKEN_FEATURE_NODE} is not 1)",
            first.0
        ));
    }
    for (_, gfn) in lost {
        let node = format!("{BROKEN_DIR}/{}", gfn.0);
        if let Err(e) = cx.store.control_write(cx.domain, &node, b"") {
            return Err(format!(
                "gfn {:#x} lost its contents (broken frame) and {node} cannot be written ({})",
                gfn.0,
                e.name()
            ));
        }
    }
    Ok(())
}

/// Where the guest says it handles lost frames.
const BROKEN_FEATURE_NODE: &str = "control/feature-broken-frames";

/// Where the hypervisor names the guest frames that lost their contents.
const BROKEN_DIR: &str = "control/broken-frames";

/// `mem-online`: offlined frames back to the heap, pending requests cancelled.
pub(super) fn online(cx: &mut Context<'_>, range: MfnRange) -> (String, Effect) {
    if let Some(refusal) = refuse_unmovable(cx.hv, range) {
        return (refusal, Effect::None);
    }
    let tokens: Vec<String> = frames_of(range)
        .map(|mfn| {
            let result = cx.hv.page_online(mfn).result;
            with_result(frame_token(cx.hv, mfn), result)
        })
        .collect();
    (ok_reply(tokens.iter().map(String::as_str)), Effect::None)
}

/// `mem-query`: each frame's state and owner.
pub(super) fn query(hv: &Hypervisor, range: MfnRange) -> String {
    let tokens: Vec<String> = frames_of(range).map(|mfn| frame_token(hv, mfn)).collect();
    ok_reply(tokens.iter().map(String::as_str))
}

/// `p2m`: the leaves (and holes) of the domain's p2m over `range`.
pub(super) fn p2m(cx: &Context<'_>, range: GfnRange) -> String {
    let Some(dom) = cx.hv.domain(cx.domain) else {
        return error_reply("ESRCH", "no such domain");
    };
    let mut tokens = Vec::new();
    let mut next = range.start;
    dom.p2m().for_each_mapping(range, &mut |m| {
        let start = m.gfn.max(range.start);
        let end = m.gfn.plus(m.size.frames()).min(range.end);
        push_hole(&mut tokens, next.0, start.0);
        tokens.push(format!(
            "gfn={:#x},frames={},type={},mfn={:#x},leaf={}",
            start.0,
            end.0 - start.0,
            type_name(m.kind),
            m.mfn.plus(start.0 - m.gfn.0).0,
            leaf_name(m.size)
        ));
        next = end;
    });
    push_hole(&mut tokens, next.0, range.end.0);
    ok_reply(tokens.iter().map(String::as_str))
}

/// `mem-exchange`: the guest frames of `range` get new machine frames with the
/// same contents.
pub(super) fn exchange(cx: &mut Context<'_>, range: GfnRange) -> (String, Effect) {
    match cx.hv.exchange_in_place(cx.domain, range, cx.frames) {
        Ok(moved) => {
            let tokens: Vec<String> = moved
                .iter()
                .map(|m| format!("gfn={:#x},old={:#x},new={:#x}", m.gfn.0, m.old.0, m.new.0))
                .collect();
            (ok_reply(tokens.iter().map(String::as_str)), Effect::P2m)
        }
        Err(Error::Request(Errno::EINVAL)) => (
            error_reply(
                "EINVAL",
                "every guest frame of the range must be the domain's RAM",
            ),
            Effect::None,
        ),
        Err(Error::Request(Errno::ENOMEM)) => (
            error_reply("ENOMEM", "not enough free frames for the copies"),
            Effect::None,
        ),
        Err(e) => (failed(e), Effect::P2m),
    }
}

/// Leaves of the domain's RAM by size (4K, 2M, 1G), for `info`.
pub(super) fn ram_leaves(hv: &Hypervisor, domain: DomId) -> [u64; 3] {
    let [mut small, mut large, mut huge] = [0u64; 3];
    if let Some(dom) = hv.domain(domain) {
        let everything = GfnRange::new(Gfn(0), dom.p2m().limit());
        dom.p2m().for_each_mapping(everything, &mut |m| {
            if m.kind.is_ram() {
                *match m.size {
                    PageSize::Size4K => &mut small,
                    PageSize::Size2M => &mut large,
                    PageSize::Size1G => &mut huge,
                } += 1;
            }
        });
    }
    [small, large, huge]
}

/// The token for the unmapped guest frames `from..to`, if any.
fn push_hole(tokens: &mut Vec<String>, from: u64, to: u64) {
    if to > from {
        tokens.push(format!("gfn={from:#x},frames={},type=none", to - from));
    }
}

fn frames_of(range: MfnRange) -> impl Iterator<Item = Mfn> {
    (range.start.0..range.end.0).map(Mfn)
}

/// The error reply for a frame of `range` that offline or online must not touch.
fn refuse_unmovable(hv: &Hypervisor, range: MfnRange) -> Option<String> {
    frames_of(range).find_map(|mfn| match hv.heap().state(mfn) {
        None | Some(FrameState::NotRam) => Some(error_reply(
            "EINVAL",
            &format!("mfn {:#x} is not RAM the hypervisor manages", mfn.0),
        )),
        Some(FrameState::Hypervisor {
            lent_to: Some(dom),
            gfn,
        }) => Some(error_reply(
            "EPERM",
            &format!(
                "mfn {:#x} belongs to the hypervisor, lent to d{} at {} (shared_info, grant table or xenstore ring)",
                mfn.0,
                dom.0,
                gfn.map_or(String::from("no gfn"), |g| format!("gfn {:#x}", g.0))
            ),
        )),
        Some(FrameState::Hypervisor { lent_to: None, .. }) => Some(error_reply(
            "EPERM",
            &format!(
                "mfn {:#x} belongs to the hypervisor (its code, heap or tables)",
                mfn.0
            ),
        )),
        Some(_) => None,
    })
}

/// The token describing `mfn` as it is now.
pub(super) fn frame_token(hv: &Hypervisor, mfn: Mfn) -> String {
    let at = |gfn: Option<Gfn>| gfn.map_or(String::new(), |g| format!(",gfn={:#x}", g.0));
    let head = format!("mfn={:#x}", mfn.0);
    match hv.heap().state(mfn) {
        None | Some(FrameState::NotRam) => format!("{head},state=invalid"),
        Some(FrameState::Free { .. }) => format!("{head},state=online,owner=free"),
        Some(FrameState::Hypervisor { lent_to, gfn }) => match lent_to {
            Some(dom) => format!(
                "{head},state=online,owner=hypervisor,lent=d{}{}",
                dom.0,
                at(gfn)
            ),
            None => format!("{head},state=online,owner=hypervisor"),
        },
        Some(FrameState::Domain { owner, gfn }) => {
            format!("{head},state=online,owner=d{}{}", owner.0, at(gfn))
        }
        Some(FrameState::OfflinePending { owner, gfn, broken }) => format!(
            "{head},state=pending{},owner=d{}{}",
            if broken { ",broken=1" } else { "" },
            owner.0,
            at(gfn)
        ),
        Some(FrameState::Offlined) => format!("{head},state=offlined,owner=none"),
        Some(FrameState::Broken) => format!("{head},state=offlined,broken=1,owner=none"),
    }
}

/// A frame's token with `error=ERRNO` when the operation refused it.
fn with_result(token: String, result: Result<(), Errno>) -> String {
    match result {
        Ok(()) => token,
        Err(errno) => format!("{token},error={}", errno.name()),
    }
}

/// The reply when the core found its own state inconsistent mid-way.
fn failed(e: Error) -> String {
    match e {
        Error::Request(errno) => error_reply(errno.name(), "refused"),
        Error::Fatal(_) => error_reply("EIO", "the hypervisor's memory state is inconsistent"),
    }
}

fn type_name(kind: EntryType) -> &'static str {
    match kind {
        EntryType::RamRw => "ram",
        EntryType::RamLogDirty => "ram-logdirty",
        EntryType::HypervisorShared => "hypervisor",
        EntryType::Broken => "broken",
    }
}

fn leaf_name(size: PageSize) -> &'static str {
    match size {
        PageSize::Size4K => "4K",
        PageSize::Size2M => "2M",
        PageSize::Size1G => "1G",
    }
}
