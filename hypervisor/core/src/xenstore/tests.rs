//! Tests of the store through its ring, as the Linux guest uses it, and through
//! the control plane.

use alloc::vec::Vec;

use super::*;
use crate::abi::xenstore::{msg, ring as off, ERROR_PROTO, ERROR_RINGIDX};
use crate::testing::{xs_message, xs_messages, FakeRing};

pub(super) const GUEST: DomId = DomId(1);

pub(super) fn store() -> Xenstore {
    let mut s = Xenstore::new(Limits::default());
    s.introduce_domain(
        GUEST,
        &DomainKeys {
            name: "guest",
            target_kib: 262_144,
            static_max_kib: 524_288,
        },
    )
    .unwrap();
    s
}

/// Sends one request and returns every message that came back.
pub(super) fn call(
    s: &mut Xenstore,
    ring: &mut FakeRing,
    ty: u32,
    tx: u32,
    payload: &[u8],
) -> Vec<(XsdSockmsg, Vec<u8>)> {
    let m = xs_message(ty, 42, tx, payload);
    let mut sent = 0;
    let mut got = Vec::new();
    while sent < m.len() {
        sent += ring.push_request_bytes(&m[sent..]);
        let served = s.serve(GUEST, ring).unwrap();
        assert!(served.notify());
        got.extend(ring.pop_reply_bytes());
    }
    let out = xs_messages(&got);
    s.tree.check().unwrap();
    out
}

/// One request's reply: Ok(payload) or Err(error name).
pub(super) fn reply(
    s: &mut Xenstore,
    ring: &mut FakeRing,
    ty: u32,
    tx: u32,
    payload: &[u8],
) -> Result<Vec<u8>, String> {
    let out = call(s, ring, ty, tx, payload);
    let (h, p) = out
        .into_iter()
        .find(|(h, _)| h.ty != msg::WATCH_EVENT)
        .expect("a reply");
    assert_eq!(h.req_id, 42);
    assert_eq!(h.tx_id, tx);
    if h.ty == msg::ERROR {
        Err(String::from_utf8(p.strip_suffix(&[0]).unwrap().to_vec()).unwrap())
    } else {
        assert_eq!(h.ty, ty);
        Ok(p)
    }
}

use alloc::string::String;

pub(super) fn ok() -> Result<Vec<u8>, String> {
    Ok(b"OK\0".to_vec())
}

pub(super) fn err(e: &str) -> Result<Vec<u8>, String> {
    Err(String::from(e))
}

#[test]
fn domain_keys_are_readable_by_the_guest() {
    let mut s = store();
    let mut r = FakeRing::default();
    assert_eq!(
        reply(&mut s, &mut r, msg::READ, 0, b"memory/target\0"),
        Ok(b"262144".to_vec())
    );
    assert_eq!(
        reply(&mut s, &mut r, msg::READ, 0, b"memory/static-max\0"),
        Ok(b"524288".to_vec())
    );
    assert_eq!(
        reply(&mut s, &mut r, msg::READ, 0, b"/local/domain/1/domid\0"),
        Ok(b"1".to_vec())
    );
    assert_eq!(
        reply(&mut s, &mut r, msg::READ, 0, b"name\0"),
        Ok(b"guest".to_vec())
    );
    assert_eq!(
        reply(
            &mut s,
            &mut r,
            msg::READ,
            0,
            b"control/platform-feature-xs_reset_watches\0"
        ),
        Ok(b"1".to_vec())
    );
    assert_eq!(
        reply(&mut s, &mut r, msg::READ, 0, b"nope\0"),
        err("ENOENT")
    );
    assert_eq!(
        reply(&mut s, &mut r, msg::READ, 0, b"/local/domain\0"),
        err("EACCES")
    );
    assert_eq!(
        reply(&mut s, &mut r, msg::DIRECTORY, 0, b"/\0"),
        err("EACCES")
    );
    let dir = reply(&mut s, &mut r, msg::DIRECTORY, 0, b"memory\0").unwrap();
    assert_eq!(dir, b"static-max\0target\0");
    assert_eq!(
        reply(&mut s, &mut r, msg::DIRECTORY, 0, b"device\0"),
        Ok(Vec::new())
    );
}

#[test]
fn the_guest_writes_only_what_it_owns() {
    let mut s = store();
    let mut r = FakeRing::default();
    assert_eq!(
        reply(&mut s, &mut r, msg::WRITE, 0, b"memory/target\x00123"),
        err("EACCES")
    );
    assert_eq!(
        reply(&mut s, &mut r, msg::WRITE, 0, b"memory/static-max\x00123"),
        err("EACCES")
    );
    assert_eq!(
        reply(&mut s, &mut r, msg::WRITE, 0, b"memory/new\0x"),
        err("EACCES")
    );
    assert_eq!(
        reply(&mut s, &mut r, msg::RM, 0, b"memory\0"),
        err("EACCES")
    );
    assert_eq!(
        reply(&mut s, &mut r, msg::WRITE, 0, b"name\0x"),
        err("EACCES")
    );
    assert_eq!(
        reply(&mut s, &mut r, msg::WRITE, 0, b"/local/domain/2/x\0x"),
        err("EACCES")
    );
    assert_eq!(s.control_read(GUEST, "memory/target").unwrap(), b"262144");
    // As under libxl: `memory/` is the toolstack's; a balloon's status goes to `data/`.
    assert_eq!(
        reply(&mut s, &mut r, msg::WRITE, 0, b"memory/ebb-state\0ok"),
        err("EACCES")
    );
    assert_eq!(
        reply(&mut s, &mut r, msg::WRITE, 0, b"data/ebb-state\0ok"),
        ok()
    );
    assert_eq!(
        reply(
            &mut s,
            &mut r,
            msg::WRITE,
            0,
            b"control/feature-balloon\x001"
        ),
        ok()
    );
    assert_eq!(
        reply(
            &mut s,
            &mut r,
            msg::WRITE,
            0,
            b"control/feature-poweroff\x001"
        ),
        ok()
    );
    assert_eq!(
        reply(&mut s, &mut r, msg::WRITE, 0, b"data/a/b/c\0deep"),
        ok()
    );
    assert_eq!(
        reply(&mut s, &mut r, msg::READ, 0, b"data/a/b/c\0"),
        Ok(b"deep".to_vec())
    );
    assert_eq!(
        reply(&mut s, &mut r, msg::GET_PERMS, 0, b"data/a\0"),
        Ok(b"n1\0".to_vec())
    );
    assert_eq!(
        reply(&mut s, &mut r, msg::GET_PERMS, 0, b"memory/target\0"),
        Ok(b"n0\0r1\0".to_vec())
    );
    assert_eq!(reply(&mut s, &mut r, msg::MKDIR, 0, b"device/vif\0"), ok());
    assert_eq!(reply(&mut s, &mut r, msg::MKDIR, 0, b"device/vif\0"), ok());
    assert_eq!(reply(&mut s, &mut r, msg::RM, 0, b"data/a\0"), ok());
    assert_eq!(
        reply(&mut s, &mut r, msg::READ, 0, b"data/a/b/c\0"),
        err("ENOENT")
    );
    assert_eq!(
        reply(&mut s, &mut r, msg::RM, 0, b"data/a\0"),
        ok(),
        "rm of a missing node under an existing parent"
    );
    assert_eq!(
        reply(&mut s, &mut r, msg::RM, 0, b"data/x/y\0"),
        err("ENOENT")
    );
    assert_eq!(
        reply(&mut s, &mut r, msg::WRITE, 0, b"control/shutdown\0"),
        ok()
    );
}

#[test]
fn set_perms_follows_ownership() {
    let mut s = store();
    let mut r = FakeRing::default();
    assert_eq!(reply(&mut s, &mut r, msg::WRITE, 0, b"data/p\0v"), ok());
    assert_eq!(
        reply(&mut s, &mut r, msg::SET_PERMS, 0, b"data/p\0n1\0r0\0"),
        ok()
    );
    assert_eq!(
        reply(&mut s, &mut r, msg::GET_PERMS, 0, b"data/p\0"),
        Ok(b"n1\0r0\0".to_vec())
    );
    assert_eq!(
        reply(&mut s, &mut r, msg::SET_PERMS, 0, b"data/p\0b0\0"),
        err("EACCES"),
        "giving a node away"
    );
    assert_eq!(
        reply(&mut s, &mut r, msg::SET_PERMS, 0, b"memory/target\0b1\0"),
        err("EACCES")
    );
    assert_eq!(
        reply(&mut s, &mut r, msg::SET_PERMS, 0, b"data/p\0x1\0"),
        err("EINVAL")
    );
    assert_eq!(
        reply(&mut s, &mut r, msg::SET_PERMS, 0, b"data/p\0n\0"),
        err("EINVAL")
    );
    assert_eq!(
        reply(&mut s, &mut r, msg::SET_PERMS, 0, b"data/p\0n99999\0"),
        err("EINVAL")
    );
    assert_eq!(
        reply(&mut s, &mut r, msg::SET_PERMS, 0, b"data/p\0"),
        err("EINVAL")
    );
    let many = b"data/p\0n1\0r2\0r3\0r4\0r5\0r6\0r7\0r8\0r9\0";
    assert_eq!(reply(&mut s, &mut r, msg::SET_PERMS, 0, many), err("E2BIG"));
}

#[test]
fn watches_fire_on_registration_and_on_changes() {
    let mut s = store();
    let mut r = FakeRing::default();
    let out = call(&mut s, &mut r, msg::WATCH, 0, b"memory/target\0tok\0");
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].1, b"OK\0");
    assert_eq!(out[1].0.ty, msg::WATCH_EVENT);
    assert_eq!(out[1].1, b"memory/target\0tok\0");
    s.control_write(GUEST, "memory/target", b"131072").unwrap();
    assert!(s.has_output(GUEST));
    let served = s.serve(GUEST, &mut r).unwrap();
    assert!(served.notify());
    let ev = xs_messages(&r.pop_reply_bytes());
    assert_eq!(ev.len(), 1);
    assert_eq!(
        (ev[0].0.ty, ev[0].1.as_slice()),
        (msg::WATCH_EVENT, &b"memory/target\0tok\0"[..])
    );
    assert_eq!(
        reply(&mut s, &mut r, msg::READ, 0, b"memory/target\0"),
        Ok(b"131072".to_vec())
    );

    // An absolute watch on a directory reports absolute paths of changes below.
    let out = call(
        &mut s,
        &mut r,
        msg::WATCH,
        0,
        b"/local/domain/1/control\0c\0",
    );
    assert_eq!(out[1].1, b"/local/domain/1/control\0c\0");
    s.control_write(GUEST, "control/shutdown", b"poweroff")
        .unwrap();
    s.serve(GUEST, &mut r).unwrap();
    let ev = xs_messages(&r.pop_reply_bytes());
    assert_eq!(ev[0].1, b"/local/domain/1/control/shutdown\0c\0");

    // Removing a parent fires the watches below it with their own path.
    let out = call(&mut s, &mut r, msg::WATCH, 0, b"data/x/y\0d\0");
    assert_eq!(out[1].1, b"data/x/y\0d\0");
    assert_eq!(reply(&mut s, &mut r, msg::WRITE, 0, b"data/x/y/z\0v"), ok());
    let out = call(&mut s, &mut r, msg::RM, 0, b"data/x\0");
    assert!(out.iter().any(|(h, p)| h.ty == msg::RM && p == b"OK\0"));
    assert!(out.iter().any(|(_, p)| p == b"data/x/y\0d\0"));

    assert_eq!(
        reply(&mut s, &mut r, msg::WATCH, 0, b"memory/target\0tok\0"),
        err("EEXIST")
    );
    assert_eq!(
        reply(&mut s, &mut r, msg::UNWATCH, 0, b"memory/target\0tok\0"),
        ok()
    );
    assert_eq!(
        reply(&mut s, &mut r, msg::UNWATCH, 0, b"memory/target\0tok\0"),
        err("ENOENT")
    );
    s.control_write(GUEST, "memory/target", b"1").unwrap();
    assert!(!s.has_output(GUEST));
    assert_eq!(reply(&mut s, &mut r, msg::RESET_WATCHES, 0, b"\0"), ok());
    s.control_write(GUEST, "control/shutdown", b"").unwrap();
    assert!(!s.has_output(GUEST));
}

#[test]
fn watches_do_not_leak_what_the_guest_cannot_read() {
    let mut s = store();
    let mut r = FakeRing::default();
    call(&mut s, &mut r, msg::WATCH, 0, b"/\0all\0");
    s.control_write(GUEST, "/secret", b"x").unwrap();
    assert!(!s.has_output(GUEST));
    s.control_write(GUEST, "memory/target", b"5").unwrap();
    assert!(s.has_output(GUEST));
}

#[test]
fn special_watches() {
    let mut s = store();
    let mut r = FakeRing::default();
    let out = call(&mut s, &mut r, msg::WATCH, 0, b"@releaseDomain\0r\0");
    assert_eq!(out[1].1, b"@releaseDomain\0r\0");
    assert_eq!(
        reply(&mut s, &mut r, msg::WATCH, 0, b"\0t\0"),
        err("EINVAL")
    );
    assert_eq!(reply(&mut s, &mut r, msg::WATCH, 0, b"a\0"), err("EINVAL"));
}

#[test]
fn transactions_commit_abort_and_conflict() {
    let mut s = store();
    let mut r = FakeRing::default();
    let id = reply(&mut s, &mut r, msg::TRANSACTION_START, 0, b"\0").unwrap();
    assert_eq!(id, b"1\0");
    call(&mut s, &mut r, msg::WATCH, 0, b"control/shutdown\0w\0");
    assert_eq!(
        reply(&mut s, &mut r, msg::WRITE, 1, b"control/shutdown\0in-tx"),
        ok()
    );
    assert_eq!(
        reply(&mut s, &mut r, msg::READ, 1, b"control/shutdown\0"),
        Ok(b"in-tx".to_vec())
    );
    assert_eq!(
        reply(&mut s, &mut r, msg::READ, 0, b"control/shutdown\0"),
        Ok(Vec::new())
    );
    // The watch registration did not change the tree: the commit goes through and
    // fires the watch after the reply.
    let out = call(&mut s, &mut r, msg::TRANSACTION_END, 1, b"T\0");
    assert_eq!(out.len(), 2);
    assert!(out
        .iter()
        .any(|(h, p)| h.ty == msg::TRANSACTION_END && p == b"OK\0"));
    assert!(out
        .iter()
        .any(|(h, p)| h.ty == msg::WATCH_EVENT && p == b"control/shutdown\0w\0"));
    assert_eq!(
        reply(&mut s, &mut r, msg::READ, 0, b"control/shutdown\0"),
        Ok(b"in-tx".to_vec())
    );

    let id = reply(&mut s, &mut r, msg::TRANSACTION_START, 0, b"\0").unwrap();
    assert_eq!(id, b"2\0");
    assert_eq!(reply(&mut s, &mut r, msg::WRITE, 2, b"data/t\0v"), ok());
    assert_eq!(reply(&mut s, &mut r, msg::TRANSACTION_END, 2, b"F\0"), ok());
    assert_eq!(
        reply(&mut s, &mut r, msg::READ, 0, b"data/t\0"),
        err("ENOENT")
    );

    reply(&mut s, &mut r, msg::TRANSACTION_START, 0, b"\0").unwrap();
    assert_eq!(reply(&mut s, &mut r, msg::WRITE, 3, b"data/t\0v"), ok());
    s.control_write(GUEST, "memory/target", b"7").unwrap();
    r.pop_reply_bytes();
    assert_eq!(
        reply(&mut s, &mut r, msg::TRANSACTION_END, 3, b"T\0"),
        err("EAGAIN")
    );
    assert_eq!(
        reply(&mut s, &mut r, msg::TRANSACTION_END, 3, b"T\0"),
        err("ENOENT")
    );
    assert_eq!(
        reply(&mut s, &mut r, msg::READ, 9, b"name\0"),
        err("ENOENT")
    );
    assert_eq!(
        reply(&mut s, &mut r, msg::TRANSACTION_END, 0, b"X\0"),
        err("EINVAL")
    );
    assert_eq!(
        reply(&mut s, &mut r, msg::TRANSACTION_START, 5, b"\0"),
        err("EBUSY")
    );
    for _ in 0..Limits::default().max_transactions {
        assert!(reply(&mut s, &mut r, msg::TRANSACTION_START, 0, b"\0").is_ok());
    }
    assert_eq!(
        reply(&mut s, &mut r, msg::TRANSACTION_START, 0, b"\0"),
        err("ENOSPC")
    );
}

#[test]
fn malformed_requests_get_error_replies() {
    let mut s = store();
    let mut r = FakeRing::default();
    assert_eq!(
        reply(&mut s, &mut r, msg::READ, 0, b"name"),
        err("EINVAL"),
        "no NUL"
    );
    assert_eq!(
        reply(&mut s, &mut r, msg::READ, 0, b"name\0x\0"),
        err("EINVAL"),
        "two paths"
    );
    assert_eq!(reply(&mut s, &mut r, msg::READ, 0, b""), err("EINVAL"));
    assert_eq!(
        reply(&mut s, &mut r, msg::WRITE, 0, b"data/x"),
        err("EINVAL")
    );
    assert_eq!(
        reply(&mut s, &mut r, msg::READ, 0, b"a//b\0"),
        err("EINVAL")
    );
    assert_eq!(reply(&mut s, &mut r, 999, 0, b"x\0"), err("EINVAL"));
    assert_eq!(
        reply(&mut s, &mut r, msg::INTRODUCE, 0, b"1\0"),
        err("EACCES")
    );
    assert_eq!(reply(&mut s, &mut r, msg::ERROR, 0, b""), err("EINVAL"));
    assert_eq!(
        reply(&mut s, &mut r, msg::GET_DOMAIN_PATH, 0, b"1\0"),
        Ok(b"/local/domain/1\0".to_vec())
    );
    assert_eq!(
        reply(&mut s, &mut r, msg::GET_DOMAIN_PATH, 0, b"x\0"),
        err("EINVAL")
    );
    let big = [b'v'; 2049];
    let mut w = b"data/big\0".to_vec();
    w.extend_from_slice(&big);
    assert_eq!(reply(&mut s, &mut r, msg::WRITE, 0, &w), err("E2BIG"));
    assert!(s.stats().errors >= 10);
}

#[test]
fn node_and_watch_quotas() {
    let mut s = store();
    let mut r = FakeRing::default();
    let owned = s.tree().owned_by(GUEST) as usize;
    let limits = Limits::default();
    for i in 0..limits.max_nodes - owned {
        let p = alloc::format!("data/n{i}\0v");
        assert_eq!(
            reply(&mut s, &mut r, msg::WRITE, 0, p.as_bytes()),
            ok(),
            "node {i}"
        );
    }
    assert_eq!(
        reply(&mut s, &mut r, msg::WRITE, 0, b"data/one-more\0v"),
        err("ENOSPC")
    );
    assert_eq!(reply(&mut s, &mut r, msg::RM, 0, b"data/n0\0"), ok());
    assert_eq!(
        reply(&mut s, &mut r, msg::WRITE, 0, b"data/one-more\0v"),
        ok()
    );
    for i in 0..limits.max_watches {
        let p = alloc::format!("data\0t{i}\0");
        assert_eq!(
            call(&mut s, &mut r, msg::WATCH, 0, p.as_bytes())[0].1,
            b"OK\0"
        );
    }
    assert_eq!(
        reply(&mut s, &mut r, msg::WATCH, 0, b"data\0extra\0"),
        err("E2BIG")
    );
}

#[test]
fn large_requests_and_replies_cross_the_ring() {
    let mut s = store();
    let mut r = FakeRing::default();
    for i in 0..200 {
        let p = alloc::format!("data/a-rather-long-node-name-{i:04}\0v");
        assert_eq!(reply(&mut s, &mut r, msg::WRITE, 0, p.as_bytes()), ok());
    }
    // 200 names are 5800 bytes: more than a reply may carry (XENSTORE_PAYLOAD_MAX).
    assert_eq!(
        reply(&mut s, &mut r, msg::DIRECTORY, 0, b"data\0"),
        err("E2BIG")
    );
    for i in 100..200 {
        let p = alloc::format!("data/a-rather-long-node-name-{i:04}\0");
        assert_eq!(reply(&mut s, &mut r, msg::RM, 0, p.as_bytes()), ok());
    }
    // A directory reply of 2900 bytes goes through the 1 KiB ring in pieces.
    let m = xs_message(msg::DIRECTORY, 7, 0, b"data\0");
    r.push_request_bytes(&m);
    let mut got = Vec::new();
    for _ in 0..20 {
        s.serve(GUEST, &mut r).unwrap();
        got.extend(r.pop_reply_bytes());
    }
    let out = xs_messages(&got);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].1.len(), 2900);
    assert_eq!(out[0].1.iter().filter(|&&c| c == 0).count(), 100);
    // A 3 KiB write request arrives in pieces too.
    let mut w = b"data/big\0".to_vec();
    w.extend_from_slice(&[b'x'; 2000]);
    let m = xs_message(msg::WRITE, 8, 0, &w);
    let mut sent = 0;
    while sent < m.len() {
        sent += r.push_request_bytes(&m[sent..]);
        s.serve(GUEST, &mut r).unwrap();
    }
    assert_eq!(xs_messages(&r.pop_reply_bytes())[0].1, b"OK\0");
    assert_eq!(s.control_read(GUEST, "data/big").unwrap().len(), 2000);
}

#[test]
fn broken_rings_are_reset() {
    let mut s = store();
    let mut r = FakeRing::default();
    r.set_field(off::REQ_PROD, 5000);
    let served = s.serve(GUEST, &mut r).unwrap();
    assert_eq!(served.requests, 0);
    assert_eq!(r.field(off::ERROR), ERROR_RINGIDX);
    assert_eq!(r.field(off::REQ_CONS), 5000);
    assert_eq!(s.stats().ring_resets, 1);

    let mut r = FakeRing::default();
    let mut m = xs_message(msg::READ, 9, 0, b"");
    m[12..16].copy_from_slice(&5000u32.to_le_bytes());
    r.push_request_bytes(&m);
    r.push_request_bytes(b"junk");
    s.serve(GUEST, &mut r).unwrap();
    assert_eq!(r.field(off::ERROR), ERROR_PROTO);
    let out = xs_messages(&r.pop_reply_bytes());
    assert_eq!(
        (out[0].0.ty, out[0].0.req_id, out[0].1.as_slice()),
        (msg::ERROR, 9, &b"E2BIG\0"[..])
    );
    assert_eq!(r.field(off::REQ_CONS), r.field(off::REQ_PROD));
    // The ring works again afterwards.
    assert_eq!(
        reply(&mut s, &mut r, msg::READ, 0, b"domid\0"),
        Ok(b"1".to_vec())
    );

    // A guest that claims to have consumed more than was produced gets nothing.
    r.set_field(off::RSP_CONS, r.field(off::RSP_PROD).wrapping_add(4000));
    r.push_request_bytes(&xs_message(msg::READ, 1, 0, b"domid\0"));
    assert_eq!(s.serve(GUEST, &mut r).unwrap().produced, 0);
}

#[test]
fn a_guest_that_never_reads_replies_stops_being_served() {
    let mut s = store();
    let mut r = FakeRing::default();
    let m = xs_message(msg::READ, 1, 0, b"memory/static-max\0");
    let mut total = 0u64;
    for _ in 0..10_000 {
        if r.push_request_bytes(&m) == 0 {
            break;
        }
        total += u64::from(s.serve(GUEST, &mut r).unwrap().requests);
    }
    let limit = Limits::default().max_output as u64;
    assert!(total * 22 < limit + 2048, "served {total} requests");
    assert!(r.field(off::REQ_PROD) != r.field(off::REQ_CONS));
}

#[test]
fn indices_wrap_at_2_pow_32() {
    let mut s = store();
    let mut r = FakeRing::default();
    for f in [off::REQ_CONS, off::REQ_PROD, off::RSP_CONS, off::RSP_PROD] {
        r.set_field(f, u32::MAX - 10);
    }
    for _ in 0..5 {
        assert_eq!(
            reply(&mut s, &mut r, msg::READ, 0, b"memory/target\0"),
            Ok(b"262144".to_vec())
        );
    }
    assert!(r.field(off::REQ_CONS) < 200);
}

#[test]
fn control_plane_and_domain_lifecycle() {
    let mut s = store();
    assert_eq!(s.control_write(GUEST, "memory/target", b"1024"), Ok(()));
    assert_eq!(
        s.control_read(GUEST, "/local/domain/1/memory/target")
            .unwrap(),
        b"1024"
    );
    assert_eq!(
        s.control_list(GUEST, "memory").unwrap(),
        ["static-max", "target"]
    );
    assert_eq!(s.control_read(GUEST, "bad//path"), Err(XsError::EINVAL));
    assert_eq!(s.control_rm(GUEST, "data"), Ok(()));
    assert_eq!(s.control_read(GUEST, "data"), Err(XsError::ENOENT));
    assert_eq!(
        s.introduce_domain(
            GUEST,
            &DomainKeys {
                name: "x",
                target_kib: 1,
                static_max_kib: 1
            }
        ),
        Err(XsError::EEXIST)
    );
    let mut r = FakeRing::default();
    assert_eq!(s.serve(DomId(9), &mut r), Err(XsError::ENOENT));
    s.release_domain(GUEST).unwrap();
    assert_eq!(s.control_read(GUEST, "name"), Err(XsError::ENOENT));
    assert_eq!(s.tree().owned_by(GUEST), 0);
    s.tree().check().unwrap();
}

#[test]
fn what_the_control_plane_creates_in_a_guest_subtree_keeps_the_parents_permissions() {
    let mut s = store();
    let mut r = FakeRing::default();
    assert_eq!(s.control_write(GUEST, "data/host/reply", b"0"), Ok(()));
    assert_eq!(
        reply(&mut s, &mut r, msg::READ, 0, b"data/host/reply\0"),
        Ok(b"0".to_vec())
    );
    assert_eq!(
        reply(&mut s, &mut r, msg::WRITE, 0, b"data/host/reply\x001"),
        ok()
    );
    assert_eq!(s.control_write(GUEST, "memory/limit", b"1"), Ok(()));
    assert_eq!(
        reply(&mut s, &mut r, msg::WRITE, 0, b"memory/limit\x002"),
        err("EACCES")
    );
}
