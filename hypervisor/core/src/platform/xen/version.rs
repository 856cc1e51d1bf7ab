//! `HYPERVISOR_xen_version`: the version, the strings and the feature bits ebbhv
//! reports (those of an HVM guest with a callback vector and a safe pvclock).

use crate::abi::platform::{feature, xenver, FeatureInfo};
use crate::addr::{CallerAddr, PAGE_SIZE};
use crate::error::Errno;
use crate::guest::GuestMemory;

/// The longest string sub-op (`XENVER_capabilities`, 1024 bytes).
const MAX_STRING: usize = 1024;

/// Writes `s` as a NUL-padded string of `len` bytes (truncated to leave the NUL).
/// `len` is one of the ABI's fixed string sizes, 1 to [`MAX_STRING`].
fn write_str(
    mem: &mut dyn GuestMemory,
    at: CallerAddr,
    s: &[u8],
    len: usize,
) -> Result<i64, Errno> {
    let mut buf = [0u8; MAX_STRING];
    let len = len.clamp(1, MAX_STRING);
    // The string, cut to leave room for its terminator; the rest stays 0.
    for (dst, src) in buf.iter_mut().zip(s).take(len - 1) {
        *dst = *src;
    }
    let out = buf.get(..len).unwrap_or(&buf);
    mem.write(at, out).map_err(|_| Errno::EFAULT)?;
    Ok(0)
}

/// `HYPERVISOR_xen_version(cmd, arg)`.
pub fn xen_version(mem: &mut dyn GuestMemory, cmd: u64, arg: CallerAddr) -> Result<i64, Errno> {
    match cmd {
        xenver::VERSION => Ok(i64::from(xenver::REPORTED)),
        xenver::EXTRAVERSION => write_str(mem, arg, b".0-ebbhv", 16),
        xenver::CAPABILITIES => write_str(mem, arg, b"hvm-3.0-x86_64", MAX_STRING),
        xenver::CHANGESET => write_str(mem, arg, b"ebbhv", 64),
        xenver::GUEST_HANDLE => write_str(mem, arg, b"", 16),
        xenver::PAGESIZE => Ok(PAGE_SIZE as i64),
        xenver::GET_FEATURES => {
            let mut b = [0u8; FeatureInfo::SIZE];
            mem.read(arg, &mut b).map_err(|_| Errno::EFAULT)?;
            let mut fi = FeatureInfo::read_from(&b).ok_or(Errno::EFAULT)?;
            fi.submap = match fi.submap_idx {
                0 => {
                    feature::WRITABLE_PAGE_TABLES
                        | feature::AUTO_TRANSLATED_PHYSMAP
                        | feature::HVM_CALLBACK_VECTOR
                        | feature::HVM_SAFE_PVCLOCK
                }
                _ => 0,
            };
            mem.write(arg, &fi.to_bytes()).map_err(|_| Errno::EFAULT)?;
            Ok(0)
        }
        _ => Err(Errno::ENOSYS),
    }
}
