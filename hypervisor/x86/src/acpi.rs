//! The guest's ACPI tables: RSDP → XSDT → {FADT → DSDT, MADT}.
//!
//! Linux installs its Xen clock event only when it has a local APIC, which it
//! learns from the MADT; so the guest gets a minimal set of tables (the same shape
//! as libxl's for PVH): a hardware-reduced FADT (no PM blocks, no SCI, no legacy
//! devices, no CMOS RTC, no VGA), a DSDT holding only `\_S5`, and a MADT with one
//! local APIC and no I/O APIC and no PC-AT 8259 flag. Layouts are from the ACPI 6.5
//! specification (5.2.5.3 RSDP, 5.2.8 XSDT, 5.2.9 FADT, 5.2.12 MADT, 5.2.3.2 GAS,
//! 4.8.3.7 sleep control register, 7.4.2 `\_Sx`).
//!
//! Linux PVH has no Xen hypercall for power-off or reboot: it powers off through
//! ACPI S5 and reboots through the ACPI reset register. So the FADT names a sleep
//! control register ([`SLEEP_CONTROL_PORT`]; a write of [`SLEEP_TYPE_S5`] with
//! [`SLEEP_ENABLE`] is power-off), a sleep status register next to it, and a reset
//! register ([`RESET_PORT`], value [`RESET_VALUE`]); the platform turns those port
//! writes into the end of the run.

use ebbhv_core::addr::GuestPhys;

/// Bytes [`build`] writes.
pub const TABLES_BYTES: usize = 1024;

const RSDP_OFF: usize = 0;
const XSDT_OFF: usize = 64;
const FADT_OFF: usize = 128;
const DSDT_OFF: usize = 448;
const MADT_OFF: usize = 512;

const HEADER_LEN: usize = 36;
const FADT_LEN: usize = 276;
const MADT_LEN: usize = 44 + 8;
const XSDT_LEN: usize = HEADER_LEN + 2 * 8;

/// FADT flag: hardware-reduced ACPI.
const FADT_HW_REDUCED_ACPI: u32 = 1 << 20;
/// FADT flag: the reset register is supported.
const FADT_RESET_REG_SUP: u32 = 1 << 10;

/// The sleep control register's I/O port (FADT SLEEP_CONTROL_REG, 8 bits).
pub const SLEEP_CONTROL_PORT: u16 = 0x604;
/// The sleep status register's I/O port (FADT SLEEP_STATUS_REG, 8 bits).
pub const SLEEP_STATUS_PORT: u16 = 0x605;
/// Sleep control: SLP_EN.
pub const SLEEP_ENABLE: u8 = 1 << 5;
/// Sleep control: the SLP_TYP field (bits 2..4).
pub const SLEEP_TYPE_MASK: u8 = 0x1c;
/// Sleep control: SLP_TYP of S5 (soft off), as `\_S5` gives it.
pub const SLEEP_TYPE_S5: u8 = 5 << 2;
/// The reset register's I/O port (FADT RESET_REG, 8 bits; 0xCF9 as on PCs).
pub const RESET_PORT: u16 = 0xcf9;
/// The value written to the reset register to reset.
pub const RESET_VALUE: u8 = 0x06;

/// What a guest write to one of the FADT's power registers asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PowerRequest {
    /// Enter S5: power off.
    PowerOff,
    /// Reset the machine: reboot.
    Reset,
}

/// Decodes a guest OUT of `value` to `port`: S5 with SLP_EN on the sleep control
/// register, or the reset value on the reset register; anything else is `None`.
pub fn power_request(port: u16, value: u8) -> Option<PowerRequest> {
    match port {
        SLEEP_CONTROL_PORT
            if value & SLEEP_ENABLE != 0 && value & SLEEP_TYPE_MASK == SLEEP_TYPE_S5 =>
        {
            Some(PowerRequest::PowerOff)
        }
        RESET_PORT if value == RESET_VALUE => Some(PowerRequest::Reset),
        _ => None,
    }
}

/// The DSDT's AML: `Name (_S5, Package (4) { 5, 5, 0, 0 })`.
const DSDT_AML: [u8; 14] = [
    0x08, b'_', b'S', b'5', b'_', // NameOp "_S5_"
    0x12, 0x08, 0x04, // PackageOp, PkgLength 8, NumElements 4
    0x0a, 0x05, 0x0a, 0x05, // BytePrefix 5 (SLP_TYPa), BytePrefix 5 (SLP_TYPb)
    0x00, 0x00, // Zero, Zero (reserved)
];
const DSDT_LEN: usize = HEADER_LEN + DSDT_AML.len();

/// A Generic Address Structure for an 8-bit register at an I/O port.
fn gas_io8(port: u16) -> [u8; 12] {
    let mut g = [0u8; 12];
    g[0] = 1; // system I/O space
    g[1] = 8; // register bit width
    g[3] = 1; // byte access
    g[4..12].copy_from_slice(&u64::from(port).to_le_bytes());
    g
}
/// FADT IAPC_BOOT_ARCH: VGA not present.
const BOOT_ARCH_NO_VGA: u16 = 1 << 2;
/// FADT IAPC_BOOT_ARCH: CMOS RTC not present.
const BOOT_ARCH_NO_CMOS_RTC: u16 = 1 << 5;
/// MADT entry type: processor local APIC.
const MADT_LOCAL_APIC: u8 = 0;
/// The architectural local APIC base (never used by an x2APIC guest).
const LAPIC_ADDRESS: u32 = 0xfee0_0000;

// Every table fits in its place: the offsets below are constants inside these.
const _: () = assert!(RSDP_OFF + 36 <= XSDT_OFF);
const _: () = assert!(XSDT_OFF + XSDT_LEN <= FADT_OFF);
const _: () = assert!(FADT_OFF + FADT_LEN <= DSDT_OFF);
const _: () = assert!(DSDT_OFF + DSDT_LEN <= MADT_OFF);
const _: () = assert!(MADT_OFF + MADT_LEN <= TABLES_BYTES);

/// Writes `v` at `off` of a table. The offsets are constants within the table's
/// length (checked above and by the tests), so the write always lands.
fn put(b: &mut [u8], off: usize, v: &[u8]) {
    if let Some(dst) = b.get_mut(off..off + v.len()) {
        dst.copy_from_slice(v);
    }
}

fn checksum(b: &[u8]) -> u8 {
    0u8.wrapping_sub(b.iter().fold(0u8, |a, &x| a.wrapping_add(x)))
}

fn header(b: &mut [u8], sig: &[u8; 4], len: usize, rev: u8) {
    put(b, 0, sig);
    put(b, 4, &(len as u32).to_le_bytes());
    put(b, 8, &[rev]);
    put(b, 10, b"EBBHV ");
    put(b, 16, b"EBBHVTBL");
    put(b, 24, &1u32.to_le_bytes());
    put(b, 28, b"EBB ");
    put(b, 32, &1u32.to_le_bytes());
}

fn seal(b: &mut [u8], len: usize) {
    put(b, 9, &[0]);
    let sum = checksum(b.get(..len).unwrap_or(b));
    put(b, 9, &[sum]);
}

/// Writes the tables into `out` (which the guest sees at `base`) for one vCPU with
/// local APIC id 0. Returns the RSDP's address.
pub fn build(base: GuestPhys, out: &mut [u8; TABLES_BYTES]) -> GuestPhys {
    out.fill(0);
    let at = |off: usize| base.0 + off as u64;

    {
        let d = &mut out[DSDT_OFF..];
        header(d, b"DSDT", DSDT_LEN, 2);
        put(d, HEADER_LEN, &DSDT_AML);
        seal(d, DSDT_LEN);
    }
    {
        let f = &mut out[FADT_OFF..];
        header(f, b"FACP", FADT_LEN, 6);
        put(f, 40, &(at(DSDT_OFF) as u32).to_le_bytes());
        put(
            f,
            109,
            &(BOOT_ARCH_NO_VGA | BOOT_ARCH_NO_CMOS_RTC).to_le_bytes(),
        );
        put(
            f,
            112,
            &(FADT_HW_REDUCED_ACPI | FADT_RESET_REG_SUP).to_le_bytes(),
        );
        put(f, 116, &gas_io8(RESET_PORT));
        put(f, 128, &[RESET_VALUE]);
        put(f, 140, &at(DSDT_OFF).to_le_bytes());
        put(f, 244, &gas_io8(SLEEP_CONTROL_PORT));
        put(f, 256, &gas_io8(SLEEP_STATUS_PORT));
        put(f, 268, b"XenVMMXe");
        seal(f, FADT_LEN);
    }
    {
        let m = &mut out[MADT_OFF..];
        header(m, b"APIC", MADT_LEN, 4);
        put(m, 36, &LAPIC_ADDRESS.to_le_bytes());
        // Flags 0: no PC-AT compatible 8259s.
        // Type, length 8, ACPI processor UID 0, APIC id 0.
        put(m, 44, &[MADT_LOCAL_APIC, 8, 0, 0]);
        put(m, 48, &1u32.to_le_bytes()); // enabled
        seal(m, MADT_LEN);
    }
    {
        let x = &mut out[XSDT_OFF..];
        header(x, b"XSDT", XSDT_LEN, 1);
        put(x, 36, &at(FADT_OFF).to_le_bytes());
        put(x, 44, &at(MADT_OFF).to_le_bytes());
        seal(x, XSDT_LEN);
    }
    {
        let r = &mut out[RSDP_OFF..];
        put(r, 0, b"RSD PTR ");
        put(r, 9, b"EBBHV ");
        put(r, 15, &[2]);
        put(r, 20, &36u32.to_le_bytes());
        put(r, 24, &at(XSDT_OFF).to_le_bytes());
        // The ACPI 1.0 checksum over the first 20 bytes, the extended one over all 36.
        let sum = checksum(r.get(..20).unwrap_or(r));
        put(r, 8, &[sum]);
        let sum = checksum(r.get(..36).unwrap_or(r));
        put(r, 32, &[sum]);
    }
    base
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sum(b: &[u8]) -> u8 {
        b.iter().fold(0u8, |a, &x| a.wrapping_add(x))
    }

    fn table_at(t: &[u8], base: u64, addr: u64) -> &[u8] {
        let off = (addr - base) as usize;
        let len = u32::from_le_bytes(t[off + 4..off + 8].try_into().unwrap()) as usize;
        &t[off..off + len]
    }

    #[test]
    fn power_register_writes() {
        // Linux's acpi_hw_extended_sleep(S5): SLP_TYP 5 << 2 | SLP_EN.
        assert_eq!(power_request(0x604, 0x34), Some(PowerRequest::PowerOff));
        assert_eq!(power_request(0x604, 0x14), None, "no SLP_EN");
        assert_eq!(power_request(0x604, 0x20 | (3 << 2)), None, "S3 is not off");
        assert_eq!(power_request(0x605, 0x80), None, "status register");
        assert_eq!(power_request(0xcf9, 0x06), Some(PowerRequest::Reset));
        assert_eq!(power_request(0xcf9, 0x02), None);
    }

    #[test]
    fn tables_chain_and_checksum() {
        let base = 0xe_0000u64;
        let mut t = [0xaau8; TABLES_BYTES];
        let rsdp = build(GuestPhys(base), &mut t);
        assert_eq!(rsdp, GuestPhys(base));
        assert_eq!(&t[..8], b"RSD PTR ");
        assert_eq!(sum(&t[..20]), 0);
        assert_eq!(sum(&t[..36]), 0);
        let xsdt_addr = u64::from_le_bytes(t[24..32].try_into().unwrap());
        let xsdt = table_at(&t, base, xsdt_addr);
        assert_eq!(&xsdt[..4], b"XSDT");
        assert_eq!(sum(xsdt), 0);
        let mut sigs = [[0u8; 4]; 2];
        for (i, s) in sigs.iter_mut().enumerate() {
            let a = u64::from_le_bytes(xsdt[36 + 8 * i..44 + 8 * i].try_into().unwrap());
            let tbl = table_at(&t, base, a);
            assert_eq!(sum(tbl), 0);
            s.copy_from_slice(&tbl[..4]);
            if &tbl[..4] == b"FACP" {
                let flags = u32::from_le_bytes(tbl[112..116].try_into().unwrap());
                assert_ne!(flags & FADT_HW_REDUCED_ACPI, 0);
                assert_ne!(flags & FADT_RESET_REG_SUP, 0);
                assert_eq!(&tbl[116..120], &[1, 8, 0, 1], "reset register: I/O, 8 bits");
                assert_eq!(&tbl[120..128], &0xcf9u64.to_le_bytes());
                assert_eq!(tbl[128], RESET_VALUE);
                assert_eq!(&tbl[244..248], &[1, 8, 0, 1], "sleep control: I/O, 8 bits");
                assert_eq!(&tbl[248..256], &0x604u64.to_le_bytes());
                assert_eq!(&tbl[260..268], &0x605u64.to_le_bytes());
                let dsdt_addr = u64::from_le_bytes(tbl[140..148].try_into().unwrap());
                let dsdt = table_at(&t, base, dsdt_addr);
                assert_eq!(&dsdt[..4], b"DSDT");
                assert_eq!(sum(dsdt), 0);
                assert_eq!(&dsdt[36..41], b"\x08_S5_", "\\_S5 is the only object");
                assert_eq!(dsdt.len(), 50);
                assert!(DSDT_OFF + dsdt.len() <= MADT_OFF);
            }
            if &tbl[..4] == b"APIC" {
                assert_eq!(
                    u32::from_le_bytes(tbl[40..44].try_into().unwrap()),
                    0,
                    "no 8259"
                );
                assert_eq!(&tbl[44..48], &[0, 8, 0, 0], "one local APIC, id 0");
                assert_eq!(tbl.len(), 52, "and nothing else (no I/O APIC)");
            }
        }
        assert_eq!(sigs, [*b"FACP", *b"APIC"]);
    }
}
