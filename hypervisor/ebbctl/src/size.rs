//! Memory sizes as `xl mem-set` takes them: a number with an optional unit suffix
//! (`k`/`K` KiB, `m`/`M` MiB, `g`/`G` GiB, `t`/`T` TiB); a bare number is MiB.

/// Parses a size into KiB; `None` if it is not a size or overflows.
pub fn parse_kib(text: &str) -> Option<u64> {
    let (digits, shift) = match text.char_indices().last()? {
        (i, 'k' | 'K') => (&text[..i], 0),
        (i, 'm' | 'M') => (&text[..i], 10),
        (i, 'g' | 'G') => (&text[..i], 20),
        (i, 't' | 'T') => (&text[..i], 30),
        _ => (text, 10),
    };
    if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    n.checked_mul(1u64 << shift)
}

#[cfg(test)]
mod tests {
    use super::parse_kib;

    #[test]
    fn units() {
        assert_eq!(parse_kib("256"), Some(256 * 1024));
        assert_eq!(parse_kib("256m"), Some(256 * 1024));
        assert_eq!(parse_kib("131072k"), Some(131072));
        assert_eq!(parse_kib("1G"), Some(1 << 20));
        assert_eq!(parse_kib("2t"), Some(2 << 30));
        for bad in [
            "",
            "k",
            "-1",
            "1.5m",
            "12x",
            "m12",
            "99999999999999999999",
            "18014398509481984G",
        ] {
            assert_eq!(parse_kib(bad), None, "{bad}");
        }
    }
}
