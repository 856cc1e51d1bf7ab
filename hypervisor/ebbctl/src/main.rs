//! ebbctl: the host's control tool for ebbhv.
//!
//! ebbhv's second serial line (COM2) is a Unix socket that QEMU serves
//! (`scripts/run-hv.sh --control-socket PATH`). ebbctl connects, sends one request
//! line of the control protocol (see `ebbhv_core::control`), waits for the one
//! reply line and prints it in a form for people and scripts. Exit status: 0 ok,
//! 1 the hypervisor replied with an error, 2 bad usage, 3 no socket or an I/O
//! error, 4 no reply in time.
#![forbid(unsafe_code)]

mod cli;
mod size;
mod socket;
mod wire;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match cli::run(&args, &mut std::io::stdout()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e @ cli::Error::CommandLine(_)) => {
            eprintln!("{e}");
            ExitCode::from(e.status())
        }
        Err(e) => {
            eprintln!("ebbctl: {e}");
            ExitCode::from(e.status())
        }
    }
}
