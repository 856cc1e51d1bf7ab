//! Little-endian encoding of ABI structures, field by field at their offsets: the
//! one byte codec of the hypervisor workspace (the core's memory, domctl, sysctl,
//! xenstore and event channel structures, and `ebbhv-x86`'s start info and Xen
//! platform structures all go through [`AbiRecord`]).
//!
//! Decoding never fails and never panics: callers hand in exactly `SIZE` bytes (the
//! guest-memory layer reads exactly that many), and a short slice would read zeroes.
//! Two macros implement it: [`abi_record!`] for a `#[repr(C)]` struct declared
//! by hand (fields at their `offset_of!`), and [`abi_struct!`](crate::abi_struct)
//! for a struct declared together with the offsets a header or manual gives,
//! checked at compile time, and length-checked `read_from` / `write_to`.

/// A value with a fixed little-endian byte layout.
pub trait AbiRecord: Sized {
    /// Bytes in the encoding (the `sizeof` of the C structure).
    const SIZE: usize;

    /// Reads the value from the first `SIZE` bytes of `bytes`.
    fn decode(bytes: &[u8]) -> Self;

    /// Writes the value into the first `SIZE` bytes of `bytes`.
    fn encode(&self, bytes: &mut [u8]);
}

macro_rules! abi_integer {
    ($($ty:ty),*) => {$(
        impl AbiRecord for $ty {
            const SIZE: usize = core::mem::size_of::<$ty>();

            fn decode(bytes: &[u8]) -> Self {
                bytes
                    .get(..Self::SIZE)
                    .and_then(|b| b.try_into().ok())
                    .map_or(0, <$ty>::from_le_bytes)
            }

            fn encode(&self, bytes: &mut [u8]) {
                if let Some(out) = bytes.get_mut(..Self::SIZE) {
                    out.copy_from_slice(&self.to_le_bytes());
                }
            }
        }
    )*};
}

abi_integer!(u8, u16, u32, u64, i8, i32, i64);

impl<const N: usize> AbiRecord for [u8; N] {
    const SIZE: usize = N;

    fn decode(bytes: &[u8]) -> Self {
        let mut out = [0; N];
        if let Some(src) = bytes.get(..N) {
            out.copy_from_slice(src);
        }
        out
    }

    fn encode(&self, bytes: &mut [u8]) {
        if let Some(out) = bytes.get_mut(..N) {
            out.copy_from_slice(self);
        }
    }
}

/// Decodes the field of type `T` at `offset` (for the macros).
#[doc(hidden)]
pub fn read_field<T: AbiRecord>(bytes: &[u8], offset: usize) -> T {
    T::decode(bytes.get(offset..).unwrap_or(&[]))
}

/// Encodes `value` at `offset` (for the macros).
#[doc(hidden)]
pub fn write_field<T: AbiRecord>(bytes: &mut [u8], offset: usize, value: &T) {
    if let Some(out) = bytes.get_mut(offset..) {
        value.encode(out);
    }
}

/// Implements [`AbiRecord`] for a `#[repr(C)]` struct from its field list: each field
/// is encoded at its `offset_of!`.
macro_rules! abi_record {
    ($ty:ident { $($field:ident),* $(,)? }) => {
        impl $crate::abi::codec::AbiRecord for $ty {
            const SIZE: usize = core::mem::size_of::<$ty>();

            fn decode(bytes: &[u8]) -> Self {
                $ty {
                    $($field: $crate::abi::codec::read_field(
                        bytes,
                        core::mem::offset_of!($ty, $field),
                    ),)*
                }
            }

            fn encode(&self, bytes: &mut [u8]) {
                $(
                    // A copy, so that packed fields are never borrowed in place.
                    let value = { self.$field };
                    $crate::abi::codec::write_field(
                        bytes,
                        core::mem::offset_of!($ty, $field),
                        &value,
                    );
                )*
            }
        }
    };
}
pub(crate) use abi_record;

/// Declares a byte-exact ABI struct with the offsets its header or manual gives:
/// `abi_struct! { /// doc
/// pub struct Name(SIZE) { /// doc
/// field: u32 = OFFSET, ... } }`.
///
/// The size and every offset are checked at compile time; the struct gets an
/// [`AbiRecord`] implementation and `read_from` / `write_to` / `to_bytes`, which
/// refuse a short buffer (`None` / `false`) instead of reading zeroes.
#[macro_export]
macro_rules! abi_struct {
    (
        $(#[$m:meta])*
        pub struct $name:ident($size:expr) {
            $( $(#[$fm:meta])* $field:ident : $ty:ty = $off:expr ),* $(,)?
        }
    ) => {
        $(#[$m])*
        #[repr(C)]
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        pub struct $name { $( $(#[$fm])* pub $field: $ty ),* }

        const _: () = {
            assert!(core::mem::size_of::<$name>() == $size);
            $( assert!(core::mem::offset_of!($name, $field) == $off); )*
        };

        impl $crate::abi::codec::AbiRecord for $name {
            const SIZE: usize = $size;

            fn decode(bytes: &[u8]) -> Self {
                $name {
                    $( $field: $crate::abi::codec::read_field(bytes, $off), )*
                }
            }

            fn encode(&self, bytes: &mut [u8]) {
                $( $crate::abi::codec::write_field(bytes, $off, &self.$field); )*
            }
        }

        impl $name {
            /// Size of the structure in bytes.
            pub const SIZE: usize = $size;

            /// Decodes the structure from the start of `b`, if `b` is long enough.
            pub fn read_from(b: &[u8]) -> Option<Self> {
                (b.len() >= $size)
                    .then(|| <Self as $crate::abi::codec::AbiRecord>::decode(b))
            }

            /// Encodes the structure at the start of `b`; false if `b` is too short.
            pub fn write_to(&self, b: &mut [u8]) -> bool {
                if b.len() < $size {
                    return false;
                }
                <Self as $crate::abi::codec::AbiRecord>::encode(self, b);
                true
            }

            /// The structure as bytes.
            pub fn to_bytes(self) -> [u8; $size] {
                let mut b = [0u8; $size];
                self.write_to(&mut b);
                b
            }
        }
    };
}

#[cfg(test)]
mod tests {
    crate::abi_struct! {
        /// A test structure.
        pub struct T(16) {
            /// a
            a: u32 = 0,
            /// b
            b: u16 = 4,
            /// pad
            pad: [u8; 2] = 6,
            /// c
            c: u64 = 8,
        }
    }

    #[test]
    fn abi_struct_round_trips_and_refuses_short_buffers() {
        let t = T {
            a: 0x11223344,
            b: 0x5566,
            pad: [0, 0],
            c: 0x0102030405060708,
        };
        let b = t.to_bytes();
        assert_eq!(&b[..4], &[0x44, 0x33, 0x22, 0x11]);
        assert_eq!(T::read_from(&b), Some(t));
        assert_eq!(T::read_from(&b[..T::SIZE - 1]), None);
        let mut short = [0u8; 8];
        assert!(!t.write_to(&mut short));
    }
}
