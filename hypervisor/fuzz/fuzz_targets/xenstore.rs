//! Feeds raw bytes to the xenstore ring handler as a hostile guest would: a script
//! of steps that produce request bytes, scribble over the ring indices, consume
//! replies, and interleave control-plane writes (which fire watches). Nothing may
//! panic, the tree's invariants must hold after every step and the guest's node
//! count stays within its quota, and what the store holds for it within its byte
//! quota plus the bytes in flight (output up to its limit and a reply over it, a
//! request being received).
#![no_main]
#![forbid(unsafe_code)]

use ebbhv_core::abi::codec::AbiRecord;
use ebbhv_core::abi::xenstore::{ring, XsdSockmsg, PAYLOAD_MAX};
use ebbhv_core::addr::DomId;
use ebbhv_core::testing::FakeRing;
use ebbhv_core::xenstore::{DomainKeys, Limits, RingPage, Xenstore};
use libfuzzer_sys::fuzz_target;

const GUEST: DomId = DomId(1);
const INDICES: [usize; 5] = [ring::REQ_CONS, ring::REQ_PROD, ring::RSP_CONS, ring::RSP_PROD, ring::ERROR];

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_nodes: 64,
        max_watches: 8,
        max_output: 4096,
        max_bytes: 32 * 1024,
        ..Limits::default()
    };
    // A request being received and the reply queued past the output limit, each with
    // room for a Vec's growth.
    let in_flight = 4 * (PAYLOAD_MAX + XsdSockmsg::SIZE);
    let mut store = Xenstore::new(limits);
    let keys = DomainKeys { name: "fuzz", target_kib: 1024, static_max_kib: 2048 };
    store.introduce_domain(GUEST, &keys).unwrap();
    let mut page = FakeRing::default();
    let mut rest = data;
    while let Some((&op, tail)) = rest.split_first() {
        rest = tail;
        match op % 4 {
            0 => {
                let n = usize::from(rest.first().copied().unwrap_or(0)).min(rest.len().saturating_sub(1));
                let bytes = rest.get(1..1 + n).unwrap_or(&[]);
                page.push_request_bytes(bytes);
                rest = rest.get(1 + n..).unwrap_or(&[]);
            }
            1 => {
                let Some(word) = rest.get(..5) else { break };
                let field = INDICES[usize::from(word[0]) % INDICES.len()];
                page.write(field, &word[1..5]);
                rest = &rest[5..];
            }
            2 => {
                page.pop_reply_bytes();
            }
            _ => {
                let key = ["memory/target", "control/shutdown", "data/a", "device/x"][usize::from(op >> 2) % 4];
                store.control_write(GUEST, key, &[op]).unwrap();
            }
        }
        store.serve(GUEST, &mut page).unwrap();
        store.tree().check().unwrap();
        assert!(store.tree().owned_by(GUEST) as usize <= limits.max_nodes);
        let held = store.domain_bytes(GUEST);
        assert!(held <= limits.max_bytes + limits.max_output + in_flight, "{held} bytes held");
    }
});
