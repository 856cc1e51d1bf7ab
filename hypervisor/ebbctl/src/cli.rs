//! Command-line handling: the options and verbs (declared for clap, which gives
//! options anywhere, `--help` per verb and `--version`), the request line each verb
//! sends, and how each reply is printed for people or, with `--json`, for scripts.

use std::fmt;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use ebbhv_core::control::protocol::{encode, terminal_safe, Reply};
use serde_json::{json, Map, Value};

use crate::size::parse_kib;
use crate::socket::default_socket;
use crate::wire::request;

/// Why ebbctl failed; each kind has its exit status.
#[derive(Debug)]
pub enum Error {
    /// The command line did not parse; clap's message, ready to print (status 2).
    CommandLine(String),
    /// Bad command line found after parsing (status 2).
    Usage(String),
    /// The hypervisor replied with an error (status 1).
    Reply(String, String),
    /// No socket or cannot connect (status 3).
    Connect(String),
    /// I/O error on the channel (status 3).
    Io(String),
    /// No reply in time (status 4).
    Timeout(String),
    /// Some frames are left offline pending (status 5).
    Pending(String),
}

impl Error {
    /// The process exit status.
    pub fn status(&self) -> u8 {
        match self {
            Error::Reply(..) => 1,
            Error::CommandLine(_) | Error::Usage(_) => 2,
            Error::Connect(_) | Error::Io(_) => 3,
            Error::Timeout(_) => 4,
            Error::Pending(_) => 5,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::CommandLine(m) => write!(f, "{}", m.trim_end()),
            Error::Usage(m) => write!(f, "{m} (see ebbctl --help)"),
            Error::Reply(code, m) => write!(f, "hypervisor error {code}: {m}"),
            Error::Connect(m) | Error::Io(m) | Error::Timeout(m) | Error::Pending(m) => {
                write!(f, "{m}")
            }
        }
    }
}

const EXIT_STATUS: &str =
    "Exit status: 0 ok, 1 the hypervisor replied with an error, 2 bad usage,\n\
3 no socket or I/O error, 4 no reply in time.";

/// Controls ebbhv over its control channel, COM2 on a Unix socket that QEMU serves
/// (`make run`, or scripts/run-hv.sh --control-socket PATH).
#[derive(Parser, Debug)]
#[command(name = "ebbctl", version, after_help = EXIT_STATUS)]
struct Cli {
    /// The control socket [default: $EBBCTL_SOCKET, else build/hv/ctl.sock of the
    /// repository ebbctl was built in]
    #[arg(long, global = true, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// How long to wait for a reply, in seconds
    #[arg(long, global = true, value_name = "SECONDS", default_value = "10",
          value_parser = parse_timeout)]
    timeout: Duration,
    /// Print state as JSON (verbs that print state)
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    verb: Verb,
}

#[derive(Subcommand, Debug)]
enum Verb {
    /// Print the domain's memory, the hypervisor heap and the platform's counters
    ///
    /// The domain's memory (tot_pages, max_pages, target_kib, static_max_kib), its
    /// memory pool in bytes (mem_pool_limit, mem_pool_used and its parts), ebbhv's own
    /// allocator (hv_pool_bytes, hv_pool_free_bytes), the hypervisor heap (frames
    /// free, used, offlined, pending; RAM leaves by size), xenstore counters, whether
    /// the domain runs or crashed and why (state, reason), and the platform's exit and
    /// hypercall counters with the longest exit by kind (exit_max_us_*), one `name
    /// value` per line.
    Info {
        /// The domain (its id or name; ebbhv runs one)
        dom: Option<String>,
        /// Print the reply line as received
        #[arg(long)]
        raw: bool,
    },
    /// Print the value of a xenstore node
    ///
    /// Relative paths are under the guest's home, /local/domain/<domid>.
    XenstoreRead { path: String },
    /// Write VALUE to a xenstore node as the control plane (domain 0)
    ///
    /// Creates the node if needed and fires the watches on it.
    XenstoreWrite {
        path: String,
        #[arg(allow_hyphen_values = true)]
        value: String,
    },
    /// List the children of a xenstore node, one per line
    XenstoreLs { path: String },
    /// Remove a xenstore node and everything below it
    XenstoreRm { path: String },
    /// Set the guest's balloon target (memory/target), like `xl mem-set`
    ///
    /// SIZE is a number with an optional unit: k (KiB), m (MiB, the default), g
    /// (GiB), t (TiB). It must be a multiple of 4 KiB and at most memory/static-max.
    #[command(override_usage = "ebbctl mem-set [OPTIONS] [DOM] SIZE")]
    MemSet(DomAndSize),
    /// Set the most memory the guest may have, like `xl mem-max`
    ///
    /// Sets its max_pages and memory/static-max. SIZE as for mem-set.
    #[command(override_usage = "ebbctl mem-max [OPTIONS] [DOM] SIZE")]
    MemMax(DomAndSize),
    /// Print or set the guest's memory pool
    ///
    /// The limit on the hypervisor memory its requests may take (p2m and nested page
    /// tables, event channels, xenstore) and what they take now, like Xen's paging
    /// mempool (`xl ... shadow_memory`). With SIZE (as for mem-set), set the limit
    /// first; a limit below what the guest uses now is refused. At its limit the
    /// guest's memory hypercalls fail with -ENOMEM and its xenstore requests with
    /// EQUOTA.
    MemPool {
        #[arg(allow_negative_numbers = true)]
        size: Option<String>,
    },
    /// Ask the guest to power off (default) or reboot
    ///
    /// Writes control/shutdown; the guest's xenbus handler acts on it.
    Shutdown {
        #[arg(value_enum, default_value = "poweroff")]
        how: ShutdownHow,
        /// End the domain at once instead, without asking the guest
        #[arg(long)]
        force: bool,
    },
    /// Make the guest's next reservation hypercalls stop short or fail
    ///
    /// OP is populate or decrease: the domain's next CALLS (from 1)
    /// XENMEM_populate_physmap or XENMEM_decrease_reservation calls stop after DONE
    /// extents and return DONE (a partial success: those extents are really done, the
    /// rest untouched), or return -ERRNO (a Xen errno name such as -EBUSY or -EINVAL)
    /// having done nothing. Faults for an op queue up after those pending (at most
    /// 8), so that one call can be cut and the next ones refused; `fail-next off`
    /// drops them all. `ebbctl info` lists what is pending as fail_populate /
    /// fail_decrease (CALLS left:DONE or -ERRNO, comma-separated, the next first). A
    /// continuation of a cut call is part of it.
    ///
    /// OP offline-copy, with -ENOMEM only: the next CALLS frames in use by the guest
    /// that mem-offline reaches find no frame free for their copy, so each stays
    /// offline pending until the guest gives it back (fail_offline_copy in info).
    #[command(
        override_usage = "ebbctl fail-next [OPTIONS] OP CALLS DONE|-ERRNO\n       \
                                ebbctl fail-next [OPTIONS] off"
    )]
    FailNext {
        /// populate, decrease, offline-copy or off
        op: String,
        calls: Option<String>,
        #[arg(allow_hyphen_values = true, value_name = "DONE|-ERRNO")]
        effect: Option<String>,
    },
    /// Take machine frames offline, like `xen-hptool mem-offline`
    ///
    /// A free frame leaves the heap at once; a frame the guest uses is copied to a
    /// new frame, which the guest gets at the same gfn while it runs; the old frame
    /// goes offline. When no frame is free for the copy, the frame stays `offline
    /// pending` until the guest gives it back (balloons it out). Frames the
    /// hypervisor owns or lends (its code and tables, shared_info, grant frames, the
    /// xenstore ring) are refused and nothing changes. Prints each frame's state;
    /// exit status 5 when a frame is left pending.
    MemOffline {
        /// One frame or an inclusive range FIRST-LAST (decimal or 0x hex, at most 512)
        #[arg(value_name = "MFN[-MFN]", value_parser = parse_frames)]
        frames: Frames,
        /// Mark the frames broken, as a machine check would: they never come back.
        /// A broken frame the guest uses is not copied (its contents are lost): its
        /// gfn is unmapped and the guest told (ebb.ko takes the page out of use and
        /// gives the gfn back, then the frame is offlined); a guest without ebb.ko is
        /// crashed
        #[arg(long)]
        broken: bool,
    },
    /// Bring offlined frames back, like `xen-hptool mem-online`
    ///
    /// An offlined frame returns to the heap; a pending offline is cancelled; a broken
    /// frame stays out (exit status 1).
    MemOnline {
        /// One frame or an inclusive range FIRST-LAST
        #[arg(value_name = "MFN[-MFN]", value_parser = parse_frames)]
        frames: Frames,
    },
    /// Print machine frames' state and owner, like `xen-hptool mem-query`
    ///
    /// State: online, offline pending or offlined (and broken); owner: free, the
    /// hypervisor (lent to a domain, at a gfn), or a domain and the gfn it maps the
    /// frame at.
    MemQuery {
        /// One frame or an inclusive range FIRST-LAST
        #[arg(value_name = "MFN[-MFN]", value_parser = parse_frames)]
        frames: Frames,
    },
    /// Print which machine frames back guest frames (leaf size 4K/2M/1G, type)
    P2m {
        /// One guest frame or an inclusive range FIRST-LAST
        #[arg(value_name = "GFN[-GFN]", value_parser = parse_frames)]
        gfns: Frames,
    },
    /// Print one machine frame's state, owner and gfn
    Mfn {
        #[arg(value_name = "MFN", value_parser = parse_frame)]
        mfn: u64,
    },
    /// Give guest frames new machine frames with the same contents, while the guest runs
    MemExchange {
        /// One guest frame or an inclusive range FIRST-LAST
        #[arg(value_name = "GFN[-GFN]", value_parser = parse_frames)]
        gfns: Frames,
    },
    /// Check that the hypervisor answers on the control channel
    Ping,
    /// Send one request line of the control protocol as given and print the reply
    Raw {
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        request: Vec<String>,
    },
}

/// `[DOM] SIZE`: one word is the size, two are the domain and the size.
#[derive(Args, Debug)]
struct DomAndSize {
    /// The domain (its id or name; ebbhv runs one), then the size
    // A negative size is a bad size, not an unknown option.
    #[arg(required = true, num_args = 1..=2, value_name = "DOM|SIZE",
          allow_negative_numbers = true)]
    words: Vec<String>,
}

impl DomAndSize {
    fn split(&self) -> (Option<&str>, &str) {
        match self.words.as_slice() {
            [dom, size] => (Some(dom), size),
            [size] => (None, size),
            // clap allows one or two words only.
            _ => (None, ""),
        }
    }
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum ShutdownHow {
    Poweroff,
    Reboot,
}

/// The most frames one frame verb covers (the protocol's limit).
const MAX_FRAMES: u64 = ebbhv_core::control::protocol::MAX_FRAMES;

/// An inclusive range of frame numbers.
#[derive(Clone, Copy, Debug)]
struct Frames {
    first: u64,
    last: u64,
}

fn parse_frame(text: &str) -> Result<u64, String> {
    ebbhv_core::control::protocol::frame_number(text.as_bytes())
        .ok_or_else(|| format!("{text:?} is not a frame number (decimal or 0x hex)"))
}

fn parse_frames(text: &str) -> Result<Frames, String> {
    let (first, last) = match text.split_once('-') {
        Some((first, last)) => (parse_frame(first)?, parse_frame(last)?),
        None => {
            let frame = parse_frame(text)?;
            (frame, frame)
        }
    };
    if last < first {
        return Err(format!("{text:?}: the last frame is below the first"));
    }
    if last - first >= MAX_FRAMES {
        return Err(format!("{text:?}: at most {MAX_FRAMES} frames at a time"));
    }
    Ok(Frames { first, last })
}

fn parse_timeout(text: &str) -> Result<Duration, String> {
    text.parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s > 0.0 && *s < 1e6)
        .map(Duration::from_secs_f64)
        .ok_or_else(|| format!("{text:?} is not a number of seconds above 0"))
}

/// Runs ebbctl with `args` (without the program name), printing to `out`.
pub fn run(args: &[String], out: &mut dyn Write) -> Result<(), Error> {
    let cli = match Cli::try_parse_from(
        std::iter::once("ebbctl".to_string()).chain(args.iter().cloned()),
    ) {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => return print(out, &e.render().to_string()),
        Err(e) => return Err(Error::CommandLine(e.render().to_string())),
    };
    let session = Session {
        socket: cli.socket.clone(),
        timeout: cli.timeout,
    };
    let Output { text, outcome } = execute(&cli.verb, &session, cli.json)?;
    print(out, &text)?;
    outcome
}

/// What a verb printed, and how it ends (a frame verb may print and still fail).
struct Output {
    text: String,
    outcome: Result<(), Error>,
}

impl From<String> for Output {
    fn from(text: String) -> Output {
        Output {
            text,
            outcome: Ok(()),
        }
    }
}

fn print(out: &mut dyn Write, text: &str) -> Result<(), Error> {
    out.write_all(text.as_bytes())
        .map_err(|e| Error::Io(e.to_string()))
}

/// Where requests go: the socket is looked for only when a request is sent, so that
/// a bad command line is reported as such.
struct Session {
    socket: Option<PathBuf>,
    timeout: Duration,
}

impl Session {
    /// Sends one request line; an error reply becomes [`Error::Reply`].
    fn ok(&self, line: &str) -> Result<Vec<Vec<u8>>, Error> {
        let socket = match &self.socket {
            Some(path) => path.clone(),
            None => default_socket()?,
        };
        match request(&socket, line, self.timeout)? {
            Reply::Ok(tokens) => Ok(tokens),
            Reply::Error(code, message) => Err(Error::Reply(code, message)),
        }
    }

    /// Checks that `dom` (an id or a name) is the guest ebbhv runs.
    fn check_domain(&self, dom: Option<&str>) -> Result<(), Error> {
        let Some(dom) = dom else { return Ok(()) };
        let info = self.ok("info")?;
        let domid = fields(&info)
            .into_iter()
            .find(|(k, _)| k == "domid")
            .map(|(_, v)| v)
            .unwrap_or_default();
        let name = self
            .ok("xs-read name")?
            .first()
            .map(|n| String::from_utf8_lossy(n).into_owned())
            .unwrap_or_default();
        if dom == domid || dom == name {
            Ok(())
        } else {
            Err(Error::Usage(format!(
                "no domain {dom:?}: ebbhv runs one guest, domain {domid} ({name})"
            )))
        }
    }
}

fn execute(verb: &Verb, s: &Session, json: bool) -> Result<Output, Error> {
    let size = |text: &str| {
        parse_kib(text)
            .ok_or_else(|| Error::Usage(format!("bad size {text:?} (e.g. 512, 512m, 524288k, 1g)")))
    };
    let text = match verb {
        Verb::MemOffline { frames, broken } => {
            let suffix = if *broken { " broken" } else { "" };
            let line = format!("mem-offline {:#x} {:#x}{suffix}", frames.first, frames.last);
            return Ok(frame_states(&s.ok(&line)?, json, true));
        }
        Verb::MemOnline { frames } => {
            let line = format!("mem-online {:#x} {:#x}", frames.first, frames.last);
            return Ok(frame_states(&s.ok(&line)?, json, false));
        }
        Verb::MemQuery { frames } => {
            let line = format!("mem-query {:#x} {:#x}", frames.first, frames.last);
            return Ok(frame_states(&s.ok(&line)?, json, false));
        }
        Verb::Mfn { mfn } => {
            let tokens = s.ok(&format!("mem-query {mfn:#x} {mfn:#x}"))?;
            let frame = tokens.first().map(|t| record(t)).unwrap_or_default();
            if json {
                json_text(&record_json(&frame))
            } else {
                let pairs: Vec<(String, String)> = frame.into_iter().collect();
                name_value_lines(&pairs)
            }
        }
        Verb::P2m { gfns } => {
            let tokens = s.ok(&format!("p2m {:#x} {:#x}", gfns.first, gfns.last))?;
            let leaves: Vec<Record> = tokens.iter().map(|t| record(t)).collect();
            if json {
                json_text(&Value::Array(leaves.iter().map(record_json).collect()))
            } else {
                leaves.iter().map(p2m_line).collect()
            }
        }
        Verb::MemExchange { gfns } => {
            let tokens = s.ok(&format!("mem-exchange {:#x} {:#x}", gfns.first, gfns.last))?;
            let moved: Vec<Record> = tokens.iter().map(|t| record(t)).collect();
            if json {
                json_text(&Value::Array(moved.iter().map(record_json).collect()))
            } else {
                moved
                    .iter()
                    .map(|m| {
                        format!(
                            "gfn {}: mfn {} -> {}\n",
                            field(m, "gfn"),
                            field(m, "old"),
                            field(m, "new")
                        )
                    })
                    .collect()
            }
        }
        Verb::Info { dom, raw } => {
            s.check_domain(dom.as_deref())?;
            let tokens = s.ok("info")?;
            if *raw {
                raw_text(&tokens)
            } else if json {
                json_text(&Value::Object(info_json(&tokens)))
            } else {
                info_text(&tokens)
            }
        }
        Verb::XenstoreRead { path } => {
            let tokens = s.ok(&format!("xs-read {}", encode(path.as_bytes())))?;
            let value = tokens.first().cloned().unwrap_or_default();
            // Guest-chosen bytes: JSON escapes control characters itself; a terminal
            // gets them as \xNN.
            if json {
                json_text(&json!({ "path": path, "value": String::from_utf8_lossy(&value) }))
            } else {
                format!("{}\n", terminal_safe(&value))
            }
        }
        Verb::XenstoreWrite { path, value } => {
            s.ok(&format!(
                "xs-write {} {}",
                encode(path.as_bytes()),
                encode(value.as_bytes())
            ))?;
            String::new()
        }
        Verb::XenstoreLs { path } => {
            let tokens = s.ok(&format!("xs-ls {}", encode(path.as_bytes())))?;
            if json {
                let names: Vec<String> = tokens
                    .iter()
                    .map(|t| String::from_utf8_lossy(t).into_owned())
                    .collect();
                json_text(&json!({ "path": path, "children": names }))
            } else {
                tokens
                    .iter()
                    .map(|t| format!("{}\n", terminal_safe(t)))
                    .collect()
            }
        }
        Verb::XenstoreRm { path } => {
            s.ok(&format!("xs-rm {}", encode(path.as_bytes())))?;
            String::new()
        }
        Verb::MemSet(words) | Verb::MemMax(words) => {
            let (dom, text) = words.split();
            let kib = size(text)?;
            s.check_domain(dom)?;
            let name = if matches!(verb, Verb::MemSet(_)) {
                "mem-set"
            } else {
                "mem-max"
            };
            lines(&s.ok(&format!("{name} {kib}"))?)
        }
        Verb::MemPool { size: limit } => {
            let line = match limit {
                Some(text) => format!("mem-pool {}", size(text)?),
                None => "mem-pool".to_string(),
            };
            let tokens = s.ok(&line)?;
            if json {
                json_text(&Value::Object(info_json(&tokens)))
            } else {
                lines(&tokens)
            }
        }
        Verb::Shutdown { how, force } => {
            let line = match (force, how) {
                (true, _) => "destroy",
                (false, ShutdownHow::Poweroff) => "shutdown poweroff",
                (false, ShutdownHow::Reboot) => "shutdown reboot",
            };
            s.ok(line)?;
            String::new()
        }
        Verb::FailNext { op, calls, effect } => {
            let line = match (op.as_str(), calls, effect) {
                ("off", None, None) => "fail-next off".to_string(),
                (op, Some(calls), Some(effect)) => fail_next_line(op, calls, effect)?,
                _ => {
                    return Err(Error::Usage(
                        "fail-next takes OP CALLS DONE|-ERRNO, or off".into(),
                    ))
                }
            };
            lines(&s.ok(&line)?)
        }
        Verb::Ping => lines(&s.ok("ping")?),
        Verb::Raw { request } => raw_text(&s.ok(&request.join(" "))?),
    };
    Ok(text.into())
}

/// One frame or leaf token's `key=value` pairs, in order.
type Record = Vec<(String, String)>;

fn record(token: &[u8]) -> Record {
    String::from_utf8_lossy(token)
        .split(',')
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (pair.to_string(), String::new()),
        })
        .collect()
}

fn field<'a>(record: &'a Record, key: &str) -> &'a str {
    record
        .iter()
        .find(|(k, _)| k == key)
        .map_or("", |(_, v)| v.as_str())
}

fn record_json(record: &Record) -> Value {
    Value::Object(
        record
            .iter()
            .map(|(k, v)| (k.clone(), json_value(v)))
            .collect(),
    )
}

/// How a frame reads to a person: `online, domain 1 gfn 0x234`.
fn frame_line(frame: &Record) -> String {
    let state = match (field(frame, "state"), field(frame, "broken")) {
        ("invalid", _) => "not RAM",
        ("pending", "1") => "offline pending (broken)",
        ("pending", _) => "offline pending",
        ("offlined", "1") => "offlined (broken)",
        (state, _) => state,
    };
    let at = |gfn: &str| {
        if gfn.is_empty() {
            String::new()
        } else {
            format!(" gfn {gfn}")
        }
    };
    let owner = match field(frame, "owner") {
        "" | "none" => String::new(),
        "free" => ", free".to_string(),
        "hypervisor" => match field(frame, "lent") {
            "" => ", hypervisor".to_string(),
            lent => format!(
                ", hypervisor (lent to domain {}{})",
                lent.trim_start_matches('d'),
                at(field(frame, "gfn"))
            ),
        },
        dom => format!(
            ", domain {}{}",
            dom.trim_start_matches('d'),
            at(field(frame, "gfn"))
        ),
    };
    let refused = match field(frame, "error") {
        "" => String::new(),
        errno => format!(" (refused: {errno})"),
    };
    format!("mfn {}: {state}{owner}{refused}\n", field(frame, "mfn"))
}

/// The frames of a mem-offline/online/query reply, and the exit status they give:
/// 1 if any frame was refused, else (`offlining`) 5 if any is left pending.
fn frame_states(tokens: &[Vec<u8>], json: bool, offlining: bool) -> Output {
    let frames: Vec<Record> = tokens.iter().map(|t| record(t)).collect();
    let text = if json {
        json_text(&Value::Array(frames.iter().map(record_json).collect()))
    } else {
        frames.iter().map(frame_line).collect()
    };
    let refusals: Vec<&str> = frames
        .iter()
        .map(|f| field(f, "error"))
        .filter(|e| !e.is_empty())
        .collect();
    let pending = frames
        .iter()
        .filter(|f| field(f, "state") == "pending")
        .count();
    let outcome = if let Some(first) = refusals.first() {
        Err(Error::Reply(
            first.to_string(),
            format!("{} of {} frames refused", refusals.len(), frames.len()),
        ))
    } else if offlining && pending > 0 {
        Err(Error::Pending(format!(
            "{pending} of {} frames offline pending: they go offline when the guest gives them back",
            frames.len()
        )))
    } else {
        Ok(())
    };
    Output { text, outcome }
}

/// How a p2m leaf (or hole) reads: `gfn 0x0-0x1ff: mfn 0x100200-0x1003ff, 2M leaf, ram`.
fn p2m_line(leaf: &Record) -> String {
    let number = |key: &str| {
        let v = field(leaf, key);
        ebbhv_core::control::protocol::frame_number(v.as_bytes()).unwrap_or(0)
    };
    let frames = number("frames").max(1);
    let span = |start: u64| {
        if frames == 1 {
            format!("{start:#x}")
        } else {
            format!("{start:#x}-{:#x}", start + frames - 1)
        }
    };
    let gfns = span(number("gfn"));
    match field(leaf, "type") {
        "none" => format!("gfn {gfns}: not mapped\n"),
        kind => format!(
            "gfn {gfns}: mfn {}, {} leaf, {kind}\n",
            span(number("mfn")),
            field(leaf, "leaf")
        ),
    }
}

/// `fail-next OP CALLS EFFECT`, checked as far as ebbctl can: the hypervisor knows
/// which errno names it takes.
fn fail_next_line(op: &str, calls: &str, effect: &str) -> Result<String, Error> {
    if op != "populate" && op != "decrease" && op != "offline-copy" {
        return Err(Error::Usage(format!(
            "fail-next takes populate, decrease, offline-copy or off, not {op:?}"
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
    if op == "offline-copy" && effect != "-ENOMEM" {
        return Err(Error::Usage(format!(
            "bad effect {effect:?}: offline-copy takes -ENOMEM (no frame free for the copy)"
        )));
    }
    Ok(format!("fail-next {op} {calls} {effect}"))
}

/// Each token on a line of its own.
fn lines(tokens: &[Vec<u8>]) -> String {
    tokens
        .iter()
        .map(|t| format!("{}\n", String::from_utf8_lossy(t)))
        .collect()
}

/// The reply line as received.
fn raw_text(tokens: &[Vec<u8>]) -> String {
    let mut line = String::from("ok");
    for t in tokens {
        line.push(' ');
        line.push_str(&encode(t));
    }
    line.push('\n');
    line
}

fn json_text(value: &Value) -> String {
    format!("{value:#}\n")
}

/// `name=value` tokens as pairs (a token without `=` has an empty value).
fn fields(tokens: &[Vec<u8>]) -> Vec<(String, String)> {
    tokens
        .iter()
        .map(|t| {
            let t = String::from_utf8_lossy(t);
            match t.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (t.to_string(), String::new()),
            }
        })
        .collect()
}

/// A JSON value for a field: a number where it is one, else the text.
fn json_value(text: &str) -> Value {
    match ebbhv_core::control::protocol::frame_number(text.as_bytes()) {
        Some(n) => Value::from(n),
        None => Value::from(text),
    }
}

fn info_json(tokens: &[Vec<u8>]) -> Map<String, Value> {
    fields(tokens)
        .into_iter()
        .map(|(k, v)| (k, json_value(&v)))
        .collect()
}

/// `name value` lines from `info`'s `name=value` tokens.
fn info_text(tokens: &[Vec<u8>]) -> String {
    name_value_lines(&fields(tokens))
}

/// Aligned `name value` lines.
fn name_value_lines(fields: &[(String, String)]) -> String {
    let width = fields.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    fields
        .iter()
        .map(|(k, v)| format!("{k:width$}  {v}\n"))
        .collect()
}
