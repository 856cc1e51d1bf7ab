#!/usr/bin/env bash
# Fuzzes ebbhv-core's hypercall dispatcher for a while: raw bytes become the caller's
# memory and a script of hypercalls, which must never panic, never be fatal and never
# break an invariant.
#
#   scripts/fuzz-core.sh [seconds] [target]    (default 30 s, target dispatch)
#
# Targets: dispatch (the hypercall dispatcher) and xenstore (the xenstore ring
# handler fed a hostile guest's ring page and control-plane writes).
#
# Installs cargo-fuzz into the project's tools directory if it is missing. cargo-fuzz
# needs nightly flags (sanitizers); RUSTC_BOOTSTRAP=1 lets the stable toolchain accept
# them. Crashes are kept under hypervisor/fuzz/artifacts/<target>/.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
EBB_LOG_TAG=fuzz-core

seconds=${1:-30}
target=${2:-dispatch}
export PATH="$EBB_TOOLS/bin:$PATH"
if ! command -v cargo-fuzz >/dev/null 2>&1; then
    log "installing cargo-fuzz into $EBB_TOOLS"
    cargo install --locked --root "$EBB_TOOLS" cargo-fuzz
fi

cd "$EBB_ROOT/hypervisor/fuzz"
mkdir -p "corpus/$target"
log "fuzzing $target for $seconds s"
RUSTC_BOOTSTRAP=1 cargo fuzz run "$target" "corpus/$target" -- \
    -max_total_time="$seconds" -max_len=8192 -print_final_stats=1
log "no crash in $seconds s"
