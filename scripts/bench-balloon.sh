#!/usr/bin/env bash
# Balloon benchmark (issues 6 and 7): ebb.ko against Linux's C xen-balloon driver, each
# in its own guest kernel (flavours guest and c-balloon, the same but for the balloon
# driver) under the same ebbhv with the same memory sizes, one QEMU session each, one
# after the other. The guest side (tests/bench/balloon-bench.sh) balloons 512 MiB out
# and in, grows 512 MiB past the boot size by hotplug and shrinks back, and holds a
# target the hypervisor refuses; see there for what each phase measures.
# Prints the table of ebb / C ratios and writes results/bench-balloon.json and
# results/bench-balloon.svg (memory over time); the console logs stay in
# results/<time>-bench-balloon/. Exits non-zero when a phase or a run fails.
#
#   scripts/bench-balloon.sh        (make bench runs it after bench-core.sh)
# Environment: EBB_MEM_MIB (1024) and EBB_MAXMEM_MIB (boot + 640: room for 512 MiB of
# growth, and for the C driver's memory, which counts the boot RAM's holes
# differently), EBB_BENCH_HOLD_S (30).
set -euo pipefail
EBB_LOG_TAG=bench-balloon
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

export EBB_MEM_MIB=${EBB_MEM_MIB:-1024}
export EBB_MAXMEM_MIB=${EBB_MAXMEM_MIB:-$((EBB_MEM_MIB + 640))}
export EBB_BENCH_HOLD_S=${EBB_BENCH_HOLD_S:-30}
export EBB_PLATFORM=ebbhv
start=$SECONDS

for f in "$EBB_BUILD/guest/initramfs.cpio.gz" "$EBB_BUILD/hv/ebbhv.elf" \
    "$EBB_ROOT/hypervisor/target/release/ebbctl"; do
    [ -e "$f" ] || die "missing $f (make initramfs hv ebbctl)"
done
"$EBB_ROOT/scripts/build-kernel.sh" c-balloon
"$EBB_ROOT/scripts/build-initramfs.sh" c-balloon

run=$EBB_ROOT/results/$(date +%Y%m%d-%H%M%S)-bench-balloon
mkdir -p "$run"

# One guest run, with the guest's progress and phase times echoed as they come.
bench_run() {
    local flavour=$1 driver=$2 dir=$run/$2 pid status=0
    mkdir -p "$dir"
    log "$driver driver ($flavour kernel, ${EBB_MEM_MIB} MiB, max ${EBB_MAXMEM_MIB} MiB): log $dir/console.log"
    EBB_FLAVOUR=$flavour EBB_RESULTS=$dir "$EBB_ROOT/scripts/run-guest.sh" bench >"$dir/run.log" 2>&1 &
    pid=$!
    tail -n +1 -F --pid="$pid" "$dir/console.log" 2>/dev/null \
        | sed -nu -e "s/^\[guest\] EBB-BENCH-PROGRESS /[$EBB_LOG_TAG]   /p" \
            -e "s/^\[guest\] EBB-BENCH phase=\([a-z]*\) driver=[a-z]* wall_ms=\([0-9]*\) .*/[$EBB_LOG_TAG]     \1: \2 ms/p" \
            -e "s/^\[guest\] EBB-BENCH-FAIL /[$EBB_LOG_TAG]   failed: /p" || true
    wait "$pid" || status=$?
    [ "$status" = 0 ] || die "the $driver run ended with status $status (see $dir/run.log and $dir/console.log)"
}

bench_run guest ebb
bench_run c-balloon c

python3 "$EBB_ROOT/scripts/bench-balloon-report.py" \
    --ebb "$run/ebb/console.log" --c "$run/c/console.log" \
    --json "$EBB_ROOT/results/bench-balloon.json" --svg "$EBB_ROOT/results/bench-balloon.svg" \
    --meta "date=$(date -u +%Y-%m-%dT%H:%M:%SZ)" --meta "mem_mib=$EBB_MEM_MIB" \
    --meta "maxmem_mib=$EBB_MAXMEM_MIB" --meta "hold_s=$EBB_BENCH_HOLD_S" --meta "logs=$run" \
    || die "no comparison (see above)"
log "results/bench-balloon.json, results/bench-balloon.svg ($((SECONDS - start)) s)"
