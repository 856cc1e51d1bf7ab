// SPDX-License-Identifier: GPL-2.0

//! Target parsing: what the C driver's sysfs files (`target_kb`: `simple_strtoull` in
//! base 0; `target`: `memparse`) and the toolstack's `memory/target` (decimal KiB)
//! accept, and the junk ebb refuses where the C driver would read a prefix.

use crate::balloon::target::kib_to_pages;
use crate::balloon::target::pages_to_kib;
use crate::balloon::target::parse_bool;
use crate::balloon::target::parse_bytes;
use crate::balloon::target::parse_number;
use crate::balloon::target::parse_u32;
use crate::balloon::target::parse_xenstore_number;
use crate::balloon::target::Invalid;

#[test]
fn numbers_in_base_0_as_the_c_driver_reads_them() {
    assert_eq!(parse_number(b"1048576"), Ok(1048576));
    assert_eq!(parse_number(b"1048576\n"), Ok(1048576));
    assert_eq!(parse_number(b"0x100000"), Ok(0x100000));
    assert_eq!(parse_number(b"0X100000\n"), Ok(0x100000));
    assert_eq!(parse_number(b"0xfFfF"), Ok(0xffff));
    assert_eq!(parse_number(b"04000000"), Ok(0o4000000));
    assert_eq!(parse_number(b"010"), Ok(8));
    assert_eq!(parse_number(b"0"), Ok(0));
    assert_eq!(parse_number(b"0\n"), Ok(0));
    assert_eq!(parse_number(b"18446744073709551615"), Ok(u64::MAX));
    assert_eq!(parse_number(b"0xffffffffffffffff"), Ok(u64::MAX));
}

#[test]
fn junk_numbers_are_refused() {
    for junk in [
        &b""[..],
        b"\n",
        b"\n\n",
        b"1\n\n",
        b"-1",
        b"+1",
        b" 1",
        b"1 ",
        b"12abc",
        b"0x",
        b"0x\n",
        b"0xg",
        b"08",
        b"09",
        b"1.5",
        b"1e6",
        b"18446744073709551616",
        b"0x10000000000000000",
        b"1M",
    ] {
        assert_eq!(parse_number(junk), Err(Invalid), "{junk:?}");
    }
}

#[test]
fn u32_values_fit_or_are_refused() {
    assert_eq!(parse_u32(b"32\n"), Ok(32));
    assert_eq!(parse_u32(b"0x20"), Ok(32));
    assert_eq!(parse_u32(b"4294967295"), Ok(u32::MAX));
    assert_eq!(parse_u32(b"4294967296"), Err(Invalid));
    assert_eq!(parse_u32(b"-1"), Err(Invalid));
}

#[test]
fn byte_counts_take_memparse_suffixes() {
    assert_eq!(parse_bytes(b"536870912"), Ok(512 << 20));
    assert_eq!(parse_bytes(b"536870912\n"), Ok(512 << 20));
    assert_eq!(parse_bytes(b"4k"), Ok(4 << 10));
    assert_eq!(parse_bytes(b"4K"), Ok(4 << 10));
    assert_eq!(parse_bytes(b"512M"), Ok(512 << 20));
    assert_eq!(parse_bytes(b"512m\n"), Ok(512 << 20));
    assert_eq!(parse_bytes(b"1g"), Ok(1 << 30));
    assert_eq!(parse_bytes(b"1G"), Ok(1 << 30));
    assert_eq!(parse_bytes(b"2T"), Ok(2 << 40));
    assert_eq!(parse_bytes(b"3p"), Ok(3 << 50));
    assert_eq!(parse_bytes(b"15E"), Ok(15 << 60));
    assert_eq!(parse_bytes(b"0x10M"), Ok(16 << 20));
    assert_eq!(parse_bytes(b"010K"), Ok(8 << 10));
    assert_eq!(parse_bytes(b"0"), Ok(0));
    assert_eq!(parse_bytes(b"0K"), Ok(0));
}

#[test]
fn junk_byte_counts_are_refused() {
    for junk in [
        &b""[..],
        b"\n",
        b"M",
        b"K\n",
        b"512MB",
        b"512 M",
        b"512M ",
        b"1X",
        b"1b",
        b"-512M",
        b"16E",
        b"0x1000000000000000K",
        b"18446744073709551616",
        b"1.5G",
    ] {
        assert_eq!(parse_bytes(junk), Err(Invalid), "{junk:?}");
    }
}

#[test]
fn booleans_as_kstrtobool_spells_them() {
    for yes in [&b"1"[..], b"y", b"Y", b"yes", b"on", b"On", b"ON", b"1\n"] {
        assert_eq!(parse_bool(yes), Ok(true), "{yes:?}");
    }
    for no in [&b"0"[..], b"n", b"N", b"no", b"off", b"Off", b"OFF", b"0\n"] {
        assert_eq!(parse_bool(no), Ok(false), "{no:?}");
    }
    for junk in [&b""[..], b"2", b"-1", b"maybe", b"o", b" 1", b"1 "] {
        assert_eq!(parse_bool(junk), Err(Invalid), "{junk:?}");
    }
}

#[test]
fn xenstore_targets_are_decimal_kib_only() {
    assert_eq!(parse_xenstore_number(b"1048576"), Ok(1048576));
    assert_eq!(parse_xenstore_number(b"0"), Ok(0));
    assert_eq!(parse_xenstore_number(b"007"), Ok(7));
    assert_eq!(parse_xenstore_number(b"18446744073709551615"), Ok(u64::MAX));
    for junk in [
        &b""[..],
        b"0x10",
        b"12abc",
        b"-1",
        b"+1",
        b" 1",
        b"1 ",
        b"1\n",
        b"1M",
        b"18446744073709551616",
    ] {
        assert_eq!(parse_xenstore_number(junk), Err(Invalid), "{junk:?}");
    }
}

#[test]
fn kib_and_pages_convert_rounding_down() {
    assert_eq!(kib_to_pages(0), 0);
    assert_eq!(kib_to_pages(3), 0);
    assert_eq!(kib_to_pages(4), 1);
    assert_eq!(kib_to_pages(4095), 1023);
    assert_eq!(kib_to_pages(1048576), 262144);
    assert_eq!(kib_to_pages(u64::MAX), (u64::MAX / 4) as usize);
    assert_eq!(pages_to_kib(262144), 1048576);
    assert_eq!(pages_to_kib(usize::MAX), u64::MAX);
}
