#!/usr/bin/env bash
# Checks that a kernel build tree can build and run ebb.ko before `make module
# KDIR=...` tries: one line per missing option, and why ebb needs it.
#
# Usage: check-kdir.sh KDIR
set -uo pipefail
EBB_LOG_TAG=module
source "$(dirname "$0")/lib.sh"

kdir=${1:?usage: check-kdir.sh KDIR}
config=$kdir/include/config/auto.conf
[ -f "$config" ] || die "$kdir is not a configured kernel build tree (no include/config/auto.conf): run 'make modules_prepare' there first"
[ -f "$kdir/Module.symvers" ] || log "warning: $kdir has no Module.symvers: modpost cannot check ebb.ko's symbols against that kernel"

missing=0
need() {
    local option=$1 why=$2
    if ! grep -q "^$option=y" "$config"; then
        printf '[module] %s is not set: %s\n' "$option" "$why" >&2
        missing=1
    fi
}
need CONFIG_RUST "ebb.ko is a Rust module"
need CONFIG_XEN "ebb.ko balloons a Xen guest"
need CONFIG_MEMORY_HOTPLUG "ebb grows the guest past its boot size by adding memory blocks"
need CONFIG_MEMORY_HOTREMOVE "ebb shrinks the guest again by removing the blocks it added"
need CONFIG_XEN_XENBUS_FRONTEND "targets come from xenstore"
if grep -q '^CONFIG_XEN_BALLOON=y' "$config"; then
    printf '[module] CONFIG_XEN_BALLOON=y: the kernel has the C balloon driver built in; it owns the xen_memory sysfs device and the online-page callback that ebb needs, and ebb.ko refuses to load beside it. Build the kernel with CONFIG_XEN_BALLOON off.\n' >&2
    missing=1
fi
[ "$missing" = 0 ] || die "$kdir cannot build a working ebb.ko (see above)"
[ -f "$kdir/rust/libkernel.rmeta" ] || [ -f "$kdir/rust/kernel.o" ] ||
    die "$kdir has CONFIG_RUST=y but no built Rust support (rust/libkernel.rmeta): build the kernel there first"
log "$kdir: configuration suits ebb.ko"
