#!/bin/bash
# Builds ebbhv, the bare-metal hypervisor image, and prints where it is.
#
#   scripts/build-hv.sh [--debug]
#
# ebbhv is built for x86_64-unknown-none with Debian's rustc (rustc-web, which ships
# rust-src for build-std) and linked by Debian's lld-19 with
# hypervisor/ebbhv/link.ld; the flags live in hypervisor/ebbhv/.cargo/config.toml,
# which cargo reads because it runs from that directory. The image is copied to
# build/hv/ebbhv.elf.
set -euo pipefail
EBB_LOG_TAG=build-hv
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

profile=release
[ "${1:-}" = --debug ] && profile=debug

out=$EBB_BUILD/hv
mkdir -p "$out"
flags=()
[ "$profile" = release ] && flags+=(--release)
(
    cd "$EBB_ROOT/hypervisor/ebbhv"
    RUSTC_BOOTSTRAP=1 RUSTC=/usr/bin/rustc /usr/bin/cargo build -p ebbhv "${flags[@]}"
)
cp "$EBB_ROOT/hypervisor/target/x86_64-unknown-none/$profile/ebbhv" "$out/ebbhv.elf"
log "ebbhv image: $out/ebbhv.elf"
echo "$out/ebbhv.elf"
