//! The control channel: a line protocol the host's `ebbctl` speaks to the
//! hypervisor over a serial line, parsed ([`protocol`]) and executed ([`exec`])
//! here so that both are host-tested; the platform only moves bytes.
//!
//! A request is one line of at most [`protocol::MAX_LINE`] bytes: a verb and its
//! arguments separated by spaces. Every request gets exactly one reply line:
//! `ok[ <token>...]` or `error <CODE> <message>`, where `CODE` is a Xen/xenstore
//! error name (`EINVAL`, `ENOENT`, `EACCES`, `E2BIG`, ...), `EPROTO` for a line that
//! cannot be parsed or `ENOSYS` for an unknown verb. Tokens that hold arbitrary bytes
//! (xenstore values, paths) are percent-encoded: every byte outside `!`..`~`, and
//! `%` and `"` themselves, as `%XX`; the empty token is `""`.
//!
//! | request | reply |
//! |---|---|
//! | `ping` | `ok pong` |
//! | `info` | `ok key=value ...` (domain memory, heap, xenstore and platform counters) |
//! | `xs-read PATH` | `ok VALUE` |
//! | `xs-write PATH VALUE` | `ok` |
//! | `xs-ls PATH` | `ok NAME ...` |
//! | `xs-rm PATH` | `ok` |
//! | `mem-set KIB` | `ok target_kib=KIB` (writes `memory/target`; at most `static-max`) |
//! | `mem-max KIB` | `ok max_kib=KIB` (the domain's `max_pages` and `memory/static-max`) |
//! | `shutdown poweroff\|reboot` | `ok` (writes `control/shutdown`; the guest acts on it) |
//! | `destroy` | `ok` (the platform ends the domain at once) |
//! | `fail-next populate\|decrease CALLS DONE` | `ok fail_OP=...` (the domain's next CALLS calls of the op stop after DONE extents and return DONE) |
//! | `fail-next populate\|decrease CALLS -ERRNO` | `ok fail_OP=...` (they return `-ERRNO`, e.g. `-EBUSY`, having done nothing) |
//! | `fail-next offline-copy CALLS -ENOMEM` | `ok fail_offline_copy=...` (the next CALLS offlines of frames the domain uses find no frame free for the copy: each stays offline pending until the domain frees it) |
//! | `fail-next off` | `ok` (drops every pending fault) |
//! | `mem-offline FIRST LAST [broken]` | `ok FRAME...` (each machine frame FIRST..=LAST offline; one in use by the guest moved to a copy, or left pending) |
//! | `mem-online FIRST LAST` | `ok FRAME...` (offlined frames back in the heap, pending requests cancelled) |
//! | `mem-query FIRST LAST` | `ok FRAME...` (state and owner of each frame) |
//! | `p2m FIRST LAST` | `ok LEAF...` (the domain's p2m over guest frames FIRST..=LAST) |
//! | `mem-exchange FIRST LAST` | `ok gfn=G,old=M,new=N ...` (each guest frame gets a new machine frame with the same contents) |
//!
//! Frame numbers are decimal or `0x` hex; a range covers at most
//! [`protocol::MAX_FRAMES`] frames. The `FRAME` and `LEAF` tokens are described in
//! `control/frames.rs`. A frame the hypervisor owns or lends is refused with
//! `EPERM`, a frame that is not RAM with `EINVAL`, and nothing changes.
//!
//! Faults for an op queue up after those pending (at most 8, else `ENOSPC`); the reply
//! and `info` (after `max_pages`, only while any is pending) list them in order as
//! `fail_populate=CALLS:DONE,CALLS:-ERRNO,...` with the calls each still affects. See
//! `hv/fault.rs` for which calls count (for `offline-copy`: each frame in use by the
//! domain that `mem-offline` reaches).
//!
//! Relative xenstore paths are under the domain's home, `/local/domain/<id>`.

pub mod exec;
mod frames;
pub mod protocol;
