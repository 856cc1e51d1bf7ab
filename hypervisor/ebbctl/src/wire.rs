//! One request and its reply over the control socket, and the token encoding of
//! the protocol (percent-encoding, `""` for the empty token).

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use crate::cli::Error;

/// A parsed reply line.
#[derive(Debug, PartialEq, Eq)]
pub enum Reply {
    /// `ok` and its tokens, decoded.
    Ok(Vec<Vec<u8>>),
    /// `error CODE message`.
    Error(String, String),
}

/// Sends `line` and waits up to `timeout` for the reply.
pub fn request(socket: &str, line: &str, timeout: Duration) -> Result<Reply, Error> {
    let stream = UnixStream::connect(socket)
        .map_err(|e| Error::Connect(format!("cannot connect to {socket}: {e}")))?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(|e| Error::Io(e.to_string()))?;
    let mut writer = &stream;
    writer
        .write_all(format!("{line}\n").as_bytes())
        .map_err(|e| Error::Io(format!("cannot send: {e}")))?;
    let mut reader = BufReader::new(&stream);
    let mut reply = Vec::new();
    loop {
        reply.clear();
        match reader.read_until(b'\n', &mut reply) {
            Ok(0) => return Err(Error::Io("the hypervisor closed the channel".into())),
            Ok(_) if !reply.ends_with(b"\n") => {
                return Err(Error::Io(
                    "the hypervisor closed the channel mid-reply".into(),
                ))
            }
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Err(Error::Timeout(format!(
                    "no reply within {} s",
                    timeout.as_secs_f32()
                )))
            }
            Err(e) => return Err(Error::Io(e.to_string())),
        }
        let text = String::from_utf8_lossy(&reply);
        let text = text.trim_end_matches(['\n', '\r']);
        // Lines that are not replies (noise from before this connection) are skipped.
        if let Some(r) = parse_reply(text) {
            return Ok(r);
        }
    }
}

/// Parses a reply line; `None` if it is not one.
pub fn parse_reply(line: &str) -> Option<Reply> {
    let mut words = line.split(' ').filter(|w| !w.is_empty());
    match words.next()? {
        "ok" => words.map(decode).collect::<Option<Vec<_>>>().map(Reply::Ok),
        "error" => {
            let code = words.next()?.to_string();
            Some(Reply::Error(code, words.collect::<Vec<_>>().join(" ")))
        }
        _ => None,
    }
}

/// Encodes bytes as one token.
pub fn encode(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return "\"\"".into();
    }
    bytes
        .iter()
        .map(|&c| {
            if c.is_ascii_graphic() && c != b'%' && c != b'"' {
                char::from(c).to_string()
            } else {
                format!("%{c:02X}")
            }
        })
        .collect()
}

/// Decodes one token.
pub fn decode(token: &str) -> Option<Vec<u8>> {
    if token == "\"\"" {
        return Some(Vec::new());
    }
    let b = token.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip() {
        for v in [&b""[..], b"x", b"a b", b"%\"\n\xff"] {
            assert_eq!(decode(&encode(v)).as_deref(), Some(v));
        }
    }

    #[test]
    fn replies() {
        assert_eq!(parse_reply("ok"), Some(Reply::Ok(vec![])));
        assert_eq!(
            parse_reply("ok a%20b \"\""),
            Some(Reply::Ok(vec![b"a b".to_vec(), vec![]]))
        );
        assert_eq!(
            parse_reply("error ENOENT no such node"),
            Some(Reply::Error("ENOENT".into(), "no such node".into()))
        );
        assert_eq!(parse_reply("garbage"), None);
        assert_eq!(parse_reply("ok %zz"), None);
    }
}
