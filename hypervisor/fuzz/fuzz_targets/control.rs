//! The control protocol (`ebbhv_core::control::protocol`), the one place where
//! bytes from the control channel are checked: any line parses without a panic,
//! and a command it accepts, written back as a line the way ebbctl writes it,
//! parses to the same command. Tokens round-trip through `encode`/`decode`, an
//! `ok` reply of any tokens parses back to them, and `terminal_safe` leaves only
//! printable ASCII.
#![no_main]
#![forbid(unsafe_code)]

use ebbhv_core::control::protocol::{
    decode, encode, ok_reply, parse, parse_reply, terminal_safe, Command, Reply,
};
use ebbhv_core::hv::FaultEffect;
use libfuzzer_sys::fuzz_target;

/// The request line for `command`, from its parts.
fn line(command: &Command) -> String {
    let frames = |verb: &str, start: u64, end: u64| format!("{verb} {start:#x} {}", end - 1);
    match command {
        Command::Ping => "ping".into(),
        Command::Info => "info".into(),
        Command::XsRead(p) => format!("xs-read {}", encode(p.as_bytes())),
        Command::XsWrite(p, v) => format!("xs-write {} {}", encode(p.as_bytes()), encode(v)),
        Command::XsLs(p) => format!("xs-ls {}", encode(p.as_bytes())),
        Command::XsRm(p) => format!("xs-rm {}", encode(p.as_bytes())),
        Command::MemSet(n) => format!("mem-set {n}"),
        Command::MemMax(n) => format!("mem-max {n}"),
        Command::MemPool(None) => "mem-pool".into(),
        Command::MemPool(Some(n)) => format!("mem-pool {n}"),
        Command::Shutdown(how) => format!("shutdown {how}"),
        Command::Destroy => "destroy".into(),
        Command::FailNext(op, fault) => {
            let effect = match fault.effect {
                FaultEffect::Stop(done) => done.to_string(),
                FaultEffect::Fail(errno) => format!("-{}", errno.name()),
            };
            format!("fail-next {} {} {effect}", op.name(), fault.calls)
        }
        Command::FailOff => "fail-next off".into(),
        Command::MemOffline(r, broken) => {
            let mut l = frames("mem-offline", r.start.0, r.end.0);
            if *broken {
                l.push_str(" broken");
            }
            l
        }
        Command::MemOnline(r) => frames("mem-online", r.start.0, r.end.0),
        Command::MemQuery(r) => frames("mem-query", r.start.0, r.end.0),
        Command::P2m(r) => frames("p2m", r.start.0, r.end.0),
        Command::MemExchange(r) => frames("mem-exchange", r.start.0, r.end.0),
    }
}

/// The verbs, so that the fuzzer need not guess them byte by byte.
const VERBS: [&str; 17] = [
    "ping",
    "info",
    "xs-read",
    "xs-write",
    "xs-ls",
    "xs-rm",
    "mem-set",
    "mem-max",
    "mem-pool",
    "shutdown",
    "destroy",
    "fail-next",
    "mem-offline",
    "mem-online",
    "mem-query",
    "p2m",
    "mem-exchange",
];

fuzz_target!(|data: &[u8]| {
    // A first byte naming a verb stands for it and a space; any other is raw.
    let request = match data.split_first() {
        Some((&v, rest)) if usize::from(v) < VERBS.len() => {
            [VERBS[usize::from(v)].as_bytes(), b" ", rest].concat()
        }
        _ => data.to_vec(),
    };
    if let Ok(command) = parse(&request) {
        let again = line(&command);
        assert_eq!(parse(again.as_bytes()), Ok(command), "{again:?}");
    }

    let token = encode(data);
    assert!(token.bytes().all(|c| c.is_ascii_graphic()), "{token:?}");
    assert_eq!(decode(token.as_bytes()).as_deref(), Some(data));
    if let Some(bytes) = decode(data) {
        assert_eq!(decode(encode(&bytes).as_bytes()), Some(bytes));
    }

    let words: Vec<&[u8]> = data.split(|&c| c == 0).collect();
    let tokens: Vec<String> = words.iter().map(|w| encode(w)).collect();
    let reply = ok_reply(tokens.iter().map(String::as_str));
    let expected = words.iter().map(|w| w.to_vec()).collect();
    assert_eq!(
        parse_reply(reply.trim_end_matches('\n')),
        Some(Reply::Ok(expected))
    );
    if let Ok(text) = core::str::from_utf8(data) {
        let _ = parse_reply(text);
    }

    let safe = terminal_safe(data);
    assert!(
        safe.bytes().all(|c| c == b' ' || c.is_ascii_graphic()),
        "{safe:?}"
    );
});
