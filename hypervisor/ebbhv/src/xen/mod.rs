//! The image's side of the Xen platform state: the core's
//! [`ebbhv_core::platform::xen::XenPlatform`] keeps the HVM parameters, event
//! channels, vcpu_info place and one-shot timer and serves their hypercalls; this
//! module gives it the hal's clocks ([`time`]), arms the host timer for the idle
//! guest ([`timer`]) and logs to COM1 ([`HalLog`]). Frame contents come from
//! [`crate::guest_memory::HostFrames`].

pub mod time;
pub mod timer;

use ebbhv_core::platform::Log;
use ebbhv_hal::log;

/// The guest's Xen platform state, over the TSC clocks.
pub type XenPlatform = ebbhv_core::platform::xen::XenPlatform<time::Clocks>;

/// The core's log lines, on COM1 with the `[hv]` prefix.
pub struct HalLog;

impl Log for HalLog {
    fn log(&mut self, line: core::fmt::Arguments<'_>) {
        log!("{line}");
    }
}
