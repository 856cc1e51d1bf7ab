//! The guest kernel loader's view of an ELF64 file: PT_LOAD segments at their
//! physical addresses and the PVH entry point from the `Xen` note
//! `XEN_ELFNOTE_PHYS32_ENTRY`.
//!
//! The file comes from the payload bundle and is not trusted: every offset and size
//! is checked against the file, and a malformed file is an [`ElfError`].

/// `XEN_ELFNOTE_PHYS32_ENTRY`.
pub const XEN_ELFNOTE_PHYS32_ENTRY: u32 = 18;

const PT_LOAD: u32 = 1;
const PT_NOTE: u32 = 4;
const EM_X86_64: u16 = 62;

/// Why a file cannot be loaded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElfError {
    /// Not a little-endian ELF64 x86-64 executable.
    NotElf64,
    /// A header or segment lies outside the file.
    Truncated,
    /// No `XEN_ELFNOTE_PHYS32_ENTRY` note.
    NoPvhEntry,
}

/// A loadable segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment<'a> {
    /// Physical load address.
    pub paddr: u64,
    /// Bytes from the file.
    pub data: &'a [u8],
    /// Bytes in memory (the rest after `data` is zero).
    pub mem_size: u64,
}

/// A checked ELF64 image.
pub struct Elf<'a> {
    file: &'a [u8],
    phoff: usize,
    phnum: usize,
}

fn u16_at(b: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(off..off + 2)?.try_into().ok()?))
}
fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(off..off + 4)?.try_into().ok()?))
}
fn u64_at(b: &[u8], off: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(off..off + 8)?.try_into().ok()?))
}

const PHDR_SIZE: usize = 56;

impl<'a> Elf<'a> {
    /// Checks the ELF header and the program header table.
    pub fn parse(file: &'a [u8]) -> Result<Elf<'a>, ElfError> {
        // The magic, ELFCLASS64 and ELFDATA2LSB.
        if file.len() < 64 || !matches!(file, [0x7f, b'E', b'L', b'F', 2, 1, ..]) {
            return Err(ElfError::NotElf64);
        }
        if u16_at(file, 18) != Some(EM_X86_64) {
            return Err(ElfError::NotElf64);
        }
        let phoff = u64_at(file, 32).ok_or(ElfError::Truncated)? as usize;
        let phentsize = u16_at(file, 54).ok_or(ElfError::Truncated)? as usize;
        let phnum = u16_at(file, 56).ok_or(ElfError::Truncated)? as usize;
        if phentsize != PHDR_SIZE {
            return Err(ElfError::NotElf64);
        }
        let end = phnum
            .checked_mul(PHDR_SIZE)
            .and_then(|n| n.checked_add(phoff));
        if end.is_none_or(|e| e > file.len()) {
            return Err(ElfError::Truncated);
        }
        Ok(Elf { file, phoff, phnum })
    }

    fn phdr(&self, i: usize) -> (u32, usize, u64, u64, u64) {
        // `parse` checked that the table lies inside the file; a field that did not
        // would read as 0, like a truncated one.
        let h = self
            .file
            .get(self.phoff + i * PHDR_SIZE..)
            .unwrap_or_default();
        let kind = u32_at(h, 0).unwrap_or(0);
        let offset = u64_at(h, 8).unwrap_or(0) as usize;
        let paddr = u64_at(h, 24).unwrap_or(0);
        let filesz = u64_at(h, 32).unwrap_or(0);
        let memsz = u64_at(h, 40).unwrap_or(0);
        (kind, offset, paddr, filesz, memsz)
    }

    fn bytes(&self, offset: usize, len: u64) -> Result<&'a [u8], ElfError> {
        let len = usize::try_from(len).map_err(|_| ElfError::Truncated)?;
        let end = offset.checked_add(len).ok_or(ElfError::Truncated)?;
        self.file.get(offset..end).ok_or(ElfError::Truncated)
    }

    /// The PT_LOAD segments, in file order.
    pub fn segments(&self) -> impl Iterator<Item = Result<Segment<'a>, ElfError>> + '_ {
        (0..self.phnum).filter_map(move |i| {
            let (kind, offset, paddr, filesz, memsz) = self.phdr(i);
            (kind == PT_LOAD).then(|| {
                if memsz < filesz {
                    return Err(ElfError::Truncated);
                }
                Ok(Segment {
                    paddr,
                    data: self.bytes(offset, filesz)?,
                    mem_size: memsz,
                })
            })
        })
    }

    /// The physical entry point from `XEN_ELFNOTE_PHYS32_ENTRY` (4- or 8-byte
    /// descriptor).
    pub fn pvh_entry(&self) -> Result<u64, ElfError> {
        for i in 0..self.phnum {
            let (kind, offset, _, filesz, _) = self.phdr(i);
            if kind != PT_NOTE {
                continue;
            }
            let notes = self.bytes(offset, filesz)?;
            let mut pos = 0usize;
            while pos + 12 <= notes.len() {
                let namesz = u32_at(notes, pos).ok_or(ElfError::Truncated)? as usize;
                let descsz = u32_at(notes, pos + 4).ok_or(ElfError::Truncated)? as usize;
                let kind = u32_at(notes, pos + 8).ok_or(ElfError::Truncated)?;
                let name_at = pos + 12;
                let desc_at = name_at + namesz.next_multiple_of(4);
                let name = notes
                    .get(name_at..name_at + namesz)
                    .ok_or(ElfError::Truncated)?;
                let desc = notes
                    .get(desc_at..desc_at + descsz)
                    .ok_or(ElfError::Truncated)?;
                if name == b"Xen\0" && kind == XEN_ELFNOTE_PHYS32_ENTRY {
                    return match descsz {
                        4 => Ok(u64::from(u32_at(desc, 0).ok_or(ElfError::Truncated)?)),
                        8 => u64_at(desc, 0).ok_or(ElfError::Truncated),
                        _ => Err(ElfError::Truncated),
                    };
                }
                pos = desc_at + descsz.next_multiple_of(4);
            }
        }
        Err(ElfError::NoPvhEntry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::vec::Vec;

    /// An ELF64 with one PT_LOAD (8 file bytes, 16 in memory, at 0x100_0000) and a
    /// note segment with a PHYS32_ENTRY of `entry` encoded in `desc_len` bytes.
    fn image(desc_len: usize, entry: u64) -> Vec<u8> {
        let mut f = std::vec![0u8; 64 + 2 * PHDR_SIZE];
        f[..4].copy_from_slice(b"\x7fELF");
        f[4] = 2;
        f[5] = 1;
        f[18..20].copy_from_slice(&EM_X86_64.to_le_bytes());
        f[32..40].copy_from_slice(&64u64.to_le_bytes());
        f[54..56].copy_from_slice(&(PHDR_SIZE as u16).to_le_bytes());
        f[56..58].copy_from_slice(&2u16.to_le_bytes());
        let data_off = f.len() as u64;
        f.extend_from_slice(b"KERNEL!!");
        let note_off = f.len() as u64;
        f.extend_from_slice(&4u32.to_le_bytes());
        f.extend_from_slice(&(desc_len as u32).to_le_bytes());
        f.extend_from_slice(&XEN_ELFNOTE_PHYS32_ENTRY.to_le_bytes());
        f.extend_from_slice(b"Xen\0");
        f.extend_from_slice(&entry.to_le_bytes()[..desc_len]);
        let note_len = f.len() as u64 - note_off;
        let ph = |f: &mut Vec<u8>,
                  i: usize,
                  kind: u32,
                  off: u64,
                  paddr: u64,
                  filesz: u64,
                  memsz: u64| {
            let h = &mut f[64 + i * PHDR_SIZE..];
            h[0..4].copy_from_slice(&kind.to_le_bytes());
            h[8..16].copy_from_slice(&off.to_le_bytes());
            h[24..32].copy_from_slice(&paddr.to_le_bytes());
            h[32..40].copy_from_slice(&filesz.to_le_bytes());
            h[40..48].copy_from_slice(&memsz.to_le_bytes());
        };
        ph(&mut f, 0, PT_LOAD, data_off, 0x100_0000, 8, 16);
        ph(&mut f, 1, PT_NOTE, note_off, 0, note_len, note_len);
        f
    }

    #[test]
    fn finds_segments_and_the_pvh_entry() {
        for (len, entry) in [(8, 0x16e_cd20u64), (4, 0x100_0040)] {
            let f = image(len, entry);
            let elf = Elf::parse(&f).unwrap();
            let segs: Vec<_> = elf.segments().collect::<Result<_, _>>().unwrap();
            assert_eq!(
                segs,
                [Segment {
                    paddr: 0x100_0000,
                    data: b"KERNEL!!",
                    mem_size: 16
                }]
            );
            assert_eq!(elf.pvh_entry(), Ok(entry));
        }
    }

    #[test]
    fn rejects_malformed_files() {
        assert!(matches!(Elf::parse(b"not an elf"), Err(ElfError::NotElf64)));
        let f = image(8, 1);
        assert!(matches!(Elf::parse(&f[..100]), Err(ElfError::Truncated)));
        let mut bad = f.clone();
        bad[64 + 32..64 + 40].copy_from_slice(&u64::MAX.to_le_bytes()); // filesz
        let elf = Elf::parse(&bad).unwrap();
        assert!(elf.segments().any(|s| s.is_err()));
        let mut no_note = f.clone();
        no_note[64 + PHDR_SIZE..64 + PHDR_SIZE + 4].copy_from_slice(&0u32.to_le_bytes());
        assert_eq!(
            Elf::parse(&no_note).unwrap().pvh_entry(),
            Err(ElfError::NoPvhEntry)
        );
    }
}
