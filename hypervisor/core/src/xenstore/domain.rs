//! The keys a toolstack writes when it creates a domain, laid out as libxl does.
//!
//! `/local/domain/<id>` is owned by domain 0 and readable by the guest. The guest
//! owns `device`, `control`, `data`, `drivers`, `feature`, `attr` and `error` (so it
//! can create keys there: its balloon driver's status goes to `data/ebb-state`,
//! `control/feature-balloon` says it balloons) and `control/shutdown` and
//! `control/sysrq`. `name`, `domid`, the
//! `control/platform-feature-*` flags and `memory` with `target` and `static-max`
//! (KiB) belong to domain 0: the guest reads them and a write gets `EACCES`.

use alloc::format;

use super::path::Path;
use super::tree::{Access, Perms, Tree, Who};
use super::Limits;
use crate::abi::xenstore::XsError;
use crate::addr::DomId;

/// What the control plane knows about a new domain.
#[derive(Clone, Copy, Debug)]
pub struct DomainKeys<'a> {
    /// `name`.
    pub name: &'a str,
    /// `memory/target`, KiB.
    pub target_kib: u64,
    /// `memory/static-max`, KiB.
    pub static_max_kib: u64,
}

/// Directories the guest owns.
const GUEST_DIRS: [&str; 7] = [
    "device", "control", "data", "drivers", "feature", "attr", "error",
];

/// Writes the keys under `home`.
pub(super) fn write_keys(
    tree: &mut Tree,
    home: &Path,
    dom: DomId,
    keys: &DomainKeys<'_>,
    limits: &Limits,
) -> Result<(), XsError> {
    let read_only = Perms::owned(DomId(0), Access::None).grant(dom, Access::Read);
    let guest = Perms::owned(dom, Access::None);
    let domid = format!("{}", dom.0);
    let target = format!("{}", keys.target_kib);
    let static_max = format!("{}", keys.static_max_kib);
    let ro_keys: [(&str, &[u8]); 8] = [
        ("", b""),
        ("name", keys.name.as_bytes()),
        ("domid", domid.as_bytes()),
        ("memory", b""),
        ("memory/target", target.as_bytes()),
        ("memory/static-max", static_max.as_bytes()),
        ("control/platform-feature-xs_reset_watches", b"1"),
        ("control/platform-feature-multiprocessor-suspend", b"1"),
    ];
    let guest_keys = GUEST_DIRS
        .iter()
        .map(|d| (*d, &b""[..]))
        .chain([("control/shutdown", &b""[..]), ("control/sysrq", b"")]);
    let all = ro_keys
        .iter()
        .map(|&(k, v)| (k, v, &read_only))
        .chain(guest_keys.map(|(k, v)| (k, v, &guest)));
    for (key, value, perms) in all {
        let path = if key.is_empty() {
            home.clone()
        } else {
            Path::parse(key.as_bytes(), home)?.0
        };
        tree.write(Who::Control, &path, value, limits, usize::MAX)?;
        tree.set_perms(Who::Control, &path, perms.clone(), limits)?;
    }
    Ok(())
}
