//! A guest flooding the store ends in `EQUOTA`, `ENOSPC` or `E2BIG`, never with
//! the store holding more for it than its quota.

use alloc::format;

use super::tests::{err, ok, reply, store, GUEST};
use super::*;
use crate::abi::xenstore::msg;
use crate::testing::FakeRing;

const QUOTA: usize = 64 * 1024;

#[test]
fn big_values_end_in_equota_at_the_quota() {
    let mut s = store();
    let mut r = FakeRing::default();
    s.set_domain_quota(GUEST, QUOTA);
    let value = [b'v'; 2000];
    let mut written = 0;
    let refused = loop {
        let mut p = format!("data/n{written:02}\0").into_bytes();
        p.extend_from_slice(&value);
        match reply(&mut s, &mut r, msg::WRITE, 0, &p) {
            Ok(_) => written += 1,
            Err(e) => break e,
        }
        assert!(written < 100, "no quota");
    };
    assert_eq!(refused, "EQUOTA");
    let held = s.domain_bytes(GUEST);
    assert!(held <= QUOTA, "{held}");
    // The next node would not have fitted.
    let one = tree::node_bytes(
        "/local/domain/1/data/n00",
        s.tree.get(&node("data/n00")).unwrap(),
    );
    assert!(held + one > QUOTA, "{held} + {one}");
    // Rewriting a value no longer is still allowed; removing frees room.
    let mut p = b"data/n00\0".to_vec();
    p.extend_from_slice(&value);
    assert_eq!(reply(&mut s, &mut r, msg::WRITE, 0, &p), ok());
    assert_eq!(reply(&mut s, &mut r, msg::RM, 0, b"data/n00\0"), ok());
    assert!(s.domain_bytes(GUEST) < held);
}

fn node(rel: &str) -> Path {
    Path::parse(rel.as_bytes(), &Path::home(GUEST)).unwrap().0
}

#[test]
fn each_transaction_pays_for_its_copy_of_the_tree() {
    let mut s = store();
    let mut r = FakeRing::default();
    for i in 0..20 {
        let p = format!("data/k{i}\0{}", "x".repeat(1000));
        assert_eq!(reply(&mut s, &mut r, msg::WRITE, 0, p.as_bytes()), ok());
    }
    s.set_domain_quota(GUEST, QUOTA);
    let copy = s.tree.bytes();
    let mut open = 0;
    let refused = loop {
        match reply(&mut s, &mut r, msg::TRANSACTION_START, 0, b"\0") {
            Ok(_) => open += 1,
            Err(e) => break e,
        }
        assert!(open <= 10);
    };
    assert_eq!(refused, "EQUOTA");
    let held = s.domain_bytes(GUEST);
    assert!(held <= QUOTA, "{held}");
    assert!(held + copy > QUOTA, "{held} + {copy}");
    assert!(open >= 1);
}

#[test]
fn a_transaction_records_at_most_its_change_quota() {
    let mut s = store();
    let mut r = FakeRing::default();
    let id = reply(&mut s, &mut r, msg::TRANSACTION_START, 0, b"\0").unwrap();
    let tx: u32 = core::str::from_utf8(id.strip_suffix(&[0]).unwrap())
        .unwrap()
        .parse()
        .unwrap();
    // Create and remove pairs keep the node count down but each records a change.
    let limit = Limits::default().max_transaction_changes;
    let mut changes = 0;
    let mut i = 0;
    let refused = loop {
        let path = format!("data/t{i}\0");
        let r1 = reply(
            &mut s,
            &mut r,
            msg::WRITE,
            tx,
            format!("{path}v").as_bytes(),
        );
        if let Err(e) = r1 {
            break e;
        }
        changes += 1;
        match reply(&mut s, &mut r, msg::RM, tx, path.as_bytes()) {
            Ok(_) => changes += 1,
            Err(e) => break e,
        }
        i += 1;
        assert!(changes <= limit, "no change quota");
    };
    assert_eq!(refused, "ENOSPC");
    // Each pair is two changes (the write and the removal).
    assert_eq!(i, limit / 2);
    assert_eq!(changes, limit);
    assert!(s.domain_bytes(GUEST) <= Limits::default().max_bytes);
    assert_eq!(
        reply(&mut s, &mut r, msg::TRANSACTION_END, tx, b"F\0"),
        ok()
    );
}

#[test]
fn watches_end_in_equota_at_the_quota() {
    let mut s = store();
    let mut r = FakeRing::default();
    s.set_domain_quota(GUEST, QUOTA);
    let token = "t".repeat(1000);
    let mut n = 0;
    let refused = loop {
        let p = format!("data/w{n:03}\0{token}\0");
        let result = reply(&mut s, &mut r, msg::WATCH, 0, p.as_bytes());
        // Take the watch's first event, so that only the watches are held.
        while !r.pop_reply_bytes().is_empty() || s.has_output(GUEST) {
            s.serve(GUEST, &mut r).unwrap();
        }
        match result {
            Ok(_) => n += 1,
            Err(e) => break e,
        }
        assert!(n < 128, "no quota");
    };
    assert_eq!(refused, "EQUOTA");
    let held = s.domain_bytes(GUEST);
    let one = s.conns[&GUEST].watches[0].bytes();
    assert!(held <= QUOTA && held + one > QUOTA, "{held} + {one}");
    assert_eq!(n, s.conns[&GUEST].watches.len());
}

#[test]
fn the_quota_never_passes_limits_max_bytes() {
    let mut s = store();
    s.set_domain_quota(GUEST, usize::MAX);
    assert_eq!(s.conns[&GUEST].quota, Limits::default().max_bytes);
    s.set_domain_quota(GUEST, 1);
    let mut r = FakeRing::default();
    assert_eq!(
        reply(&mut s, &mut r, msg::WRITE, 0, b"data/x\0v"),
        err("EQUOTA")
    );
    // Reads still work at the quota.
    assert!(reply(&mut s, &mut r, msg::READ, 0, b"memory/target\0").is_ok());
}
