//! ebbctl against a fake hypervisor on a temporary Unix socket: what it sends for
//! each verb, how it prints replies, and its exit status on every kind of failure.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::mpsc;
use std::thread;

/// A fake server that answers each request line with `answer(line)` (or never, for
/// `None`) and reports the lines it got.
fn fake_server(
    name: &str,
    answer: fn(&str) -> Option<String>,
) -> (PathBuf, mpsc::Receiver<String>) {
    let dir = std::env::temp_dir().join(format!("ebbctl-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("control.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for stream in listener.incoming() {
            let stream = stream.unwrap();
            let mut reader = BufReader::new(&stream);
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap() == 0 {
                continue;
            }
            let line = line.trim_end().to_string();
            let _ = tx.send(line.clone());
            match answer(&line) {
                Some(reply) => {
                    let mut w = &stream;
                    w.write_all(reply.as_bytes()).unwrap();
                }
                None => thread::sleep(std::time::Duration::from_secs(5)),
            }
        }
    });
    (path, rx)
}

fn ebbctl(socket: &PathBuf, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ebbctl"))
        .arg("--socket")
        .arg(socket)
        .args(args)
        .env_remove("EBBCTL_SOCKET")
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn hv(line: &str) -> Option<String> {
    Some(match line {
        "ping" => "ok pong\n".into(),
        "info" => {
            "ok domid=1 tot_pages=65536 max_pages=131072 target_kib=262144 heap_free=1000\n".into()
        }
        "xs-read memory/target" => "ok 262144\n".into(),
        "xs-read control/shutdown" => "ok \"\"\n".into(),
        "xs-read data/spaced" => "ok a%20b\n".into(),
        "xs-read data/hostile" => "ok %1B]0;owned%07%0D\n".into(),
        "xs-ls data" => "ok %1B[2J ok\n".into(),
        "xs-ls memory" => "ok static-max target\n".into(),
        "xs-read missing" => "error ENOENT xenstore refused\n".into(),
        "xs-read name" => "ok ebb-guest\n".into(),
        l if l.starts_with("xs-write ") || l.starts_with("xs-rm ") => "ok\n".into(),
        l if l.starts_with("mem-set ") => format!("ok target_kib={}\n", &l[8..]),
        l if l.starts_with("mem-max ") => format!("ok max_kib={}\n", &l[8..]),
        "mem-pool" => "ok limit_kib=16384 used_kib=120\n".into(),
        "mem-pool 64" => {
            "error EBUSY limit below what the domain uses now (mem-pool shows used_kib)\n".into()
        }
        l if l.starts_with("mem-pool ") => format!("ok limit_kib={} used_kib=120\n", &l[9..]),
        "shutdown poweroff" | "shutdown reboot" | "destroy" | "fail-next off" => "ok\n".into(),
        "fail-next populate 3 100" => "ok fail_populate=3:100\n".into(),
        "fail-next decrease 1 -EBUSY" => "ok fail_decrease=1:-EBUSY\n".into(),
        "fail-next offline-copy 1 -ENOMEM" => "ok fail_offline_copy=1:-ENOMEM\n".into(),
        "fail-next decrease 1 -ENOPE" => {
            "error EINVAL unknown errno (e.g. -EBUSY, -EINVAL)\n".into()
        }
        "mem-offline 0x100123 0x100124" => {
            "ok mfn=0x100123,state=offlined,owner=none mfn=0x100124,state=offlined,owner=none\n"
                .into()
        }
        "mem-offline 0x100200 0x100200 broken" => {
            "ok mfn=0x100200,state=pending,broken=1,owner=d1,gfn=0x10\n".into()
        }
        "mem-offline 0x104000 0x104000" => {
            "error EPERM mfn 0x104000 belongs to the hypervisor (its code, heap or tables)\n".into()
        }
        "mem-online 0x100123 0x100123" => {
            "ok mfn=0x100123,state=offlined,broken=1,owner=none,error=EINVAL\n".into()
        }
        "mem-query 0x1000fe 0x1000ff" => {
            "ok mfn=0x1000fe,state=online,owner=hypervisor,lent=d1,gfn=0xfe \
             mfn=0x1000ff,state=online,owner=d1,gfn=0x234\n"
                .into()
        }
        "mem-query 0x10 0x10" => "ok mfn=0x10,state=invalid\n".into(),
        "p2m 0x3fe 0x401" => {
            "ok gfn=0x3fe,frames=2,type=ram,mfn=0x1005fe,leaf=2M gfn=0x400,frames=2,type=none\n"
                .into()
        }
        "mem-exchange 0x3fe 0x3fe" => "ok gfn=0x3fe,old=0x1005fe,new=0x100800\n".into(),
        _ => "error ENOSYS unknown verb\n".into(),
    })
}

#[test]
fn verbs_send_the_protocol_lines_and_print_replies() {
    let (sock, rx) = fake_server("verbs", hv);
    let o = ebbctl(&sock, &["ping"]);
    assert!(o.status.success());
    assert_eq!(stdout(&o), "pong\n");
    let o = ebbctl(&sock, &["info"]);
    assert!(o.status.success());
    assert!(stdout(&o).contains("tot_pages   65536\n"), "{}", stdout(&o));
    let o = ebbctl(&sock, &["info", "--raw"]);
    assert!(stdout(&o).starts_with("ok domid=1 tot_pages=65536"));
    assert_eq!(
        stdout(&ebbctl(&sock, &["xenstore-read", "memory/target"])),
        "262144\n"
    );
    assert_eq!(
        stdout(&ebbctl(&sock, &["xenstore-read", "control/shutdown"])),
        "\n"
    );
    assert_eq!(
        stdout(&ebbctl(&sock, &["xenstore-read", "data/spaced"])),
        "a b\n"
    );
    assert_eq!(
        stdout(&ebbctl(&sock, &["xenstore-ls", "memory"])),
        "static-max\ntarget\n"
    );
    // Guest-chosen bytes reach the terminal escaped.
    assert_eq!(
        stdout(&ebbctl(&sock, &["xenstore-read", "data/hostile"])),
        "\\x1b]0;owned\\x07\\x0d\n"
    );
    assert_eq!(
        stdout(&ebbctl(&sock, &["xenstore-ls", "data"])),
        "\\x1b[2J\nok\n"
    );
    assert!(ebbctl(&sock, &["xenstore-write", "data/x", "two words"])
        .status
        .success());
    assert!(ebbctl(&sock, &["xenstore-write", "data/x", ""])
        .status
        .success());
    assert!(ebbctl(&sock, &["xenstore-rm", "data/x"]).status.success());
    assert_eq!(
        stdout(&ebbctl(&sock, &["mem-set", "128"])),
        "target_kib=131072\n"
    );
    assert_eq!(
        stdout(&ebbctl(&sock, &["mem-set", "65536k"])),
        "target_kib=65536\n"
    );
    assert_eq!(
        stdout(&ebbctl(&sock, &["mem-max", "1g"])),
        "max_kib=1048576\n"
    );
    assert_eq!(
        stdout(&ebbctl(&sock, &["mem-pool"])),
        "limit_kib=16384\nused_kib=120\n"
    );
    assert_eq!(
        stdout(&ebbctl(&sock, &["mem-pool", "32m"])),
        "limit_kib=32768\nused_kib=120\n"
    );
    let refused = ebbctl(&sock, &["mem-pool", "64k"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("EBUSY"),
        "{refused:?}"
    );
    assert!(ebbctl(&sock, &["shutdown"]).status.success());
    assert!(ebbctl(&sock, &["shutdown", "reboot"]).status.success());
    assert!(ebbctl(&sock, &["shutdown", "--force"]).status.success());
    assert!(ebbctl(&sock, &["raw", "ping"]).status.success());
    let sent: Vec<String> = rx.try_iter().collect();
    for expected in [
        "xs-write data/x two%20words",
        "xs-write data/x \"\"",
        "mem-set 131072",
        "mem-max 1048576",
        "shutdown poweroff",
        "shutdown reboot",
        "destroy",
    ] {
        assert!(
            sent.iter().any(|l| l == expected),
            "{expected:?} not in {sent:?}"
        );
    }
}

#[test]
fn fail_next_checks_its_arguments() {
    let (sock, rx) = fake_server("fail-next", hv);
    let o = ebbctl(&sock, &["fail-next", "populate", "3", "100"]);
    assert!(o.status.success());
    assert_eq!(stdout(&o), "fail_populate=3:100\n");
    let o = ebbctl(&sock, &["fail-next", "decrease", "1", "-EBUSY"]);
    assert_eq!(stdout(&o), "fail_decrease=1:-EBUSY\n");
    let o = ebbctl(&sock, &["fail-next", "offline-copy", "1", "-ENOMEM"]);
    assert_eq!(stdout(&o), "fail_offline_copy=1:-ENOMEM\n");
    assert!(ebbctl(&sock, &["fail-next", "off"]).status.success());
    // A name only the hypervisor can judge.
    let o = ebbctl(&sock, &["fail-next", "decrease", "1", "-ENOPE"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("EINVAL"));
    let sent: Vec<String> = rx.try_iter().collect();
    assert_eq!(
        sent,
        [
            "fail-next populate 3 100",
            "fail-next decrease 1 -EBUSY",
            "fail-next offline-copy 1 -ENOMEM",
            "fail-next off",
            "fail-next decrease 1 -ENOPE"
        ]
    );
    for args in [
        &["fail-next"][..],
        &["fail-next", "on"],
        &["fail-next", "off", "now"],
        &["fail-next", "increase", "1", "2"],
        &["fail-next", "populate", "0", "2"],
        &["fail-next", "populate", "-1", "2"],
        &["fail-next", "populate", "1"],
        &["fail-next", "populate", "1", "-2"],
        &["fail-next", "populate", "1", "EBUSY"],
        &["fail-next", "populate", "1", "-ebusy"],
        &["fail-next", "populate", "1", "2m"],
        &["fail-next", "populate", "1", "99999999999999999999"],
        &["fail-next", "offline-copy", "1", "0"],
        &["fail-next", "offline-copy", "1", "-EBUSY"],
    ] {
        let o = ebbctl(&sock, args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(!o.stderr.is_empty(), "{args:?}");
    }
    assert_eq!(
        rx.try_iter().count(),
        0,
        "a refused command line sends nothing"
    );
}

#[test]
fn failures_have_distinct_statuses() {
    let (sock, _rx) = fake_server("errors", hv);
    let o = ebbctl(&sock, &["xenstore-read", "missing"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("ENOENT"));
    for args in [
        &["mem-set", "lots"][..],
        &["mem-set"],
        &["frob"],
        &[],
        &["xenstore-read"],
        &["shutdown", "now"],
        &["--timeout", "x", "ping"],
    ] {
        let o = ebbctl(&sock, args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(!o.stderr.is_empty());
    }
    // A negative size is a bad size, as a user reads it, not an unknown option.
    for args in [
        &["mem-max", "-1"][..],
        &["mem-set", "1", "-5"],
        &["mem-pool", "-1"],
    ] {
        let o = ebbctl(&sock, args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("bad size"),
            "{args:?}"
        );
    }
    let nowhere = PathBuf::from("/nonexistent/ebbctl.sock");
    let o = ebbctl(&nowhere, &["ping"]);
    assert_eq!(o.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot connect"));
}

#[test]
fn a_silent_hypervisor_times_out() {
    let (sock, _rx) = fake_server("silent", |_| None);
    let o = ebbctl(&sock, &["--timeout", "0.3", "ping"]);
    assert_eq!(o.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no reply"));
}

#[test]
fn every_verb_has_help() {
    let sock = PathBuf::from("/nonexistent");
    let o = ebbctl(&sock, &["--help"]);
    assert!(o.status.success());
    let help = stdout(&o);
    for verb in [
        "info",
        "xenstore-read",
        "xenstore-write",
        "xenstore-ls",
        "xenstore-rm",
        "mem-set",
        "mem-max",
        "mem-pool",
        "shutdown",
        "fail-next",
        "mem-offline",
        "mem-online",
        "mem-query",
        "p2m",
        "mfn",
        "mem-exchange",
        "ping",
        "raw",
    ] {
        assert!(help.contains(verb), "{verb}");
        let o = ebbctl(&sock, &[verb, "--help"]);
        assert!(o.status.success(), "{verb}");
        assert!(
            stdout(&o).contains(&format!("Usage: ebbctl {verb} ")),
            "{verb}: {}",
            stdout(&o)
        );
        let o = ebbctl(&sock, &["help", verb]);
        assert!(o.status.success(), "{verb}");
    }
}

#[test]
fn options_go_anywhere_and_json_prints_state() {
    let (sock, _rx) = fake_server("json", hv);
    let o = Command::new(env!("CARGO_BIN_EXE_ebbctl"))
        .args(["info", "--json", "--socket"])
        .arg(&sock)
        .env_remove("EBBCTL_SOCKET")
        .output()
        .unwrap();
    assert!(o.status.success());
    assert_eq!(
        stdout(&o),
        "{\n  \"domid\": 1,\n  \"heap_free\": 1000,\n  \"max_pages\": 131072,\n  \
         \"target_kib\": 262144,\n  \"tot_pages\": 65536\n}\n"
    );
    assert_eq!(
        stdout(&ebbctl(&sock, &["xenstore-read", "--json", "data/spaced"])),
        "{\n  \"path\": \"data/spaced\",\n  \"value\": \"a b\"\n}\n"
    );
    assert_eq!(
        stdout(&ebbctl(&sock, &["--json", "xenstore-ls", "memory"])),
        "{\n  \"children\": [\n    \"static-max\",\n    \"target\"\n  ],\n  \"path\": \"memory\"\n}\n"
    );
    let o = ebbctl(&sock, &["--version"]);
    assert!(o.status.success());
    assert_eq!(
        stdout(&o),
        format!("ebbctl {}\n", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn a_domain_argument_names_the_one_guest() {
    let (sock, rx) = fake_server("domain", hv);
    assert_eq!(
        stdout(&ebbctl(&sock, &["mem-set", "1", "128"])),
        "target_kib=131072\n"
    );
    assert_eq!(
        stdout(&ebbctl(&sock, &["mem-max", "ebb-guest", "1g"])),
        "max_kib=1048576\n"
    );
    assert!(ebbctl(&sock, &["info", "1"]).status.success());
    let o = ebbctl(&sock, &["mem-set", "7", "128"]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        "ebbctl: no domain \"7\": ebbhv runs one guest, domain 1 (ebb-guest) \
         (see ebbctl --help)\n"
    );
    let sent: Vec<String> = rx.try_iter().collect();
    assert_eq!(
        sent.iter()
            .filter(|l| l.starts_with("mem-"))
            .collect::<Vec<_>>(),
        ["mem-set 131072", "mem-max 1048576"],
        "a refused domain sends no change"
    );
    for args in [
        &["mem-set", "1", "2", "3"][..],
        &["mem-set", "1", "12x"],
        &["mem-max", "--json"],
    ] {
        assert_eq!(ebbctl(&sock, args).status.code(), Some(2), "{args:?}");
    }
}

#[test]
fn without_a_socket_ebbctl_says_how_to_get_one() {
    let o = Command::new(env!("CARGO_BIN_EXE_ebbctl"))
        .arg("ping")
        .env("EBBCTL_SOCKET", "/nonexistent/ctl.sock")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&o.stderr).contains("/nonexistent/ctl.sock"));
    let repo_socket =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../build/hv/ctl.sock");
    if !repo_socket.exists() {
        let o = Command::new(env!("CARGO_BIN_EXE_ebbctl"))
            .arg("ping")
            .current_dir("/")
            .env_remove("EBBCTL_SOCKET")
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(3));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.starts_with("ebbctl: no control socket (looked for /"),
            "{err}"
        );
        assert!(
            err.contains("build/hv/ctl.sock): start ebbhv with `make run`"),
            "{err}"
        );
    }
}

#[test]
fn frame_verbs_print_each_frame_like_xen_hptool() {
    let (sock, rx) = fake_server("frames", hv);
    let o = ebbctl(&sock, &["mem-offline", "0x100123-0x100124"]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(
        stdout(&o),
        "mfn 0x100123: offlined\nmfn 0x100124: offlined\n"
    );
    let o = ebbctl(&sock, &["mem-offline", "--broken", "1049088"]);
    assert_eq!(o.status.code(), Some(5), "a pending frame");
    assert_eq!(
        stdout(&o),
        "mfn 0x100200: offline pending (broken), domain 1 gfn 0x10\n"
    );
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        "ebbctl: 1 of 1 frames offline pending: they go offline when the guest gives them back\n"
    );
    let o = ebbctl(&sock, &["mem-offline", "0x104000"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        "ebbctl: hypervisor error EPERM: mfn 0x104000 belongs to the hypervisor (its code, heap or tables)\n"
    );
    let o = ebbctl(&sock, &["mem-online", "0x100123"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stdout(&o),
        "mfn 0x100123: offlined (broken) (refused: EINVAL)\n"
    );
    let o = ebbctl(&sock, &["mem-query", "0x1000fe-0x1000ff"]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(
        stdout(&o),
        "mfn 0x1000fe: online, hypervisor (lent to domain 1 gfn 0xfe)\n\
         mfn 0x1000ff: online, domain 1 gfn 0x234\n"
    );
    assert_eq!(
        stdout(&ebbctl(&sock, &["--json", "mem-query", "0x10"])),
        "[\n  {\n    \"mfn\": 16,\n    \"state\": \"invalid\"\n  }\n]\n"
    );
    assert_eq!(
        stdout(&ebbctl(&sock, &["mfn", "0x1000ff-0x1000ff"])).len(),
        0,
        "mfn takes one frame"
    );
    assert_eq!(
        stdout(&ebbctl(&sock, &["mfn", "0x10"])),
        "mfn    0x10\nstate  invalid\n"
    );
    assert_eq!(
        stdout(&ebbctl(&sock, &["p2m", "0x3fe-0x401"])),
        "gfn 0x3fe-0x3ff: mfn 0x1005fe-0x1005ff, 2M leaf, ram\n\
         gfn 0x400-0x401: not mapped\n"
    );
    assert_eq!(
        stdout(&ebbctl(&sock, &["mem-exchange", "0x3fe", "--json"])),
        "[\n  {\n    \"gfn\": 1022,\n    \"new\": 1050624,\n    \"old\": 1050110\n  }\n]\n"
    );
    assert_eq!(
        stdout(&ebbctl(&sock, &["mem-exchange", "0x3fe"])),
        "gfn 0x3fe: mfn 0x1005fe -> 0x100800\n"
    );
    let sent: Vec<String> = rx.try_iter().collect();
    assert!(
        sent.contains(&"mem-offline 0x100200 0x100200 broken".to_string()),
        "{sent:?}"
    );
    for (args, error) in [
        (
            &["mem-offline", "0x10-0x210"][..],
            "at most 512 frames at a time",
        ),
        (&["mem-query", "9-8"], "the last frame is below the first"),
        (
            &["mem-online", "0xg"],
            "is not a frame number (decimal or 0x hex)",
        ),
        (&["p2m", "-5"], "unexpected argument"),
        (&["mfn", "12k"], "is not a frame number"),
        (&["mem-offline"], "required"),
        (
            &["mem-offline", "1", "--brokn"],
            "unexpected argument '--brokn'",
        ),
    ] {
        let o = ebbctl(&sock, args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(error), "{args:?}: {err}");
    }
    assert_eq!(
        rx.try_iter().count(),
        0,
        "a refused command line sends nothing"
    );
}
