//! Command-line handling: the options and verbs (declared for clap, which gives
//! options anywhere, `--help` per verb and `--version`), the request line each verb
//! sends, and how each reply is printed for people or, with `--json`, for scripts.

use std::fmt;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use ebbhv_core::control::protocol::{encode, Reply};
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
}

impl Error {
    /// The process exit status.
    pub fn status(&self) -> u8 {
        match self {
            Error::Reply(..) => 1,
            Error::CommandLine(_) | Error::Usage(_) => 2,
            Error::Connect(_) | Error::Io(_) => 3,
            Error::Timeout(_) => 4,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::CommandLine(m) => write!(f, "{}", m.trim_end()),
            Error::Usage(m) => write!(f, "{m} (see ebbctl --help)"),
            Error::Reply(code, m) => write!(f, "hypervisor error {code}: {m}"),
            Error::Connect(m) | Error::Io(m) | Error::Timeout(m) => write!(f, "{m}"),
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
    /// The domain's memory (tot_pages, max_pages, target_kib, static_max_kib), the
    /// hypervisor heap (frames free, used, offlined), xenstore counters and the
    /// platform's exit and hypercall counters, one `name value` per line.
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
    #[command(
        override_usage = "ebbctl fail-next [OPTIONS] OP CALLS DONE|-ERRNO\n       \
                                ebbctl fail-next [OPTIONS] off"
    )]
    FailNext {
        /// populate, decrease or off
        op: String,
        calls: Option<String>,
        #[arg(allow_hyphen_values = true, value_name = "DONE|-ERRNO")]
        effect: Option<String>,
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
    #[arg(required = true, num_args = 1..=2, value_name = "DOM|SIZE")]
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
    let text = execute(&cli.verb, &session, cli.json)?;
    print(out, &text)
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

fn execute(verb: &Verb, s: &Session, json: bool) -> Result<String, Error> {
    let size = |text: &str| {
        parse_kib(text)
            .ok_or_else(|| Error::Usage(format!("bad size {text:?} (e.g. 512, 512m, 524288k, 1g)")))
    };
    Ok(match verb {
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
            let value = String::from_utf8_lossy(&value);
            if json {
                json_text(&json!({ "path": path, "value": value }))
            } else {
                format!("{value}\n")
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
            let names: Vec<String> = tokens
                .iter()
                .map(|t| String::from_utf8_lossy(t).into_owned())
                .collect();
            if json {
                json_text(&json!({ "path": path, "children": names }))
            } else {
                names.iter().map(|n| format!("{n}\n")).collect()
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
    })
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
    match text.parse::<u64>() {
        Ok(n) => Value::from(n),
        Err(_) => Value::from(text),
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
    let fields = fields(tokens);
    let width = fields.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    fields
        .iter()
        .map(|(k, v)| format!("{k:width$}  {v}\n"))
        .collect()
}
