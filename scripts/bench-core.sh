#!/usr/bin/env bash
# Benchmarks ebbhv-core (heap alloc/free, page offline in a fragmented 64 GiB heap vs
# Xen's free-list scan, populate/decrease of 1 GiB in 4 KiB vs 2 MiB extents, metadata
# per frame). Prints the figures and writes results/bench-core.json.
#
#   scripts/bench-core.sh
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
EBB_LOG_TAG=bench-core

export EBB_BENCH_JSON=${EBB_BENCH_JSON:-$EBB_ROOT/results/bench-core.json}
cargo bench --manifest-path "$EBB_ROOT/hypervisor/Cargo.toml" -p ebbhv-core --bench core
