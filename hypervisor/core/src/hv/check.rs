//! The invariants of the whole memory state, checked from scratch.
//!
//! O(frames + mappings): the property tests and the fuzzer run it after every step.
//! It states what the rest of the crate promises:
//! - the heap's free lists hold exactly the free frames (see `FrameHeap::check`);
//! - each domain's `tot_pages` equals the frames the heap says it owns;
//! - every p2m leaf agrees with the heap: RAM leaves map frames the domain owns,
//!   recorded at that very guest frame; shared leaves map hypervisor frames lent to
//!   the domain, likewise recorded — hence no frame is mapped twice;
//! - every frame the heap records as mapped is mapped there;
//! - every owner or borrower named by the heap is a live domain;
//! - each p2m's table count (what its domain is charged) matches its tree.

use alloc::collections::BTreeMap;

use super::Hypervisor;
use crate::addr::{DomId, Gfn, GfnRange};
use crate::heap::FrameState;

impl Hypervisor {
    /// Checks every invariant; the error names the first one broken.
    pub fn check_invariants(&self) -> Result<(), &'static str> {
        self.heap.check()?;
        let mut owned: BTreeMap<DomId, u64> = BTreeMap::new();
        for (mfn, state) in self.heap.frames() {
            let (holder, gfn) = match state {
                FrameState::Domain { owner, gfn }
                | FrameState::OfflinePending { owner, gfn, .. } => {
                    *owned.entry(owner).or_default() += 1;
                    (owner, gfn)
                }
                FrameState::Hypervisor {
                    lent_to: Some(borrower),
                    gfn,
                } => (borrower, gfn),
                _ => continue,
            };
            let dom = self
                .domains
                .get(&holder)
                .ok_or("a frame belongs to a domain that does not exist")?;
            if let Some(gfn) = gfn {
                if dom.p2m.entry(gfn).map(|e| e.mfn) != Some(mfn) {
                    return Err("a frame's recorded gfn does not map it");
                }
            }
        }
        for dom in self.domains.values() {
            if owned.get(&dom.id).copied().unwrap_or(0) != dom.tot_pages {
                return Err("tot_pages differs from the frames the domain owns");
            }
            if dom.p2m.tables() != dom.p2m.count_tables() {
                return Err("the p2m's table count differs from its tree");
            }
            let mut mapped = 0u64;
            let mut verdict = Ok(());
            let all = GfnRange::new(Gfn(0), dom.p2m.limit());
            dom.p2m.for_each_mapping(all, &mut |m| {
                mapped += m.size.frames();
                for i in 0..m.size.frames() {
                    let state = self.heap.state(m.mfn.plus(i));
                    let gfn = Some(m.gfn.plus(i));
                    let agrees = match state {
                        Some(FrameState::Domain { owner, gfn: at })
                        | Some(FrameState::OfflinePending { owner, gfn: at, .. }) => {
                            m.kind.is_ram() && owner == dom.id && at == gfn
                        }
                        Some(FrameState::Hypervisor {
                            lent_to: Some(borrower),
                            gfn: at,
                        }) => !m.kind.is_ram() && borrower == dom.id && at == gfn,
                        _ => false,
                    };
                    if !agrees && verdict.is_ok() {
                        verdict = Err("a p2m entry maps a frame the heap does not give it");
                    }
                }
            });
            verdict?;
            if mapped != dom.p2m.mapped_frames() {
                return Err("the p2m's mapped count differs from its leaves");
            }
            let lent = core::iter::once(dom.shared_info)
                .chain(dom.grant_frames.iter().copied())
                .chain(dom.special_pages.iter().copied());
            for mfn in lent {
                match self.heap.state(mfn) {
                    Some(FrameState::Hypervisor {
                        lent_to: Some(borrower),
                        ..
                    }) if borrower == dom.id => {}
                    _ => return Err("a domain's shared frame is not lent to it"),
                }
            }
        }
        Ok(())
    }
}
