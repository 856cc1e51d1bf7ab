#!/usr/bin/env bash
# Balloon benchmark (issues 6, 7 and 12): ebb.ko against Linux's C xen-balloon driver,
# each in its own guest kernel (flavours guest and c-balloon, the same but for the
# balloon driver), first under ebbhv, then in a PVH domU of a real Xen 4.17 (the C
# driver's native habitat; scripts/setup-xen.sh), with the same memory sizes, one
# QEMU session each, one after the other. The guest side
# (tests/bench/balloon-bench.sh) balloons 512 MiB out and in, grows 512 MiB past the
# boot size by hotplug and shrinks back (each EBB_BENCH_ROUNDS times), and holds a
# target the hypervisor refuses; see there for what each phase measures. On Xen,
# dom0 counts the domain's hypercalls from Xen's trace buffers (xentrace).
# Prints a table of ebb / C ratios per hypervisor and writes results/bench-balloon.json
# and results/bench-balloon.svg (memory over time under ebbhv); the console logs stay
# in results/<time>-bench-balloon/. Exits non-zero when a phase or a run fails.
#
#   scripts/bench-balloon.sh        (make bench runs it after bench-core.sh)
# Environment: EBB_MEM_MIB (1024) and EBB_MAXMEM_MIB (boot + 640: room for 512 MiB of
# growth, and for the C driver's memory, which counts the boot RAM's holes
# differently; the Xen domU boots with maxmem = memory, not populate-on-demand, and
# the benchmark raises its maximum with mem-max), EBB_BENCH_HOLD_S (30),
# EBB_BENCH_ROUNDS (3), EBB_BENCH_XEN (1; 0 leaves the real-Xen runs out).
set -euo pipefail
EBB_LOG_TAG=bench-balloon
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

export EBB_MEM_MIB=${EBB_MEM_MIB:-1024}
export EBB_MAXMEM_MIB=${EBB_MAXMEM_MIB:-$((EBB_MEM_MIB + 640))}
export EBB_BENCH_HOLD_S=${EBB_BENCH_HOLD_S:-30}
export EBB_BENCH_ROUNDS=${EBB_BENCH_ROUNDS:-3}
bench_xen=${EBB_BENCH_XEN:-1}
start=$SECONDS

for f in "$EBB_BUILD/guest/initramfs.cpio.gz" "$EBB_BUILD/hv/ebbhv.elf" \
    "$EBB_ROOT/hypervisor/target/release/ebbctl"; do
    [ -e "$f" ] || die "missing $f (make initramfs hv ebbctl)"
done
"$EBB_ROOT/scripts/build-kernel.sh" c-balloon
"$EBB_ROOT/scripts/build-initramfs.sh" c-balloon

run=$EBB_ROOT/results/$(date +%Y%m%d-%H%M%S)-bench-balloon
mkdir -p "$run"

# One guest run on platform $3 (ebbhv or xen-pvh), with the guest's progress and phase
# times echoed as they come; logs in $run/$4.
bench_run() {
    local flavour=$1 driver=$2 platform=$3 dir=$run/$4 pid status=0 maxmem=$EBB_MAXMEM_MIB
    [ "$platform" = ebbhv ] || maxmem=$EBB_MEM_MIB
    mkdir -p "$dir"
    log "$driver driver on $platform ($flavour kernel, ${EBB_MEM_MIB} MiB, max $maxmem MiB): log $dir/console.log"
    EBB_PLATFORM=$platform EBB_MAXMEM_MIB=$maxmem EBB_FLAVOUR=$flavour EBB_RESULTS=$dir \
        "$EBB_ROOT/scripts/run-guest.sh" bench >"$dir/run.log" 2>&1 &
    pid=$!
    tail -n +1 -F --pid="$pid" "$dir/console.log" 2>/dev/null \
        | sed -nu -e "s/^\[guest\] EBB-BENCH-PROGRESS /[$EBB_LOG_TAG]   /p" \
            -e "s/^\[guest\] EBB-BENCH phase=\([a-z]*\) driver=[a-z]* wall_ms=\([0-9]*\) .*/[$EBB_LOG_TAG]     \1: \2 ms/p" \
            -e "s/^\[guest\] EBB-BENCH-FAIL /[$EBB_LOG_TAG]   failed: /p" || true
    wait "$pid" || status=$?
    [ "$status" = 0 ] || die "the $driver run on $platform ended with status $status (see $dir/run.log and $dir/console.log)"
}

bench_run guest ebb ebbhv ebb
bench_run c-balloon c ebbhv c
xen_logs=()
if [ "$bench_xen" = 1 ]; then
    "$EBB_ROOT/scripts/setup-xen.sh" || die "the real-Xen test bed did not set up (EBB_BENCH_XEN=0 leaves it out)"
    bench_run guest ebb xen-pvh xen-ebb
    bench_run c-balloon c xen-pvh xen-c
    xen_logs=(--xen-ebb "$run/xen-ebb/console.log" --xen-c "$run/xen-c/console.log")
fi

python3 "$EBB_ROOT/scripts/bench-balloon-report.py" \
    --ebb "$run/ebb/console.log" --c "$run/c/console.log" "${xen_logs[@]}" \
    --json "$EBB_ROOT/results/bench-balloon.json" --svg "$EBB_ROOT/results/bench-balloon.svg" \
    --meta "date=$(date -u +%Y-%m-%dT%H:%M:%SZ)" --meta "mem_mib=$EBB_MEM_MIB" \
    --meta "maxmem_mib=$EBB_MAXMEM_MIB" --meta "hold_s=$EBB_BENCH_HOLD_S" --meta "rounds=$EBB_BENCH_ROUNDS" --meta "logs=$run" \
    || die "no comparison (see above)"
log "results/bench-balloon.json, results/bench-balloon.svg ($((SECONDS - start)) s)"
