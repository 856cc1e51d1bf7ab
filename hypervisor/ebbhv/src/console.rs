//! The guest's console output, line-buffered and printed on COM1 with a prefix per
//! source: `[guest]` for console_io writes, `[e9]` for bytes written to port 0xE9
//! (Linux's `earlyprintk=xen` fallback).

use alloc::vec::Vec;

use crate::serial::print_line;

/// Longest line kept before it is printed anyway.
const MAX_LINE: usize = 512;

/// One output stream with its prefix.
pub struct ConsoleStream {
    prefix: &'static str,
    line: Vec<u8>,
}

impl ConsoleStream {
    /// An empty stream printing with `prefix`.
    pub const fn new(prefix: &'static str) -> ConsoleStream {
        ConsoleStream {
            prefix,
            line: Vec::new(),
        }
    }

    /// Adds bytes; complete lines are printed.
    pub fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            match b {
                b'\n' => self.flush(),
                b'\r' => {}
                _ => {
                    self.line.push(b);
                    if self.line.len() >= MAX_LINE {
                        self.flush();
                    }
                }
            }
        }
    }

    /// Prints whatever is buffered as one line.
    pub fn flush(&mut self) {
        let text = core::str::from_utf8(&self.line).unwrap_or("<non-utf-8 output>");
        print_line(self.prefix, format_args!("{text}"));
        self.line.clear();
    }

    /// Whether a partial line is buffered.
    pub fn pending(&self) -> bool {
        !self.line.is_empty()
    }
}
