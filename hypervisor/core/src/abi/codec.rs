//! Little-endian encoding of ABI structures, field by field at their `offset_of!`.
//!
//! Decoding never fails and never panics: callers hand in exactly `SIZE` bytes (the
//! guest-memory layer reads exactly that many), and a short slice would read zeroes.

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

abi_integer!(u8, u16, u32, u64);

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

/// Decodes the field of type `T` at `offset`.
pub(crate) fn read_field<T: AbiRecord>(bytes: &[u8], offset: usize) -> T {
    T::decode(bytes.get(offset..).unwrap_or(&[]))
}

/// Encodes `value` at `offset`.
pub(crate) fn write_field<T: AbiRecord>(bytes: &mut [u8], offset: usize, value: &T) {
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
