//! What the core needs the platform to do to frame contents.
//!
//! The core decides which frames to scrub or copy but cannot touch memory (it has no
//! `unsafe` and no mapping of machine memory). The platform implements [`FrameOps`]
//! over its direct map; host tests use [`crate::testing::FakeFrames`].

use crate::addr::Mfn;

/// Operations on the contents of whole machine frames.
pub trait FrameOps {
    /// Fills the frame with zeroes (scrubbing before the frame changes hands).
    fn zero(&mut self, frame: Mfn);

    /// Copies the 4 KiB contents of `from` into `to` (replacing a guest frame that is
    /// being offlined). The platform calls this with the owning domain paused.
    fn copy(&mut self, from: Mfn, to: Mfn);
}
