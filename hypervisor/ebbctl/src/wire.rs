//! One request and its reply over the control socket. The protocol itself (token
//! encoding, reply parsing) is the hypervisor's own, `ebbhv_core::control::protocol`.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use ebbhv_core::control::protocol::{parse_reply, Reply};

use crate::cli::Error;

/// Sends `line` and waits up to `timeout` for the reply.
pub fn request(socket: &Path, line: &str, timeout: Duration) -> Result<Reply, Error> {
    let stream = UnixStream::connect(socket)
        .map_err(|e| Error::Connect(format!("cannot connect to {}: {e}", socket.display())))?;
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
