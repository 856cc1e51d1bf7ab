//! `HYPERVISOR_domctl`: only `XEN_DOMCTL_shadow_op` for log-dirty, only from the
//! control plane.
//!
//! ENABLE_LOGDIRTY (or ENABLE with the log-dirty mode bit) turns tracking on, OFF
//! turns it off, PEEK copies the bitmap, CLEAN copies it, empties it and
//! write-protects again. PEEK and CLEAN accept no mode bit but LOGDIRTY_FINAL. The
//! bitmap holds one bit per guest frame from 0 to the p2m's high-water mark; `pages`
//! comes back as the bits copied, `stats` as the counts since the last CLEAN. With
//! nested paging there is no shadow pool: GET_ALLOCATION reports 0 MiB and
//! SET_ALLOCATION is accepted and ignored. The caller pauses the domain around PEEK
//! and CLEAN, as Xen's toolstack does.

use crate::abi::codec::AbiRecord;
use crate::abi::domctl::*;
use crate::addr::{CallerAddr, DomId};
use crate::error::{Errno, Error};
use crate::guest::{read_record, write_record, GuestMemory};
use crate::hv::Hypervisor;
use crate::hypercall::Caller;

/// Bitmap bytes copied per write to the caller.
const COPY_CHUNK: usize = 512;

impl Hypervisor {
    pub(super) fn domctl(
        &mut self,
        caller: Caller,
        arg: CallerAddr,
        memory: &mut dyn GuestMemory,
    ) -> Result<i64, Error> {
        if caller != Caller::ControlPlane {
            return Err(Errno::EPERM.into());
        }
        let mut request: XenDomctl = read_record(memory, arg)?;
        if request.interface_version != XEN_DOMCTL_INTERFACE_VERSION {
            return Err(Errno::EACCES.into());
        }
        if request.cmd != XEN_DOMCTL_SHADOW_OP {
            return Err(Errno::ENOSYS.into());
        }
        let domain = self.target_domain(caller, request.domain)?;
        let mut op = XenDomctlShadowOp::decode(&request.u);
        self.shadow_op(domain, &mut op, memory)?;
        op.encode(&mut request.u);
        write_record(memory, arg, &request)?;
        Ok(0)
    }

    fn shadow_op(
        &mut self,
        domain: DomId,
        op: &mut XenDomctlShadowOp,
        memory: &mut dyn GuestMemory,
    ) -> Result<(), Errno> {
        match op.op {
            SHADOW_OP_OFF => self.log_dirty_disable(domain),
            SHADOW_OP_ENABLE_LOGDIRTY => self.log_dirty_enable(domain),
            SHADOW_OP_ENABLE if op.mode & SHADOW_ENABLE_LOG_DIRTY != 0 => {
                self.log_dirty_enable(domain)
            }
            SHADOW_OP_PEEK | SHADOW_OP_CLEAN => {
                if op.mode & !SHADOW_LOGDIRTY_FINAL != 0 {
                    return Err(Errno::EINVAL);
                }
                self.copy_dirty_bitmap(domain, op, memory)?;
                if op.op == SHADOW_OP_CLEAN {
                    self.log_dirty_clean(domain)?;
                }
                Ok(())
            }
            SHADOW_OP_GET_ALLOCATION => {
                op.mb = 0;
                Ok(())
            }
            SHADOW_OP_SET_ALLOCATION => Ok(()),
            _ => Err(Errno::EINVAL),
        }
    }

    /// Copies the first `op.pages` bits of the log (at most up to the high-water
    /// mark) to `op.dirty_bitmap`, unless that handle is NULL, and fills in `pages`
    /// and `stats`.
    fn copy_dirty_bitmap(
        &self,
        domain: DomId,
        op: &mut XenDomctlShadowOp,
        memory: &mut dyn GuestMemory,
    ) -> Result<(), Errno> {
        let dom = self.domain(domain).ok_or(Errno::ESRCH)?;
        let log = dom.log_dirty().ok_or(Errno::EINVAL)?;
        let size = dom.p2m().high_water().map_or(0, |gfn| gfn.0 + 1);
        let pages = op.pages.min(size);
        if op.dirty_bitmap != 0 {
            let bytes = pages.div_ceil(8);
            let mut buf = [0u8; COPY_CHUNK];
            let mut offset = 0u64;
            while offset < bytes {
                let len = (bytes - offset).min(COPY_CHUNK as u64) as usize;
                for (i, byte) in buf.iter_mut().take(len).enumerate() {
                    let index = offset + i as u64;
                    *byte = log.byte(index) & valid_bits(index, pages);
                }
                let addr = op.dirty_bitmap.checked_add(offset).ok_or(Errno::EFAULT)?;
                // `len` is at most the buffer's size.
                let chunk = buf.get(..len).ok_or(Errno::EFAULT)?;
                memory
                    .write(CallerAddr(addr), chunk)
                    .map_err(|_| Errno::EFAULT)?;
                offset += len as u64;
            }
        }
        op.pages = pages;
        op.fault_count = log.fault_count;
        op.dirty_count = log.dirty_count;
        Ok(())
    }
}

/// The bits of bitmap byte `index` that lie below `pages`.
fn valid_bits(index: u64, pages: u64) -> u8 {
    let first = index * 8;
    if first + 8 <= pages {
        0xff
    } else {
        ((1u16 << (pages - first)) - 1) as u8
    }
}
