//! Property tests of the xenstore ring handler: whatever bytes and indices a guest
//! puts in its ring page, the store neither panics nor breaks its tree's
//! invariants, keeps its output bounded, and still answers a well-formed request
//! afterwards.

use ebbhv_core::abi::xenstore::{msg, ring};
use ebbhv_core::addr::DomId;
use ebbhv_core::testing::{xs_message, xs_messages, FakeRing};
use ebbhv_core::xenstore::{DomainKeys, Limits, RingPage, Xenstore};
use proptest::prelude::*;

const GUEST: DomId = DomId(1);

fn store() -> Xenstore {
    let mut s = Xenstore::new(Limits::default());
    let keys = DomainKeys {
        name: "fuzz",
        target_kib: 1024,
        static_max_kib: 2048,
    };
    s.introduce_domain(GUEST, &keys).unwrap();
    s
}

/// One thing a hostile guest does to its ring page.
#[derive(Clone, Debug)]
enum Step {
    /// Produce raw bytes.
    Bytes(Vec<u8>),
    /// Produce a message with a plausible header and arbitrary payload.
    Message(u32, u32, Vec<u8>),
    /// Produce a request built from path-like words.
    Words(u32, u32, Vec<String>),
    /// Scribble over a ring index or the trailer.
    Poke(usize, u32),
    /// Consume the replies.
    Drain,
}

fn step() -> impl Strategy<Value = Step> {
    let word = prop::sample::select(vec![
        "memory/target",
        "data/ebb-state",
        "control/shutdown",
        "data",
        "data/a",
        "data/a/b",
        "device",
        "/local/domain/1",
        "/",
        "@releaseDomain",
        "T",
        "F",
        "n1",
        "b0",
        "r1",
        "",
        "1",
        "x//y",
    ])
    .prop_map(String::from);
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..300).prop_map(Step::Bytes),
        (0u32..24, 0u32..4, prop::collection::vec(any::<u8>(), 0..64))
            .prop_map(|(t, x, p)| Step::Message(t, x, p)),
        (0u32..24, 0u32..4, prop::collection::vec(word, 0..4))
            .prop_map(|(t, x, w)| Step::Words(t, x, w)),
        (
            prop::sample::select(vec![
                ring::REQ_CONS,
                ring::REQ_PROD,
                ring::RSP_CONS,
                ring::RSP_PROD,
                ring::ERROR
            ]),
            any::<u32>()
        )
            .prop_map(|(o, v)| Step::Poke(o, v)),
        Just(Step::Drain),
        Just(Step::Drain),
    ]
}

fn apply(s: &mut Xenstore, r: &mut FakeRing, st: &Step) {
    match st {
        Step::Bytes(b) => {
            r.push_request_bytes(b);
        }
        Step::Message(t, x, p) => {
            r.push_request_bytes(&xs_message(*t, 1, *x, p));
        }
        Step::Words(t, x, w) => {
            let mut p = Vec::new();
            for word in w {
                p.extend_from_slice(word.as_bytes());
                p.push(0);
            }
            r.push_request_bytes(&xs_message(*t, 1, *x, &p));
        }
        Step::Poke(o, v) => r.write(*o, &v.to_le_bytes()),
        Step::Drain => {
            r.pop_reply_bytes();
        }
    }
    s.serve(GUEST, r).expect("the guest is connected");
    s.tree().check().expect("tree invariants");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn hostile_rings_never_break_the_store(steps in prop::collection::vec(step(), 1..60)) {
        let mut s = store();
        let mut r = FakeRing::default();
        for st in &steps {
            apply(&mut s, &mut r, st);
            prop_assert!(s.tree().owned_by(GUEST) as usize <= Limits::default().max_nodes);
        }
        // The stream may be left mid-message; 0xff bytes complete whatever is
        // pending and then frame a header whose length is over the limit, which
        // resets the ring: a well-formed request afterwards is answered.
        let mut fresh = FakeRing::default();
        s.serve(GUEST, &mut fresh).unwrap();
        fresh.pop_reply_bytes();
        let resets = s.stats().ring_resets;
        let mut filler = 0;
        while s.stats().ring_resets == resets && filler < 8000 {
            filler += fresh.push_request_bytes(&[0xff; 512]);
            s.serve(GUEST, &mut fresh).unwrap();
            fresh.pop_reply_bytes();
        }
        prop_assert!(s.stats().ring_resets > resets);
        let stats_before = s.stats().requests;
        let mut got = Vec::new();
        fresh.push_request_bytes(&xs_message(msg::READ, 77, 0, b"domid\0"));
        s.serve(GUEST, &mut fresh).unwrap();
        got.extend(fresh.pop_reply_bytes());
        prop_assert!(s.stats().requests > stats_before);
        let msgs = xs_messages(&got);
        prop_assert!(msgs.iter().any(|(h, p)| h.req_id == 77 && h.ty == msg::READ && p == b"1"));
    }

    #[test]
    fn random_bytes_only(bytes in prop::collection::vec(any::<u8>(), 0..5000)) {
        let mut s = store();
        let mut r = FakeRing::default();
        let mut sent = 0;
        let mut rounds = 0;
        while sent < bytes.len() && rounds < 100 {
            sent += r.push_request_bytes(&bytes[sent..]);
            s.serve(GUEST, &mut r).unwrap();
            r.pop_reply_bytes();
            rounds += 1;
        }
        s.tree().check().unwrap();
    }
}
