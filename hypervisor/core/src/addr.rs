//! Address spaces and frame numbers, each its own type: the one vocabulary of the
//! hypervisor workspace (core, `ebbhv-x86`, `ebbhv-hal` and `ebbhv` all use it).
//!
//! Machine frames ([`Mfn`]) and guest frames ([`Gfn`]) are never interchangeable: a
//! function that maps one to the other says so in its signature. The same holds
//! for addresses: a guest-physical address ([`GuestPhys`]) is not a host-physical
//! one ([`HostPhys`]; nested paging sits between them), and a guest-virtual one
//! ([`GuestVirt`]) needs the guest's page tables to mean anything. A frame number
//! becomes an address, and back, only through the methods here ([`Mfn::addr`],
//! [`HostPhys::mfn`], [`Gfn::addr`], [`GuestPhys::gfn`]), never by a shift at the
//! call site. Addresses that a hypercall caller passes in are [`CallerAddr`]: an
//! allegation to be checked by [`crate::guest`], not something the hypervisor can
//! dereference.

use core::fmt;
use core::ops::Range;

/// log2 of the size of a frame (4 KiB).
pub const PAGE_SHIFT: u32 = 12;

/// Bytes in a frame.
pub const PAGE_SIZE: u64 = 1 << PAGE_SHIFT;

/// The largest block the heap and the p2m handle: order 18, 1 GiB.
pub const MAX_ORDER: u8 = 18;

/// A machine frame number (host-physical address >> 12).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Mfn(pub u64);

/// A guest frame number (guest-physical address >> 12) in some domain's p2m.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Gfn(pub u64);

/// A domain identifier (Xen's `domid_t`).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct DomId(pub u16);

impl DomId {
    /// `DOMID_SELF`: "the calling domain" in hypercall arguments.
    pub const SELF: DomId = DomId(0x7ff0);
    /// `DOMID_XEN`: the owner Xen reports for its own frames.
    pub const XEN: DomId = DomId(0x7ff2);
    /// The first id that is not an ordinary domain (`DOMID_FIRST_RESERVED`).
    pub const FIRST_RESERVED: DomId = DomId(0x7ff0);
}

/// An address in the address space of whoever made a hypercall: guest-virtual for a
/// guest, an offset in the request buffer for the control plane. Only
/// [`crate::guest::GuestMemory`] gives it meaning.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub struct CallerAddr(pub u64);

/// A power-of-two block size in frames, at most [`MAX_ORDER`].
///
/// # Invariants
///
/// `self.0 <= MAX_ORDER`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub struct Order(u8);

impl Order {
    /// One 4 KiB frame.
    pub const ORDER_4K: Order = Order(0);
    /// 512 frames, 2 MiB.
    pub const ORDER_2M: Order = Order(9);
    /// 262144 frames, 1 GiB.
    pub const ORDER_1G: Order = Order(MAX_ORDER);

    /// Checks an order that came from outside (a guest, the control plane).
    pub fn new(order: u64) -> Option<Order> {
        // INVARIANT: only orders up to MAX_ORDER pass.
        (order <= u64::from(MAX_ORDER)).then_some(Order(order as u8))
    }

    /// The order as a number.
    pub fn get(self) -> u8 {
        self.0
    }

    /// Number of frames in a block of this order.
    pub fn frames(self) -> u64 {
        1 << self.0
    }

    /// The next smaller order, if any.
    pub fn smaller(self) -> Option<Order> {
        self.0.checked_sub(1).map(Order)
    }

    /// The next larger order, if it is still within [`MAX_ORDER`].
    pub fn larger(self) -> Option<Order> {
        Order::new(u64::from(self.0) + 1)
    }

    /// All orders from 0 to [`MAX_ORDER`], ascending.
    pub fn all() -> impl DoubleEndedIterator<Item = Order> {
        (0..=MAX_ORDER).map(Order)
    }
}

macro_rules! frame_number {
    ($name:ident, $what:literal) => {
        impl $name {
            /// The frame `count` frames after this one, if that does not overflow.
            pub fn checked_add(self, count: u64) -> Option<$name> {
                self.0.checked_add(count).map($name)
            }

            /// The frame `count` frames after this one. Callers use it only inside
            /// ranges whose end they have already checked.
            pub fn plus(self, count: u64) -> $name {
                $name(self.0 + count)
            }

            /// Whether the frame starts a block of `order`.
            pub fn is_aligned(self, order: Order) -> bool {
                self.0 & (order.frames() - 1) == 0
            }

            /// The start of the block of `order` that contains this frame.
            pub fn align_down(self, order: Order) -> $name {
                $name(self.0 & !(order.frames() - 1))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($what, "{:#x}"), self.0)
            }
        }
    };
}

frame_number!(Mfn, "mfn:");

impl Mfn {
    /// The machine address where the frame starts.
    pub fn addr(self) -> HostPhys {
        HostPhys(self.0 << PAGE_SHIFT)
    }

    /// The machine address `offset` bytes into the frame (`offset` < 4096).
    pub fn at(self, offset: u64) -> HostPhys {
        HostPhys((self.0 << PAGE_SHIFT) | (offset & (PAGE_SIZE - 1)))
    }
}

impl Gfn {
    /// The range of the one frame at this gfn, if it does not overflow.
    pub fn single(self) -> Option<GfnRange> {
        GfnRange::block(self, Order::ORDER_4K)
    }
}

frame_number!(Gfn, "gfn:");

impl Gfn {
    /// The guest-physical address where the frame starts.
    pub fn addr(self) -> GuestPhys {
        GuestPhys(self.0 << PAGE_SHIFT)
    }
}

/// Whole frames in `bytes` (rounded down).
pub const fn frames_in(bytes: u64) -> u64 {
    bytes >> PAGE_SHIFT
}

macro_rules! address {
    ($(#[$m:meta])* $name:ident, $what:literal) => {
        $(#[$m])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        pub struct $name(pub u64);

        impl $name {
            /// The address `off` bytes further on, if that does not overflow.
            pub fn checked_add(self, off: u64) -> Option<$name> {
                self.0.checked_add(off).map($name)
            }

            /// Offset inside its 4 KiB page.
            pub fn page_offset(self) -> u64 {
                self.0 & (PAGE_SIZE - 1)
            }

            /// The start of its 4 KiB page.
            pub fn page_base(self) -> $name {
                $name(self.0 & !(PAGE_SIZE - 1))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($what, "{:#x}"), self.0)
            }
        }
    };
}

address!(
    /// A guest-physical address: what the guest believes is physical memory, what
    /// the p2m (and its mirror, the nested page tables) translates.
    GuestPhys,
    "gpa:"
);
address!(
    /// A guest-virtual address: meaningful only through the guest's own page tables.
    GuestVirt,
    "gva:"
);
address!(
    /// A host-physical (machine) address. ebbhv identity-maps machine memory, and
    /// only its hardware layer turns one into a pointer.
    HostPhys,
    "hpa:"
);

impl GuestPhys {
    /// The guest frame it lies in.
    pub fn gfn(self) -> Gfn {
        Gfn(self.0 >> PAGE_SHIFT)
    }
}

impl HostPhys {
    /// The machine frame it lies in.
    pub fn mfn(self) -> Mfn {
        Mfn(self.0 >> PAGE_SHIFT)
    }
}

/// A half-open range of machine frames.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct MfnRange {
    /// First frame.
    pub start: Mfn,
    /// One past the last frame.
    pub end: Mfn,
}

impl MfnRange {
    /// The frames `[start, end)`.
    pub fn new(start: Mfn, end: Mfn) -> MfnRange {
        MfnRange { start, end }
    }

    /// Number of frames.
    pub fn len(&self) -> u64 {
        self.end.0.saturating_sub(self.start.0)
    }

    /// Whether the range holds no frame.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether `mfn` lies inside.
    pub fn contains(&self, mfn: Mfn) -> bool {
        (self.start..self.end).contains(&mfn)
    }
}

/// A half-open range of guest frames.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct GfnRange {
    /// First frame.
    pub start: Gfn,
    /// One past the last frame.
    pub end: Gfn,
}

impl GfnRange {
    /// The frames `[start, end)`.
    pub fn new(start: Gfn, end: Gfn) -> GfnRange {
        GfnRange { start, end }
    }

    /// The block of `order` frames that starts at `start`, if it does not overflow.
    pub fn block(start: Gfn, order: Order) -> Option<GfnRange> {
        start
            .checked_add(order.frames())
            .map(|end| GfnRange { start, end })
    }

    /// Number of frames.
    pub fn len(&self) -> u64 {
        self.end.0.saturating_sub(self.start.0)
    }

    /// Whether the range holds no frame.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether `gfn` lies inside.
    pub fn contains(&self, gfn: Gfn) -> bool {
        (self.start..self.end).contains(&gfn)
    }

    /// Whether the two ranges share a frame.
    pub fn overlaps(&self, other: &GfnRange) -> bool {
        self.start < other.end && other.start < self.end
    }

    /// The frame numbers as a plain range, for iteration.
    pub fn numbers(&self) -> Range<u64> {
        self.start.0..self.end.0
    }
}
