#!/bin/bash
# Boots QEMU (TCG) → ebbhv → a Linux PVH guest, or ebbhv's built-in self-test guest.
#
#   scripts/run-hv.sh [options]
#     --hv PATH          ebbhv image (default build/hv/ebbhv.elf)
#     --kernel PATH      guest vmlinux with a PVH note (default build/guest/vmlinux)
#     --initramfs PATH   guest initramfs (default build/guest/initramfs.cpio.gz if present)
#     --no-initramfs     boot the guest without an initramfs
#     --cmdline STR      guest kernel command line
#     --memory MIB       guest memory at boot (default 256)
#     --maxmem MIB       guest maximum memory (default: --memory)
#     --host-mem MIB     QEMU machine memory (default 1024; at most 2048)
#     --timeout SEC      kill QEMU after SEC seconds (default 60)
#     --selftest         run ebbhv's stub guest instead of Linux
#     --control-socket PATH  Unix socket for ebbhv's control channel (COM2), served
#                        by QEMU, for ebbctl (default build/hv/ctl.sock)
#     -- ARGS            extra QEMU arguments
#
# Payloads reach ebbhv as one cpio (newc) bundle passed with -initrd, which QEMU's
# PVH loader hands over as module 0: members `vmlinux`, `initramfs` (optional) and
# `cmdline`. ebbhv's own options (memory=, maxmem=) go in -append.
#
# Output: COM1 on stdout. Lines from ebbhv start with "[hv]", the guest's console
# (console_io) with "[guest]", the guest's port-0xE9 early console with "[e9]".
# Control: COM2 is the control channel, a Unix socket QEMU listens on (an old one
# at the path is removed first); `ebbctl --socket PATH info` (or EBBCTL_SOCKET=PATH)
# talks to ebbhv through it while the guest runs.
# Exit status: 0 when ebbhv ends the run normally (guest poweroff), 1 hypervisor
# fault, 2 guest crash or a domain ebbhv crashed for a guest fault (both with
# ebbhv's report above; a crashed domain first waits up to 30 s for a destroy
# from the control channel, which the host agent of run-guest.sh sends), 3 guest
# reboot, 124 timeout, anything else from QEMU.
set -euo pipefail
EBB_LOG_TAG=run-hv
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

hv=$EBB_BUILD/hv/ebbhv.elf
kernel=$EBB_BUILD/guest/vmlinux
initramfs=$EBB_BUILD/guest/initramfs.cpio.gz
use_initramfs=auto
cmdline="console=hvc0 earlyprintk=xen xen_console_io=1 loglevel=8 log_buf_len=2M"
memory=256
maxmem=
host_mem=1024
timeout_s=60
selftest=0
control_socket=$EBB_BUILD/hv/ctl.sock
extra=()

while [ $# -gt 0 ]; do
    case $1 in
        --hv) hv=$2; shift 2 ;;
        --kernel) kernel=$2; shift 2 ;;
        --initramfs) initramfs=$2; use_initramfs=yes; shift 2 ;;
        --no-initramfs) use_initramfs=no; shift ;;
        --cmdline) cmdline=$2; shift 2 ;;
        --memory) memory=$2; shift 2 ;;
        --maxmem) maxmem=$2; shift 2 ;;
        --host-mem) host_mem=$2; shift 2 ;;
        --timeout) timeout_s=$2; shift 2 ;;
        --selftest) selftest=1; shift ;;
        --control-socket) control_socket=$2; shift 2 ;;
        --) shift; extra=("$@"); break ;;
        -h|--help) sed -n '2,30p' "$0"; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
done
maxmem=${maxmem:-$memory}
[ -f "$hv" ] || die "no ebbhv image at $hv (run scripts/build-hv.sh)"
command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 is not installed"
mkdir -p "$(dirname "$control_socket")"
rm -f "$control_socket"

qemu=(qemu-system-x86_64 -M q35 -accel tcg -cpu max -m "$host_mem" -smp 1
      -nographic -no-reboot -net none -serial stdio -monitor none
      -chardev "socket,id=ctl,path=$control_socket,server=on,wait=off" -serial chardev:ctl
      -device isa-debug-exit,iobase=0xf4,iosize=4
      -kernel "$hv" -append "memory=$memory maxmem=$maxmem")

if [ "$selftest" = 0 ]; then
    [ -f "$kernel" ] || die "no guest kernel at $kernel"
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    cp -L "$kernel" "$tmp/vmlinux"
    if [ "$use_initramfs" = yes ] || { [ "$use_initramfs" = auto ] && [ -f "$initramfs" ]; }; then
        cp -L "$initramfs" "$tmp/initramfs"
    fi
    printf '%s' "$cmdline" > "$tmp/cmdline"
    (cd "$tmp" && ls | grep -v '^bundle' | cpio --quiet -o -H newc > bundle.cpio)
    qemu+=(-initrd "$tmp/bundle.cpio")
fi

status=0
timeout --foreground "$timeout_s" "${qemu[@]}" "${extra[@]}" || status=$?
case $status in
    33) exit 0 ;;
    35) log "ebbhv stopped on a hypervisor fault"; exit 1 ;;
    37) log "ebbhv stopped the guest (crash or fatal guest state)"; exit 2 ;;
    39) log "the guest asked to reboot"; exit 3 ;;
    124) log "timed out after ${timeout_s}s"; exit 124 ;;
    *) log "qemu exited with status $status"; exit "$status" ;;
esac
