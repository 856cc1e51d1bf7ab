//! ebbhv-core: everything ebbhv decides about memory, with no hardware access.
//!
//! The crate owns the machine frame heap ([`heap`]), each domain's guest-physical to
//! machine map ([`p2m`]), the domains themselves ([`domain`]) and the Xen memory
//! hypercalls that change them ([`hypercall`]), all reached through one
//! [`hv::Hypervisor`] value. It never touches a frame's contents or the guest's
//! memory itself: the platform supplies those through the traits in [`platform`] and
//! [`guest`], so that the same code runs under `cargo test` on the host with fakes and
//! inside the bare-metal `ebbhv` image. Besides memory it holds the guests'
//! [`xenstore`] (served over a ring page the platform reaches through a trait), the
//! Xen platform state and hypercalls the hypervisor serves itself
//! ([`platform::xen`]: HVM parameters, event delivery, vcpu_op, the one-shot timer,
//! xen_version, console_io, sched_op) and the [`control`] channel protocol the
//! host's `ebbctl` speaks.
//!
//! Principles (after Hubris' kerncore): no `unsafe`; simple algorithms with stated
//! costs; every value a guest supplies is checked in one place and a bad one is a
//! [`error::Errno`] for the caller, never a panic; a state the hypervisor cannot
//! continue a guest from is an [`error::Fatal`] for the platform to act on.
//!
//! Locking: the crate holds no locks. The platform keeps the one [`hv::Hypervisor`]
//! inside a single lock and calls it with that lock held.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
// Nothing a guest or the control channel sends may panic the hypervisor: a bad
// value is an error for the caller (see the crate docs). Tests may unwrap.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::unreachable,
        clippy::todo,
        clippy::unimplemented,
        clippy::indexing_slicing
    )
)]

extern crate alloc;

pub mod abi;
pub mod addr;
pub mod control;
pub mod domain;
pub mod error;
pub mod evtchn;
pub mod guest;
pub mod heap;
pub mod hv;
pub mod hypercall;
pub mod p2m;
pub mod platform;
// The fakes for tests and fuzzing, never in the image: they may stop on misuse.
#[cfg(any(test, feature = "testing"))]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
pub mod testing;
pub mod xenstore;
