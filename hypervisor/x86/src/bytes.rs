//! Little-endian byte views of ABI structures, without `unsafe`.
//!
//! Guest and firmware structures arrive as bytes in memory that the hypervisor does
//! not trust. [`abi_struct!`] declares a `#[repr(C)]` struct whose size and field
//! offsets are checked at compile time against the numbers the header or manual
//! gives, and generates `read_from` / `write_to`, which copy field by field so that
//! a short or misaligned buffer is a `None`/`false`, never undefined behaviour.

/// A field type that has a little-endian byte encoding.
pub trait Le: Sized {
    /// Bytes in the encoding.
    const LEN: usize;
    /// Decodes from the first [`Le::LEN`] bytes of `b` (the caller checked the length).
    fn get(b: &[u8]) -> Self;
    /// Encodes into the first [`Le::LEN`] bytes of `b` (the caller checked the length).
    fn put(&self, b: &mut [u8]);
}

macro_rules! le_int {
    ($($t:ty),*) => {$(
        impl Le for $t {
            const LEN: usize = core::mem::size_of::<$t>();
            fn get(b: &[u8]) -> Self {
                let mut a = [0u8; core::mem::size_of::<$t>()];
                a.copy_from_slice(&b[..Self::LEN]);
                <$t>::from_le_bytes(a)
            }
            fn put(&self, b: &mut [u8]) {
                b[..Self::LEN].copy_from_slice(&self.to_le_bytes());
            }
        }
    )*};
}
le_int!(u8, u16, u32, u64, i8, i32, i64);

impl<const N: usize> Le for [u8; N] {
    const LEN: usize = N;
    fn get(b: &[u8]) -> Self {
        let mut a = [0u8; N];
        a.copy_from_slice(&b[..N]);
        a
    }
    fn put(&self, b: &mut [u8]) {
        b[..N].copy_from_slice(self);
    }
}

/// Declares a byte-exact ABI struct: `abi_struct! { /// doc
/// pub struct Name(SIZE) { /// doc
/// field: u32 = OFFSET, ... } }`.
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

        impl $name {
            /// Size of the structure in bytes.
            pub const SIZE: usize = $size;

            /// Decodes the structure from the start of `b`, if `b` is long enough.
            pub fn read_from(b: &[u8]) -> Option<Self> {
                if b.len() < $size {
                    return None;
                }
                Some(Self { $( $field: <$ty as $crate::bytes::Le>::get(&b[$off..]) ),* })
            }

            /// Encodes the structure at the start of `b`; false if `b` is too short.
            pub fn write_to(&self, b: &mut [u8]) -> bool {
                if b.len() < $size {
                    return false;
                }
                $( <$ty as $crate::bytes::Le>::put(&self.$field, &mut b[$off..]); )*
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
    abi_struct! {
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
    fn roundtrip_and_short_buffers() {
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
