//! The Xen ABI pieces the platform (`ebbhv`) serves itself, next to the memory
//! ABI the core serves: sub-op numbers, and the layouts of shared info,
//! vcpu_info, the pvclock record, the runstate area and the HVM/vCPU op arguments
//! (the hypercall numbers are [`super::hypercall`]).
//! x86-64 layouts, from Xen's `public/xen.h`, `public/vcpu.h`, `public/version.h`,
//! `public/hvm/hvm_op.h`, `public/hvm/params.h` (Linux: `include/xen/interface/`).

use crate::abi_struct;

/// `XENVER_*` sub-ops.
pub mod xenver {
    /// Version as major << 16 | minor.
    pub const VERSION: u64 = 0;
    /// Extra version string (16 bytes).
    pub const EXTRAVERSION: u64 = 1;
    /// Compile info (struct of strings).
    pub const COMPILE_INFO: u64 = 2;
    /// Capabilities string (1024 bytes).
    pub const CAPABILITIES: u64 = 3;
    /// Changeset string (64 bytes).
    pub const CHANGESET: u64 = 4;
    /// Platform parameters (virt_start).
    pub const PLATFORM_PARAMETERS: u64 = 5;
    /// Feature submaps.
    pub const GET_FEATURES: u64 = 6;
    /// Page size.
    pub const PAGESIZE: u64 = 7;
    /// Guest handle (16 bytes).
    pub const GUEST_HANDLE: u64 = 8;

    /// The version ebbhv reports (4.19), as `VERSION` returns it and CPUID leaf
    /// 0x40000001 shows it: one value, so the two never disagree.
    pub const REPORTED: u32 = 0x0004_0013;
}

/// `XENFEAT_*` bits of submap 0.
pub mod feature {
    /// Writable page tables.
    pub const WRITABLE_PAGE_TABLES: u32 = 1 << 0;
    /// The guest's physical addresses are translated by the hypervisor.
    pub const AUTO_TRANSLATED_PHYSMAP: u32 = 1 << 2;
    /// Upcalls through a callback vector.
    pub const HVM_CALLBACK_VECTOR: u32 = 1 << 8;
    /// The pvclock is safe to use from an HVM guest.
    pub const HVM_SAFE_PVCLOCK: u32 = 1 << 9;
}

/// `VCPUOP_*`.
pub mod vcpuop {
    /// Whether the vCPU is up.
    pub const IS_UP: u64 = 3;
    /// Register a guest-virtual runstate area.
    pub const REGISTER_RUNSTATE_MEMORY_AREA: u64 = 5;
    /// Stop the periodic timer.
    pub const STOP_PERIODIC_TIMER: u64 = 7;
    /// Set the one-shot timer.
    pub const SET_SINGLESHOT_TIMER: u64 = 8;
    /// Stop the one-shot timer.
    pub const STOP_SINGLESHOT_TIMER: u64 = 9;
    /// Move vcpu_info to a guest frame.
    pub const REGISTER_VCPU_INFO: u64 = 10;
    /// Register a guest-virtual copy of the pvclock record (for the vDSO).
    pub const REGISTER_VCPU_TIME_MEMORY_AREA: u64 = 13;
}

/// `HVMOP_*`.
pub mod hvmop {
    /// Set an HVM parameter.
    pub const SET_PARAM: u64 = 0;
    /// Get an HVM parameter.
    pub const GET_PARAM: u64 = 1;
    /// Number of `HVM_PARAM_*` indices ebbhv stores.
    pub const NR_PARAMS: usize = 64;
    /// HVM_PARAM_CALLBACK_IRQ.
    pub const PARAM_CALLBACK_IRQ: u32 = 0;
    /// HVM_PARAM_STORE_PFN.
    pub const PARAM_STORE_PFN: u32 = 1;
    /// HVM_PARAM_STORE_EVTCHN.
    pub const PARAM_STORE_EVTCHN: u32 = 2;
    /// HVM_PARAM_CONSOLE_PFN.
    pub const PARAM_CONSOLE_PFN: u32 = 17;
    /// HVM_PARAM_CONSOLE_EVTCHN.
    pub const PARAM_CONSOLE_EVTCHN: u32 = 18;
    /// HVM_PARAM_ACPI_IOPORTS_LOCATION.
    pub const PARAM_ACPI_IOPORTS_LOCATION: u32 = 19;
    /// HVM_PARAM_VM86_TSS.
    pub const PARAM_VM86_TSS: u32 = 23;
    /// HVM_PARAM_VM_GENERATION_ID_ADDR.
    pub const PARAM_VM_GENERATION_ID_ADDR: u32 = 34;
    /// HVM_PARAM_X87_FIP_WIDTH.
    pub const PARAM_X87_FIP_WIDTH: u32 = 36;
    /// HVM_PARAM_VM86_TSS_SIZED.
    pub const PARAM_VM86_TSS_SIZED: u32 = 37;

    /// Whether a guest may set its own parameter `index` with `HVMOP_set_param`.
    /// Xen's `hvm_allow_set_param` lets a domain set only CALLBACK_IRQ, the VM86
    /// TSS, ACPI_IOPORTS_LOCATION, VM_GENERATION_ID_ADDR, X87_FIP_WIDTH and the
    /// store and console event channels, and refuses the rest (the store and
    /// console frames among them) with `-EPERM`. ebbhv refuses the two event
    /// channels as well: its own side of the store reads `STORE_EVTCHN` to know
    /// where to notify, so a guest rewriting it would redirect the hypervisor.
    pub fn guest_may_set(index: u32) -> bool {
        matches!(
            index,
            PARAM_CALLBACK_IRQ
                | PARAM_ACPI_IOPORTS_LOCATION
                | PARAM_VM86_TSS
                | PARAM_VM_GENERATION_ID_ADDR
                | PARAM_X87_FIP_WIDTH
                | PARAM_VM86_TSS_SIZED
        )
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn the_guest_sets_only_its_callback_and_layout_params() {
            assert!(guest_may_set(PARAM_CALLBACK_IRQ));
            assert!(guest_may_set(PARAM_X87_FIP_WIDTH));
            for read_only in [
                PARAM_STORE_PFN,
                PARAM_STORE_EVTCHN,
                PARAM_CONSOLE_PFN,
                PARAM_CONSOLE_EVTCHN,
                3,
                63,
                64,
                u32::MAX,
            ] {
                assert!(!guest_may_set(read_only), "param {read_only}");
            }
        }
    }
}

/// `CONSOLEIO_*`.
pub mod consoleio {
    /// Write bytes.
    pub const WRITE: u64 = 0;
    /// Read bytes.
    pub const READ: u64 = 1;
}

/// `SCHEDOP_*`.
pub mod schedop {
    /// Yield.
    pub const YIELD: u64 = 0;
    /// Block until an event.
    pub const BLOCK: u64 = 1;
    /// Shut down (reason in `sched_shutdown`).
    pub const SHUTDOWN: u64 = 2;
}

/// `SHUTDOWN_*`: why a guest shuts down (`public/sched.h`).
pub mod shutdown {
    /// `SHUTDOWN_poweroff`.
    pub const POWEROFF: u32 = 0;
    /// `SHUTDOWN_reboot`.
    pub const REBOOT: u32 = 1;
    /// `SHUTDOWN_crash`.
    pub const CRASH: u32 = 3;
}

/// `HVM_PARAM_CALLBACK_IRQ` type 2 (in bits 63:56): deliver upcalls on the vector
/// in bits 7:0 (`public/hvm/params.h`).
pub const CALLBACK_TYPE_VECTOR: u64 = 2;

/// Bytes of one `vcpu_info`.
pub const VCPU_INFO_SIZE: usize = 64;
/// Offset of `vcpu_info.evtchn_upcall_pending`.
pub const VCPU_INFO_UPCALL_PENDING: usize = 0;
/// Offset of `vcpu_info.evtchn_pending_sel`.
pub const VCPU_INFO_PENDING_SEL: usize = 8;
/// Offset of `vcpu_info.time` (the pvclock record).
pub const VCPU_INFO_TIME: usize = 32;
/// Offset of `shared_info.vcpu_info[0]`.
pub const SHARED_INFO_VCPU0: usize = 0;
/// Offset of `shared_info.evtchn_pending`.
pub const SHARED_INFO_EVTCHN_PENDING: usize = 2048;
/// Offset of `shared_info.evtchn_mask`.
pub const SHARED_INFO_EVTCHN_MASK: usize = 2560;
/// Offset of `shared_info.wc_version`.
pub const SHARED_INFO_WC_VERSION: usize = 3072;

/// `PVCLOCK_TSC_STABLE_BIT`: the TSC is synchronised and never goes back.
pub const PVCLOCK_TSC_STABLE: u8 = 1 << 0;

abi_struct! {
    /// `struct vcpu_time_info` (32 bytes): the pvclock record.
    pub struct VcpuTimeInfo(32) {
        /// Odd while the hypervisor updates the record.
        version: u32 = 0,
        /// Padding.
        pad0: u32 = 4,
        /// TSC at `system_time`.
        tsc_timestamp: u64 = 8,
        /// Nanoseconds since the domain started, at `tsc_timestamp`.
        system_time: u64 = 16,
        /// TSC-delta to nanoseconds multiplier (32.32 fixed point, after the shift).
        tsc_to_system_mul: u32 = 24,
        /// Shift applied to the TSC delta before the multiply.
        tsc_shift: i8 = 28,
        /// `PVCLOCK_*` flags.
        flags: u8 = 29,
        /// Padding.
        pad1: [u8; 2] = 30,
    }
}

abi_struct! {
    /// The wall clock fields of `shared_info` (16 bytes at offset 3072).
    pub struct WallClock(16) {
        /// Odd while being updated.
        wc_version: u32 = 0,
        /// Seconds since the epoch at system time 0 (low 32 bits).
        wc_sec: u32 = 4,
        /// Nanoseconds.
        wc_nsec: u32 = 8,
        /// Seconds, high 32 bits.
        wc_sec_hi: u32 = 12,
    }
}

abi_struct! {
    /// `struct vcpu_register_vcpu_info` (16 bytes).
    pub struct RegisterVcpuInfo(16) {
        /// Guest frame that will hold the vcpu_info.
        mfn: u64 = 0,
        /// Offset inside that frame.
        offset: u32 = 8,
        /// Must be zero.
        rsvd: u32 = 12,
    }
}

abi_struct! {
    /// `struct vcpu_runstate_info` (48 bytes).
    pub struct RunstateInfo(48) {
        /// `RUNSTATE_*` (0 = running).
        state: i32 = 0,
        /// Padding.
        pad: u32 = 4,
        /// System time when `state` was entered.
        state_entry_time: u64 = 8,
        /// Time spent running.
        time_running: u64 = 16,
        /// Time runnable.
        time_runnable: u64 = 24,
        /// Time blocked.
        time_blocked: u64 = 32,
        /// Time offline.
        time_offline: u64 = 40,
    }
}

abi_struct! {
    /// `struct xen_hvm_param` (16 bytes).
    pub struct HvmParam(16) {
        /// Domain (`DOMID_SELF`).
        domid: u16 = 0,
        /// Padding.
        pad: u16 = 2,
        /// `HVM_PARAM_*`.
        index: u32 = 4,
        /// The value.
        value: u64 = 8,
    }
}

abi_struct! {
    /// `struct xen_feature_info` (8 bytes).
    pub struct FeatureInfo(8) {
        /// Which 32-bit submap.
        submap_idx: u32 = 0,
        /// Its bits (out).
        submap: u32 = 4,
    }
}

abi_struct! {
    /// `struct vcpu_set_singleshot_timer` (16 bytes).
    pub struct SingleshotTimer(16) {
        /// Absolute guest system time (ns) the timer is due at.
        timeout_abs_ns: u64 = 0,
        /// `VCPU_SSHOTTMR_*`.
        flags: u32 = 8,
        /// Padding.
        pad: u32 = 12,
    }
}

/// `VCPU_SSHOTTMR_future`: fail with -ETIME if the timeout has already passed.
pub const VCPU_SSHOTTMR_FUTURE: u32 = 1 << 0;

abi_struct! {
    /// `struct sched_shutdown` (4 bytes).
    pub struct SchedShutdown(4) {
        /// `SHUTDOWN_*` reason.
        reason: u32 = 0,
    }
}
