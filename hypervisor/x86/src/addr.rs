//! Address spaces of the platform, each its own type.
//!
//! A guest-physical address is not a host-physical one (the NPT sits between them),
//! and a guest-virtual one needs the guest's page tables to mean anything. Mixing
//! them up is the classic hypervisor bug, so each is a newtype and every conversion
//! is a named function.

use core::fmt;

/// Bytes in a 4 KiB page.
pub const PAGE_SIZE: u64 = 4096;

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

            /// Its 4 KiB frame number.
            pub fn frame(self) -> u64 {
                self.0 >> 12
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
    /// A guest-physical address: what the guest believes is physical memory, what the
    /// NPT translates.
    GuestPhys,
    "gpa:"
);
address!(
    /// A guest-virtual address: meaningful only through the guest's own page tables.
    GuestVirt,
    "gva:"
);
address!(
    /// A host-physical (machine) address. ebbhv identity-maps machine memory, so the
    /// platform turns one into a pointer in exactly one place.
    HostPhys,
    "hpa:"
);
