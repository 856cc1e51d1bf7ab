//! The payload bundle: a cpio "newc" archive that QEMU hands over as the `-initrd`
//! module.
//!
//! `scripts/run-hv.sh` packs the guest's `vmlinux`, `initramfs` and `cmdline` into
//! one archive, because QEMU's PVH loader passes exactly one module. This module
//! finds a named member without copying; any malformed header ends the walk.

const HEADER: usize = 110;
const MAGIC: &[u8] = b"070701";
const TRAILER: &[u8] = b"TRAILER!!!";

/// One member of the archive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry<'a> {
    /// File name (without the NUL).
    pub name: &'a [u8],
    /// Byte offset of the contents from the start of the archive.
    pub offset: usize,
    /// The contents.
    pub data: &'a [u8],
}

fn hex8(b: &[u8]) -> Option<usize> {
    let s = core::str::from_utf8(b).ok()?;
    usize::from_str_radix(s, 16).ok()
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// Iterates over the members of `archive` up to the trailer.
pub fn entries(archive: &[u8]) -> impl Iterator<Item = Entry<'_>> {
    let mut pos = 0usize;
    core::iter::from_fn(move || {
        let h = archive.get(pos..)?.first_chunk::<HEADER>()?;
        if &h[..6] != MAGIC {
            return None;
        }
        let filesize = hex8(&h[54..62])?;
        let namesize = hex8(&h[94..102])?;
        let name_start = pos + HEADER;
        let name = archive.get(name_start..name_start.checked_add(namesize)?)?;
        let name = name.strip_suffix(&[0]).unwrap_or(name);
        let data_start = align4(name_start + namesize);
        let data = archive.get(data_start..data_start.checked_add(filesize)?)?;
        if name == TRAILER {
            return None;
        }
        pos = align4(data_start + filesize);
        Some(Entry {
            name,
            offset: data_start,
            data,
        })
    })
}

/// The member called `name`, if any.
pub fn find<'a>(archive: &'a [u8], name: &[u8]) -> Option<Entry<'a>> {
    entries(archive).find(|e| e.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::format;
    use std::vec::Vec;

    fn member(out: &mut Vec<u8>, name: &str, data: &[u8]) {
        let h =
            format!(
            "070701{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}",
            1, 0o100644, 0, 0, 1, 0, data.len(), 0, 0, 0, 0, name.len() + 1, 0
        );
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        while !out.len().is_multiple_of(4) {
            out.push(0);
        }
        out.extend_from_slice(data);
        while !out.len().is_multiple_of(4) {
            out.push(0);
        }
    }

    #[test]
    fn finds_members_and_stops_at_trailer() {
        let mut a = Vec::new();
        member(&mut a, "vmlinux", b"\x7fELF....");
        member(&mut a, "cmdline", b"console=hvc0");
        member(&mut a, "TRAILER!!!", b"");
        member(&mut a, "after", b"x");
        let c = find(&a, b"cmdline").unwrap();
        assert_eq!(c.data, b"console=hvc0");
        assert_eq!(&a[c.offset..c.offset + 7], b"console");
        assert_eq!(entries(&a).count(), 2);
        assert!(find(&a, b"after").is_none());
    }

    #[test]
    fn truncated_or_garbage_archives_end_the_walk() {
        let mut a = Vec::new();
        member(&mut a, "vmlinux", &[7u8; 100]);
        assert!(find(&a[..a.len() - 10], b"vmlinux").is_none());
        assert_eq!(entries(b"garbage").count(), 0);
        let mut bad = a.clone();
        bad[60] = b'z';
        assert_eq!(entries(&bad).count(), 0);
    }
}
