//! The p2m: each domain's map from guest frames to machine frames.
//!
//! This is the only description of a guest's physical memory. The x86 nested page
//! tables are generated from it: every change records the guest-frame range it
//! touched (see `changes`), and [`P2m::sync_mirror`] replays those ranges into any
//! [`P2mMirror`], which the platform implements over its NPT. A mirror is only ever
//! told "forget this range" and "map this leaf", never asked to decide anything.
//!
//! Entries are 4 KiB, 2 MiB or 1 GiB leaves (the same three sizes as the NPT) with an
//! [`EntryType`]. A 4 KiB change inside a superpage splits it; 512 contiguous,
//! aligned, same-type entries that map a contiguous, aligned frame range merge back.

mod changes;
mod entry;
mod table;
mod tree;

pub use changes::P2mMirror;
pub use entry::{Entry, EntryType, Mapping, PageSize};
pub use table::{P2m, P2mError, TableCount};

#[cfg(test)]
mod tests;
