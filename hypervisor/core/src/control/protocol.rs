//! The control protocol's one encoder and decoder, for both ends: parsing request
//! lines and formatting replies (the hypervisor's side, the one place where bytes
//! from the control channel are checked), and the token encoding and reply parsing
//! that `ebbctl` uses on the host.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;

use crate::addr::{Gfn, GfnRange, Mfn, MfnRange};
use crate::error::Errno;
use crate::hv::{Fault, FaultEffect, FaultOp};

/// The longest request line, without its newline.
pub const MAX_LINE: usize = 8192;

/// A parsed request.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Command {
    /// `ping`.
    Ping,
    /// `info`.
    Info,
    /// `xs-read PATH`.
    XsRead(String),
    /// `xs-write PATH VALUE`.
    XsWrite(String, Vec<u8>),
    /// `xs-ls PATH`.
    XsLs(String),
    /// `xs-rm PATH`.
    XsRm(String),
    /// `mem-set KIB`.
    MemSet(u64),
    /// `mem-max KIB`.
    MemMax(u64),
    /// `mem-pool [KIB]`: show the domain's memory pool, or set its limit.
    MemPool(Option<u64>),
    /// `shutdown poweroff|reboot`.
    Shutdown(&'static str),
    /// `destroy`.
    Destroy,
    /// `fail-next populate|decrease CALLS DONE|-ERRNO`, `fail-next offline-copy CALLS
    /// -ENOMEM`.
    FailNext(FaultOp, Fault),
    /// `fail-next off`.
    FailOff,
    /// `mem-offline FIRST LAST [broken]`: machine frames FIRST..=LAST.
    MemOffline(MfnRange, bool),
    /// `mem-online FIRST LAST`.
    MemOnline(MfnRange),
    /// `mem-query FIRST LAST`.
    MemQuery(MfnRange),
    /// `p2m FIRST LAST`: guest frames FIRST..=LAST.
    P2m(GfnRange),
    /// `mem-exchange FIRST LAST`.
    MemExchange(GfnRange),
}

/// The most frames one frame verb (`mem-*`, `p2m`) covers, so that a reply line
/// stays bounded (one token per frame or leaf).
pub const MAX_FRAMES: u64 = 512;

/// Why a line is refused, as the reply's code and message.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Refusal {
    /// `EPROTO`, `ENOSYS`, `EINVAL`, or a xenstore error name.
    pub code: &'static str,
    /// Human-readable detail.
    pub message: &'static str,
}

const fn refuse(code: &'static str, message: &'static str) -> Refusal {
    Refusal { code, message }
}

/// Parses one line (without its newline; a trailing `\r` is ignored).
pub fn parse(line: &[u8]) -> Result<Command, Refusal> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.len() > MAX_LINE {
        return Err(refuse("E2BIG", "line too long"));
    }
    let words = line
        .split(|&c| c == b' ')
        .filter(|w| !w.is_empty())
        .map(decode)
        .collect::<Option<Vec<Vec<u8>>>>()
        .ok_or(refuse(
            "EPROTO",
            "bad percent-encoding or control character",
        ))?;
    let (verb, args) = words.split_first().ok_or(refuse("EPROTO", "empty line"))?;
    let text = |b: &Vec<u8>| {
        String::from_utf8(b.clone()).map_err(|_| refuse("EINVAL", "path is not UTF-8"))
    };
    let number = |b: &Vec<u8>| decimal(b).ok_or(refuse("EINVAL", "expected a number of KiB"));
    let arity = refuse("EINVAL", "wrong number of arguments");
    match (verb.as_slice(), args) {
        (b"ping", []) => Ok(Command::Ping),
        (b"info", []) => Ok(Command::Info),
        (b"xs-read", [p]) => Ok(Command::XsRead(text(p)?)),
        (b"xs-write", [p, v]) => Ok(Command::XsWrite(text(p)?, v.clone())),
        (b"xs-ls", [p]) => Ok(Command::XsLs(text(p)?)),
        (b"xs-rm", [p]) => Ok(Command::XsRm(text(p)?)),
        (b"mem-set", [n]) => Ok(Command::MemSet(number(n)?)),
        (b"mem-max", [n]) => Ok(Command::MemMax(number(n)?)),
        (b"mem-pool", []) => Ok(Command::MemPool(None)),
        (b"mem-pool", [n]) => Ok(Command::MemPool(Some(number(n)?))),
        (b"shutdown", [how]) => match how.as_slice() {
            b"poweroff" => Ok(Command::Shutdown("poweroff")),
            b"reboot" => Ok(Command::Shutdown("reboot")),
            _ => Err(refuse("EINVAL", "shutdown takes poweroff or reboot")),
        },
        (b"destroy", []) => Ok(Command::Destroy),
        (b"fail-next", [off]) if off.as_slice() == b"off" => Ok(Command::FailOff),
        (b"fail-next", [op, calls, effect]) => {
            let (op, fault) = parse_fault(op, calls, effect)?;
            Ok(Command::FailNext(op, fault))
        }
        (b"mem-offline", [first, last]) => {
            let (start, end) = frame_range(first, last)?;
            Ok(Command::MemOffline(
                MfnRange::new(Mfn(start), Mfn(end)),
                false,
            ))
        }
        (b"mem-offline", [first, last, broken]) if broken.as_slice() == b"broken" => {
            let (start, end) = frame_range(first, last)?;
            Ok(Command::MemOffline(
                MfnRange::new(Mfn(start), Mfn(end)),
                true,
            ))
        }
        (b"mem-online", [first, last]) => {
            let (start, end) = frame_range(first, last)?;
            Ok(Command::MemOnline(MfnRange::new(Mfn(start), Mfn(end))))
        }
        (b"mem-query", [first, last]) => {
            let (start, end) = frame_range(first, last)?;
            Ok(Command::MemQuery(MfnRange::new(Mfn(start), Mfn(end))))
        }
        (b"p2m", [first, last]) => {
            let (start, end) = frame_range(first, last)?;
            Ok(Command::P2m(GfnRange::new(Gfn(start), Gfn(end))))
        }
        (b"mem-exchange", [first, last]) => {
            let (start, end) = frame_range(first, last)?;
            Ok(Command::MemExchange(GfnRange::new(Gfn(start), Gfn(end))))
        }
        (
            b"ping" | b"info" | b"xs-read" | b"xs-write" | b"xs-ls" | b"xs-rm" | b"mem-set"
            | b"mem-max" | b"mem-pool" | b"shutdown" | b"destroy" | b"fail-next" | b"mem-offline"
            | b"mem-online" | b"mem-query" | b"p2m" | b"mem-exchange",
            _,
        ) => Err(arity),
        _ => Err(refuse("ENOSYS", "unknown verb")),
    }
}

/// The arguments of `fail-next`: an op, a call count of at least 1, and either the
/// extents to do or a negative errno name.
fn parse_fault(op: &[u8], calls: &[u8], effect: &[u8]) -> Result<(FaultOp, Fault), Refusal> {
    let op = match op {
        b"populate" => FaultOp::Populate,
        b"decrease" => FaultOp::Decrease,
        b"offline-copy" => FaultOp::OfflineCopy,
        _ => {
            return Err(refuse(
                "EINVAL",
                "fail-next takes populate, decrease or offline-copy",
            ))
        }
    };
    let calls = decimal(calls)
        .filter(|&n| n > 0)
        .ok_or(refuse("EINVAL", "CALLS must be a number of calls from 1"))?;
    let effect = match effect.strip_prefix(b"-") {
        Some(name) => core::str::from_utf8(name)
            .ok()
            .and_then(Errno::from_name)
            .map(FaultEffect::Fail)
            .ok_or(refuse("EINVAL", "unknown errno (e.g. -EBUSY, -EINVAL)"))?,
        None => decimal(effect).map(FaultEffect::Stop).ok_or(refuse(
            "EINVAL",
            "expected extents done or a negative errno name",
        ))?,
    };
    if op == FaultOp::OfflineCopy && effect != FaultEffect::Fail(Errno::ENOMEM) {
        return Err(refuse(
            "EINVAL",
            "offline-copy takes -ENOMEM (no frame free for the copy)",
        ));
    }
    Ok((op, Fault { calls, effect }))
}

/// FIRST and LAST frame numbers (decimal or `0x` hex), as a half-open range of at
/// most [`MAX_FRAMES`] frames.
fn frame_range(first: &[u8], last: &[u8]) -> Result<(u64, u64), Refusal> {
    let number = |t: &[u8]| frame_number(t).ok_or(refuse("EINVAL", "expected a frame number"));
    let (first, last) = (number(first)?, number(last)?);
    if last < first {
        return Err(refuse("EINVAL", "the last frame is below the first"));
    }
    if last - first >= MAX_FRAMES {
        return Err(refuse("E2BIG", "at most 512 frames per request"));
    }
    // last < u64::MAX: frame numbers of 52-bit addresses are far below.
    let end = last
        .checked_add(1)
        .ok_or(refuse("EINVAL", "frame number out of range"))?;
    Ok((first, end))
}

/// A frame number: decimal, or hex after `0x`.
pub fn frame_number(token: &[u8]) -> Option<u64> {
    match token.strip_prefix(b"0x") {
        Some(hex) => core::str::from_utf8(hex)
            .ok()
            .filter(|s| !s.is_empty() && s.bytes().all(|c| c.is_ascii_hexdigit()))
            .and_then(|s| u64::from_str_radix(s, 16).ok()),
        None => decimal(token),
    }
}

/// A plain decimal number that fits 64 bits.
fn decimal(token: &[u8]) -> Option<u64> {
    core::str::from_utf8(token)
        .ok()
        .filter(|s| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()))
        .and_then(|s| s.parse::<u64>().ok())
}

/// How `info` and `fail-next` show the faults pending for an op:
/// `fail_KEY=CALLS:DONE|CALLS:-ERRNO[,...]` ([`FaultOp::key`]), the next one first.
pub fn fault_token<'a>(op: FaultOp, faults: impl IntoIterator<Item = &'a Fault>) -> String {
    let mut out = alloc::format!("fail_{}=", op.key());
    for (i, fault) in faults.into_iter().enumerate() {
        let sep = if i == 0 { "" } else { "," };
        // Writing to a String cannot fail.
        let _ = match fault.effect {
            FaultEffect::Stop(done) => write!(out, "{sep}{}:{done}", fault.calls),
            FaultEffect::Fail(errno) => write!(out, "{sep}{}:-{}", fault.calls, errno.name()),
        };
    }
    out
}

/// Decodes one token; `None` if it has a bad escape or a raw control byte.
pub fn decode(token: &[u8]) -> Option<Vec<u8>> {
    if token == b"\"\"" {
        return Some(Vec::new());
    }
    let mut out = Vec::with_capacity(token.len());
    let mut i = 0;
    while let Some(&byte) = token.get(i) {
        match byte {
            b'%' => {
                let hex = token.get(i + 1..i + 3)?;
                let hex = core::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'"' => return None,
            c if c.is_ascii_graphic() => {
                out.push(c);
                i += 1;
            }
            _ => return None,
        }
    }
    Some(out)
}

/// Encodes bytes as one token.
pub fn encode(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return String::from("\"\"");
    }
    let mut out = String::with_capacity(bytes.len());
    for &c in bytes {
        if c.is_ascii_graphic() && c != b'%' && c != b'"' {
            out.push(char::from(c));
        } else {
            // Writing to a String cannot fail.
            let _ = write!(out, "%{c:02X}");
        }
    }
    out
}

/// Guest bytes made safe for a host terminal: printable ASCII and space as they
/// are, a backslash doubled, every other byte (control characters, escape
/// sequences, bytes of non-ASCII text) as `\xNN`. A guest chooses xenstore values
/// and names; printed raw, they could drive the terminal of whoever reads them.
pub fn terminal_safe(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &c in bytes {
        match c {
            b'\\' => out.push_str("\\\\"),
            b' ' => out.push(' '),
            c if c.is_ascii_graphic() => out.push(char::from(c)),
            // Writing to a String cannot fail.
            _ => {
                let _ = write!(out, "\\x{c:02x}");
            }
        }
    }
    out
}

/// `ok` followed by the tokens, and the newline.
pub fn ok_reply<'a>(tokens: impl IntoIterator<Item = &'a str>) -> String {
    let mut out = String::from("ok");
    for t in tokens {
        out.push(' ');
        out.push_str(t);
    }
    out.push('\n');
    out
}

/// `error CODE message` and the newline.
pub fn error_reply(code: &str, message: &str) -> String {
    alloc::format!("error {code} {message}\n")
}

/// A reply line as the requester reads it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Reply {
    /// `ok` and its tokens, decoded.
    Ok(Vec<Vec<u8>>),
    /// `error CODE message`.
    Error(String, String),
}

/// Parses a reply line (without its newline); `None` if it is not one.
pub fn parse_reply(line: &str) -> Option<Reply> {
    let mut words = line.split(' ').filter(|w| !w.is_empty());
    match words.next()? {
        "ok" => words
            .map(|w| decode(w.as_bytes()))
            .collect::<Option<Vec<_>>>()
            .map(Reply::Ok),
        "error" => {
            let code = String::from(words.next()?);
            let message = words.collect::<Vec<_>>().join(" ");
            Some(Reply::Error(code, message))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_bytes_reach_a_terminal_escaped() {
        assert_eq!(terminal_safe(b"1048576"), "1048576");
        assert_eq!(terminal_safe(b"a b/c"), "a b/c");
        assert_eq!(
            terminal_safe(b"\x1b[2J\x07ok\r\n\\x41"),
            "\\x1b[2J\\x07ok\\x0d\\x0a\\\\x41"
        );
        assert_eq!(terminal_safe("é\u{9b}".as_bytes()), "\\xc3\\xa9\\xc2\\x9b");
        assert_eq!(terminal_safe(b""), "");
    }

    #[test]
    fn verbs_and_arguments() {
        assert_eq!(parse(b"ping"), Ok(Command::Ping));
        assert_eq!(parse(b"  info \r"), Ok(Command::Info));
        assert_eq!(
            parse(b"xs-read memory/target"),
            Ok(Command::XsRead("memory/target".into()))
        );
        assert_eq!(
            parse(b"xs-write control/shutdown poweroff"),
            Ok(Command::XsWrite(
                "control/shutdown".into(),
                b"poweroff".to_vec()
            ))
        );
        assert_eq!(
            parse(b"xs-write data/x \"\""),
            Ok(Command::XsWrite("data/x".into(), Vec::new()))
        );
        assert_eq!(
            parse(b"xs-write data/x a%20b%25%00"),
            Ok(Command::XsWrite("data/x".into(), b"a b%\0".to_vec()))
        );
        assert_eq!(parse(b"mem-set 131072"), Ok(Command::MemSet(131072)));
        assert_eq!(parse(b"mem-max 1"), Ok(Command::MemMax(1)));
        assert_eq!(parse(b"mem-pool"), Ok(Command::MemPool(None)));
        assert_eq!(parse(b"mem-pool 8192"), Ok(Command::MemPool(Some(8192))));
        assert_eq!(parse(b"shutdown reboot"), Ok(Command::Shutdown("reboot")));
        assert_eq!(parse(b"destroy"), Ok(Command::Destroy));
    }

    #[test]
    fn fail_next_arguments() {
        let fault = |calls, effect| Fault { calls, effect };
        assert_eq!(
            parse(b"fail-next populate 3 100"),
            Ok(Command::FailNext(
                FaultOp::Populate,
                fault(3, FaultEffect::Stop(100))
            ))
        );
        assert_eq!(
            parse(b"fail-next decrease 1 0"),
            Ok(Command::FailNext(
                FaultOp::Decrease,
                fault(1, FaultEffect::Stop(0))
            ))
        );
        assert_eq!(
            parse(b"fail-next decrease 2 -EBUSY"),
            Ok(Command::FailNext(
                FaultOp::Decrease,
                fault(2, FaultEffect::Fail(Errno::EBUSY))
            ))
        );
        assert_eq!(parse(b"fail-next off"), Ok(Command::FailOff));
        assert_eq!(
            parse(b"fail-next offline-copy 2 -ENOMEM"),
            Ok(Command::FailNext(
                FaultOp::OfflineCopy,
                fault(2, FaultEffect::Fail(Errno::ENOMEM))
            ))
        );
        for bad in [
            &b"fail-next"[..],
            b"fail-next on",
            b"fail-next populate 1",
            b"fail-next populate 1 2 3",
            b"fail-next increase 1 2",
            b"fail-next populate 0 2",
            b"fail-next populate -1 2",
            b"fail-next populate x 2",
            b"fail-next populate 99999999999999999999 2",
            b"fail-next populate 1 -2",
            b"fail-next populate 1 EBUSY",
            b"fail-next populate 1 -EWHAT",
            b"fail-next populate 1 -ebusy",
            b"fail-next populate 1 12k",
            b"fail-next off now",
            b"fail-next offline-copy 1 0",
            b"fail-next offline-copy 1 -EBUSY",
            b"fail-next offline-copy 0 -ENOMEM",
        ] {
            assert_eq!(
                parse(bad).map_err(|r| r.code),
                Err("EINVAL"),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(
            fault_token(FaultOp::Populate, &[fault(3, FaultEffect::Stop(100))]),
            "fail_populate=3:100"
        );
        assert_eq!(
            fault_token(
                FaultOp::Decrease,
                &[
                    fault(1, FaultEffect::Fail(Errno::EINVAL)),
                    fault(2, FaultEffect::Stop(0)),
                ]
            ),
            "fail_decrease=1:-EINVAL,2:0"
        );
    }

    #[test]
    fn frame_verbs_take_inclusive_ranges() {
        let mfns = |a, b| MfnRange::new(Mfn(a), Mfn(b));
        assert_eq!(
            parse(b"mem-offline 0x1000 0x1000"),
            Ok(Command::MemOffline(mfns(0x1000, 0x1001), false))
        );
        assert_eq!(
            parse(b"mem-offline 16 31 broken"),
            Ok(Command::MemOffline(mfns(16, 32), true))
        );
        assert_eq!(
            parse(b"mem-online 0x10 0x20f"),
            Ok(Command::MemOnline(mfns(0x10, 0x210)))
        );
        assert_eq!(
            parse(b"mem-query 0xABc 0xabc"),
            Ok(Command::MemQuery(mfns(0xabc, 0xabd)))
        );
        assert_eq!(
            parse(b"p2m 0 0x1ff"),
            Ok(Command::P2m(GfnRange::new(Gfn(0), Gfn(0x200))))
        );
        assert_eq!(
            parse(b"mem-exchange 5 5"),
            Ok(Command::MemExchange(GfnRange::new(Gfn(5), Gfn(6))))
        );
        let refusal = |l: &[u8]| parse(l).map_err(|r| (r.code, r.message));
        assert_eq!(
            refusal(b"mem-query 0x10 0x210"),
            Err(("E2BIG", "at most 512 frames per request"))
        );
        assert_eq!(
            refusal(b"mem-query 9 8"),
            Err(("EINVAL", "the last frame is below the first"))
        );
        assert_eq!(
            refusal(b"mem-offline 1 1 now"),
            Err(("EINVAL", "wrong number of arguments"))
        );
        assert_eq!(
            refusal(b"mem-online 1 1 broken"),
            Err(("EINVAL", "wrong number of arguments"))
        );
        for bad in [
            &b"mem-query 0x 1"[..],
            b"mem-query 0xg 1",
            b"mem-query -1 1",
            b"mem-query 1 0x10000000000000000",
            b"p2m 1.5 2",
        ] {
            assert_eq!(
                refusal(bad),
                Err(("EINVAL", "expected a frame number")),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(
            refusal(b"mem-query 18446744073709551615 18446744073709551615"),
            Err(("EINVAL", "frame number out of range"))
        );
    }

    #[test]
    fn errno_names_round_trip() {
        for errno in Errno::ALL {
            assert_eq!(Errno::from_name(errno.name()), Some(errno));
        }
        assert_eq!(Errno::from_name("EWHAT"), None);
    }

    #[test]
    fn malformed_lines_are_refused() {
        let code = |l: &[u8]| parse(l).unwrap_err().code;
        assert_eq!(code(b""), "EPROTO");
        assert_eq!(code(b"   "), "EPROTO");
        assert_eq!(code(b"frobnicate"), "ENOSYS");
        assert_eq!(code(b"ping extra"), "EINVAL");
        assert_eq!(code(b"xs-read"), "EINVAL");
        assert_eq!(code(b"mem-set -5"), "EINVAL");
        assert_eq!(code(b"mem-set 12k"), "EINVAL");
        assert_eq!(code(b"mem-set 99999999999999999999999"), "EINVAL");
        assert_eq!(code(b"mem-set \"\""), "EINVAL");
        assert_eq!(code(b"shutdown now"), "EINVAL");
        assert_eq!(code(b"xs-read a%zz"), "EPROTO");
        assert_eq!(code(b"xs-read a%2"), "EPROTO");
        assert_eq!(code(b"xs-read a\tb"), "EPROTO");
        assert_eq!(code(b"xs-read a\"b"), "EPROTO");
        assert_eq!(code(b"xs-read %FF"), "EINVAL");
        assert_eq!(code(&[b'a'; MAX_LINE + 1]), "E2BIG");
    }

    #[test]
    fn encoding_round_trips() {
        for bytes in [&b""[..], b"plain", b"with space", b"%\"\n\0\xff", b"\"\""] {
            let t = encode(bytes);
            assert!(!t.contains(' '));
            assert_eq!(decode(t.as_bytes()).as_deref(), Some(bytes));
        }
        assert_eq!(ok_reply(["a", "b"]), "ok a b\n");
        assert_eq!(ok_reply([]), "ok\n");
        assert_eq!(
            error_reply("ENOENT", "no such node"),
            "error ENOENT no such node\n"
        );
    }

    #[test]
    fn replies_parse_as_they_were_formatted() {
        assert_eq!(parse_reply("ok"), Some(Reply::Ok(Vec::new())));
        let line = ok_reply([encode(b"a b").as_str(), encode(b"").as_str()]);
        assert_eq!(
            parse_reply(line.trim_end()),
            Some(Reply::Ok(alloc::vec![b"a b".to_vec(), Vec::new()]))
        );
        assert_eq!(
            parse_reply(error_reply("ENOENT", "no such node").trim_end()),
            Some(Reply::Error("ENOENT".into(), "no such node".into()))
        );
        assert_eq!(parse_reply("garbage"), None);
        assert_eq!(parse_reply("ok %zz"), None);
    }
}
