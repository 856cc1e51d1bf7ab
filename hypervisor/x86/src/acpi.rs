//! The guest's ACPI tables: RSDP → XSDT → {FADT → DSDT, MADT}.
//!
//! Linux installs its Xen clock event only when it has a local APIC, which it
//! learns from the MADT; so the guest gets a minimal set of tables (the same shape
//! as libxl's for PVH): a hardware-reduced FADT (no PM blocks, no SCI, no legacy
//! devices, no CMOS RTC, no VGA), an empty DSDT, and a MADT with one local APIC and
//! no I/O APIC and no PC-AT 8259 flag. Layouts are from the ACPI 6.5 specification
//! (5.2.5.3 RSDP, 5.2.8 XSDT, 5.2.9 FADT, 5.2.12 MADT).

use crate::addr::GuestPhys;

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
/// FADT IAPC_BOOT_ARCH: VGA not present.
const BOOT_ARCH_NO_VGA: u16 = 1 << 2;
/// FADT IAPC_BOOT_ARCH: CMOS RTC not present.
const BOOT_ARCH_NO_CMOS_RTC: u16 = 1 << 5;
/// MADT entry type: processor local APIC.
const MADT_LOCAL_APIC: u8 = 0;
/// The architectural local APIC base (never used by an x2APIC guest).
const LAPIC_ADDRESS: u32 = 0xfee0_0000;

fn put(b: &mut [u8], off: usize, v: &[u8]) {
    b[off..off + v.len()].copy_from_slice(v);
}

fn checksum(b: &[u8]) -> u8 {
    0u8.wrapping_sub(b.iter().fold(0u8, |a, &x| a.wrapping_add(x)))
}

fn header(b: &mut [u8], sig: &[u8; 4], len: usize, rev: u8) {
    put(b, 0, sig);
    put(b, 4, &(len as u32).to_le_bytes());
    b[8] = rev;
    put(b, 10, b"EBBHV ");
    put(b, 16, b"EBBHVTBL");
    put(b, 24, &1u32.to_le_bytes());
    put(b, 28, b"EBB ");
    put(b, 32, &1u32.to_le_bytes());
}

fn seal(b: &mut [u8], len: usize) {
    b[9] = 0;
    b[9] = checksum(&b[..len]);
}

/// Writes the tables into `out` (at least [`TABLES_BYTES`], which the guest sees at
/// `base`) for one vCPU with local APIC id 0. Returns the RSDP's address.
pub fn build(base: GuestPhys, out: &mut [u8]) -> GuestPhys {
    let out = &mut out[..TABLES_BYTES];
    out.fill(0);
    let at = |off: usize| base.0 + off as u64;

    {
        let d = &mut out[DSDT_OFF..];
        header(d, b"DSDT", HEADER_LEN, 2);
        seal(d, HEADER_LEN);
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
        put(f, 112, &FADT_HW_REDUCED_ACPI.to_le_bytes());
        put(f, 140, &at(DSDT_OFF).to_le_bytes());
        put(f, 268, b"XenVMMXe");
        seal(f, FADT_LEN);
    }
    {
        let m = &mut out[MADT_OFF..];
        header(m, b"APIC", MADT_LEN, 4);
        put(m, 36, &LAPIC_ADDRESS.to_le_bytes());
        // Flags 0: no PC-AT compatible 8259s.
        m[44] = MADT_LOCAL_APIC;
        m[45] = 8;
        m[46] = 0; // ACPI processor UID
        m[47] = 0; // APIC id
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
        r[15] = 2;
        put(r, 20, &36u32.to_le_bytes());
        put(r, 24, &at(XSDT_OFF).to_le_bytes());
        r[8] = checksum(&r[..20]);
        r[32] = checksum(&r[..36]);
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
                let dsdt = u64::from_le_bytes(tbl[140..148].try_into().unwrap());
                assert_eq!(&table_at(&t, base, dsdt)[..4], b"DSDT");
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
