//! Command-line handling: global options, the verbs with their help, and how each
//! reply is printed.

use std::fmt;
use std::io::Write;
use std::time::Duration;

use crate::size::parse_kib;
use ebbhv_core::control::protocol::{encode, terminal_safe, Reply};

use crate::wire::request;

/// Default socket, relative to the repository root (what `scripts/run-hv.sh` uses).
const DEFAULT_SOCKET: &str = "build/hv/ctl.sock";

/// Why ebbctl failed; each kind has its exit status.
#[derive(Debug)]
pub enum Error {
    /// Bad command line (status 2).
    Usage(String),
    /// The hypervisor replied with an error (status 1).
    Reply(String, String),
    /// No socket or cannot connect (status 3).
    Connect(String),
    /// I/O error on the channel (status 3).
    Io(String),
    /// No reply in time (status 4).
    Timeout(String),
}

impl Error {
    /// The process exit status.
    pub fn status(&self) -> u8 {
        match self {
            Error::Reply(..) => 1,
            Error::Usage(_) => 2,
            Error::Connect(_) | Error::Io(_) => 3,
            Error::Timeout(_) => 4,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(m) => write!(f, "{m} (see ebbctl --help)"),
            Error::Reply(code, m) => write!(f, "hypervisor error {code}: {m}"),
            Error::Connect(m) | Error::Io(m) | Error::Timeout(m) => write!(f, "{m}"),
        }
    }
}

/// One verb.
struct Verb {
    name: &'static str,
    usage: &'static str,
    help: &'static str,
}

const VERBS: &[Verb] = &[
    Verb {
        name: "info",
        usage: "info [--raw]",
        help: "Print the domain's memory (tot_pages, max_pages, target_kib, static_max_kib),\n\
               its memory pool in bytes (mem_pool_limit, mem_pool_used and its parts),\n\
               ebbhv's own allocator (hv_pool_bytes, hv_pool_free_bytes),\n\
               the hypervisor heap (frames free, used, offlined), xenstore counters and the\n\
               platform's exit and hypercall counters, one `name value` per line.\n\
               --raw prints the reply line as received.",
    },
    Verb {
        name: "xenstore-read",
        usage: "xenstore-read PATH",
        help: "Print the value of a xenstore node. Relative paths are under the guest's\n\
               home, /local/domain/<domid>.",
    },
    Verb {
        name: "xenstore-write",
        usage: "xenstore-write PATH VALUE",
        help: "Write VALUE to a xenstore node as the control plane (domain 0), creating it\n\
               if needed, and fire the watches on it.",
    },
    Verb {
        name: "xenstore-ls",
        usage: "xenstore-ls PATH",
        help: "List the children of a xenstore node, one per line.",
    },
    Verb {
        name: "xenstore-rm",
        usage: "xenstore-rm PATH",
        help: "Remove a xenstore node and everything below it.",
    },
    Verb {
        name: "mem-set",
        usage: "mem-set SIZE",
        help: "Set the guest's balloon target (memory/target), like `xl mem-set`. SIZE is a\n\
               number with an optional unit: k (KiB), m (MiB, the default), g (GiB), t\n\
               (TiB). It must be a multiple of 4 KiB and at most memory/static-max.",
    },
    Verb {
        name: "mem-max",
        usage: "mem-max SIZE",
        help: "Set the most memory the guest may have (its max_pages and\n\
               memory/static-max), like `xl mem-max`. SIZE as for mem-set.",
    },
    Verb {
        name: "mem-pool",
        usage: "mem-pool [SIZE]",
        help: "Print the guest's memory pool: the limit on the hypervisor memory its requests\n\
               may take (p2m and nested page tables, event channels, xenstore) and what\n\
               they take now, like Xen's paging mempool (`xl ... shadow_memory`). With\n\
               SIZE (as for mem-set), set the limit first; a limit below what the guest\n\
               uses now is refused. At its limit the guest's memory hypercalls fail with\n\
               -ENOMEM and its xenstore requests with EQUOTA.",
    },
    Verb {
        name: "shutdown",
        usage: "shutdown [poweroff|reboot] [--force]",
        help: "Ask the guest to power off (default) or reboot by writing control/shutdown;\n\
               the guest's xenbus handler acts on it. --force ends the domain at once\n\
               instead, without asking the guest.",
    },
    Verb {
        name: "fail-next",
        usage: "fail-next OP CALLS DONE|-ERRNO|off",
        help: "Make the guest's next reservation hypercalls stop short or fail (OP: populate\n\
               or decrease), to test how it copes: its next CALLS (from 1)\n\
               XENMEM_populate_physmap or XENMEM_decrease_reservation calls stop after DONE extents and return DONE\n\
               (a partial success: those extents are really done, the rest untouched),\n\
               or return -ERRNO (a Xen errno name such as -EBUSY or -EINVAL) having done\n\
               nothing. Faults for an op queue up after those pending (at most 8), so\n\
               that one call can be cut and the next ones refused; `off` drops them all.\n\
               `ebbctl info` lists what is pending as fail_populate / fail_decrease\n\
               (CALLS left:DONE or -ERRNO, comma-separated, the next first). A\n\
               continuation of a cut call is part of it.",
    },
    Verb {
        name: "ping",
        usage: "ping",
        help: "Check that the hypervisor answers on the control channel.",
    },
    Verb {
        name: "raw",
        usage: "raw REQUEST...",
        help: "Send one request line of the control protocol as given and print the reply\n\
               line (for scripts and debugging).",
    },
];

fn usage() -> String {
    let mut s = String::from(
        "Usage: ebbctl [--socket PATH] [--timeout SECONDS] VERB [ARGS]\n\n\
         Controls ebbhv over its control channel, COM2 on a Unix socket that QEMU serves\n\
         (scripts/run-hv.sh --control-socket PATH).\n\n\
         Options:\n  \
         --socket PATH      the control socket (default $EBBCTL_SOCKET, else build/hv/ctl.sock)\n  \
         --timeout SECONDS  how long to wait for a reply (default 10)\n  \
         -h, --help         this help; `ebbctl VERB --help` or `ebbctl help VERB` for a verb\n\n\
         Verbs:\n",
    );
    for v in VERBS {
        s.push_str(&format!(
            "  {:36} {}\n",
            v.usage,
            v.help.lines().next().unwrap_or("")
        ));
    }
    s.push_str(
        "\nExit status: 0 ok, 1 the hypervisor replied with an error, 2 bad usage,\n\
         3 no socket or I/O error, 4 no reply in time.\n",
    );
    s
}

fn verb_help(v: &Verb) -> String {
    format!("Usage: ebbctl [OPTIONS] {}\n\n{}\n", v.usage, v.help)
}

/// Runs ebbctl with `args` (without the program name), printing to `out`.
pub fn run(args: &[String], out: &mut dyn Write) -> Result<(), Error> {
    let mut socket = std::env::var("EBBCTL_SOCKET").unwrap_or_else(|_| DEFAULT_SOCKET.into());
    let mut timeout = Duration::from_secs(10);
    let mut rest = args;
    loop {
        match rest {
            [flag, value, tail @ ..] if flag == "--socket" => {
                socket = value.clone();
                rest = tail;
            }
            [flag, value, tail @ ..] if flag == "--timeout" => {
                let secs: f64 = value
                    .parse()
                    .ok()
                    .filter(|s: &f64| s.is_finite() && *s > 0.0 && *s < 1e6)
                    .ok_or_else(|| Error::Usage(format!("bad timeout {value:?}")))?;
                timeout = Duration::from_secs_f64(secs);
                rest = tail;
            }
            [flag] if flag == "--socket" || flag == "--timeout" => {
                return Err(Error::Usage(format!("{flag} needs a value")))
            }
            _ => break,
        }
    }
    let print = |out: &mut dyn Write, text: &str| {
        out.write_all(text.as_bytes())
            .map_err(|e| Error::Io(e.to_string()))
    };
    let Some((verb, args)) = rest.split_first() else {
        return Err(Error::Usage("no verb given".into()));
    };
    if verb == "-h" || verb == "--help" {
        return print(out, &usage());
    }
    if verb == "help" {
        return match args {
            [] => print(out, &usage()),
            [name] => match VERBS.iter().find(|v| v.name == name) {
                Some(v) => print(out, &verb_help(v)),
                None => Err(Error::Usage(format!("unknown verb {name:?}"))),
            },
            _ => Err(Error::Usage("help takes at most one verb".into())),
        };
    }
    let v = VERBS
        .iter()
        .find(|v| v.name == verb)
        .ok_or_else(|| Error::Usage(format!("unknown verb {verb:?}")))?;
    if args.iter().any(|a| a == "-h" || a == "--help") {
        return print(out, &verb_help(v));
    }
    let bad = || Error::Usage(format!("usage: ebbctl {}", v.usage));
    let size = |s: &String| {
        parse_kib(s)
            .ok_or_else(|| Error::Usage(format!("bad size {s:?} (e.g. 512, 512m, 524288k, 1g)")))
    };
    let line = match (v.name, args) {
        ("info", []) | ("info", [_]) if args.iter().all(|a| a == "--raw") => "info".to_string(),
        ("xenstore-read", [p]) => format!("xs-read {}", encode(p.as_bytes())),
        ("xenstore-write", [p, val]) => format!(
            "xs-write {} {}",
            encode(p.as_bytes()),
            encode(val.as_bytes())
        ),
        ("xenstore-ls", [p]) => format!("xs-ls {}", encode(p.as_bytes())),
        ("xenstore-rm", [p]) => format!("xs-rm {}", encode(p.as_bytes())),
        ("mem-set", [s]) => format!("mem-set {}", size(s)?),
        ("mem-max", [s]) => format!("mem-max {}", size(s)?),
        ("mem-pool", []) => "mem-pool".to_string(),
        ("mem-pool", [s]) => format!("mem-pool {}", size(s)?),
        ("shutdown", _) => shutdown_line(args).ok_or_else(bad)?,
        ("fail-next", [off]) if off == "off" => "fail-next off".to_string(),
        ("fail-next", [op, calls, effect]) => fail_next_line(op, calls, effect)?,
        ("ping", []) => "ping".to_string(),
        ("raw", words) if !words.is_empty() => words.join(" "),
        _ => return Err(bad()),
    };
    let reply = request(&socket, &line, timeout)?;
    let tokens = match reply {
        Reply::Ok(tokens) => tokens,
        Reply::Error(code, message) => return Err(Error::Reply(code, message)),
    };
    let text = match v.name {
        "info" if args.is_empty() => info_text(&tokens),
        "info" | "raw" => format!(
            "ok {}\n",
            tokens
                .iter()
                .map(|t| encode(t))
                .collect::<Vec<_>>()
                .join(" ")
        ),
        // Guest-chosen bytes: escaped for the terminal.
        "xenstore-read" => {
            let value = tokens.first().cloned().unwrap_or_default();
            format!("{}\n", terminal_safe(&value))
        }
        "xenstore-ls" => tokens
            .iter()
            .map(|t| format!("{}\n", terminal_safe(t)))
            .collect(),
        "ping" | "mem-set" | "mem-max" | "mem-pool" | "fail-next" => tokens
            .iter()
            .map(|t| format!("{}\n", String::from_utf8_lossy(t)))
            .collect(),
        _ => String::new(),
    };
    print(out, &text)
}

/// `fail-next OP CALLS EFFECT`, checked as far as ebbctl can: the hypervisor knows
/// which errno names it takes.
fn fail_next_line(op: &str, calls: &str, effect: &str) -> Result<String, Error> {
    if op != "populate" && op != "decrease" {
        return Err(Error::Usage(format!(
            "fail-next takes populate, decrease or off, not {op:?}"
        )));
    }
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit());
    if !digits(calls) || calls.parse::<u64>().map_or(true, |n| n == 0) {
        return Err(Error::Usage(format!(
            "bad CALLS {calls:?} (a number of calls from 1)"
        )));
    }
    let errno = effect
        .strip_prefix("-E")
        .is_some_and(|name| !name.is_empty() && name.bytes().all(|c| c.is_ascii_uppercase()));
    if !errno && (!digits(effect) || effect.parse::<u64>().is_err()) {
        return Err(Error::Usage(format!(
            "bad effect {effect:?} (extents done, e.g. 100, or an errno, e.g. -EBUSY)"
        )));
    }
    Ok(format!("fail-next {op} {calls} {effect}"))
}

fn shutdown_line(args: &[String]) -> Option<String> {
    let force = args.iter().any(|a| a == "--force");
    let how: Vec<&String> = args.iter().filter(|a| *a != "--force").collect();
    let how = match how.as_slice() {
        [] => "poweroff",
        [h] if *h == "poweroff" || *h == "reboot" => h.as_str(),
        _ => return None,
    };
    Some(if force {
        "destroy".to_string()
    } else {
        format!("shutdown {how}")
    })
}

/// `name value` lines from `info`'s `name=value` tokens.
fn info_text(tokens: &[Vec<u8>]) -> String {
    let fields: Vec<(String, String)> = tokens
        .iter()
        .map(|t| {
            let t = String::from_utf8_lossy(t);
            match t.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (t.to_string(), String::new()),
            }
        })
        .collect();
    let width = fields.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    fields
        .iter()
        .map(|(k, v)| format!("{k:width$}  {v}\n"))
        .collect()
}
