//! Which control socket ebbctl talks to when `--socket` is not given, so that it
//! works from any directory: `$EBBCTL_SOCKET` if set, else `build/hv/ctl.sock` (where
//! `make run` has QEMU serve COM2) of the repository the binary sits in, else of the
//! repository it was built from.

use std::path::{Path, PathBuf};

use crate::cli::Error;

/// The socket below a repository root.
const SOCKET_IN_REPO: &str = "build/hv/ctl.sock";

/// The socket to use, or why there is none.
pub fn default_socket() -> Result<PathBuf, Error> {
    if let Some(path) = std::env::var_os("EBBCTL_SOCKET") {
        return Ok(PathBuf::from(path));
    }
    let candidates = candidates();
    if let Some(found) = candidates.iter().find(|p| p.exists()) {
        return Ok(found.clone());
    }
    let looked: Vec<String> = candidates.iter().map(|p| p.display().to_string()).collect();
    Err(Error::Connect(format!(
        "no control socket (looked for {}): start ebbhv with `make run` in the repository, \
         or name the socket with --socket PATH or EBBCTL_SOCKET",
        looked.join(", ")
    )))
}

/// The socket of the repository the binary lies in (hypervisor/target/<profile>/
/// ebbctl), then of the one it was built from.
fn candidates() -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(exe) = std::env::current_exe() {
        out.extend(
            exe.ancestors()
                .filter(|dir| dir.join("hypervisor/Cargo.toml").is_file())
                .map(|dir| dir.join(SOCKET_IN_REPO)),
        );
    }
    let built_in = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let built_in = built_in.canonicalize().unwrap_or(built_in);
    let compiled = built_in.join(SOCKET_IN_REPO);
    if !out.contains(&compiled) {
        out.push(compiled);
    }
    out
}
