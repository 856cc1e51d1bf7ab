#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Guest side of the balloon benchmark (scripts/bench-balloon.sh; /init runs it with
# ebb.mode=bench). Drives whichever balloon driver this kernel has, ebb.ko (loaded
# here) or the built-in C xen-balloon, through the sysfs file both share
# (target_kb), so that both get their targets the same way, and measures each phase:
#
#   out       balloon out 512 MiB below the boot size
#   in        balloon back in to the boot size
#   grow      grow 512 MiB past the boot size (hot-add, online, populate)
#   shrink    back to the boot size (ebb hot-removes; the C driver only balloons)
#             (out and in, then grow and shrink, ebb.bench_rounds= times each: 3)
#   prep      balloon out 256 MiB, to have something to ask back in the next two
#   idle      nothing to do for ebb.bench_hold= seconds (30): the baseline
#   stuck     a target the hypervisor refuses (mem-max at the domain's size) held
#             as long; mem-max goes back afterwards
#   null      two measurements with nothing between: their own cost (done 3 times)
#
# Each phase reports wall time (target written until current_kb equals it for the
# C driver, or is within 2 MiB of it and ebb.ko says `reached`), the hypervisor's
# hypercall and VM exit counters (ebbctl info through the host agent, before and
# after; on a real Xen dom0 counts the domain's hypercalls by number from Xen's trace
# buffers and there are no exit counts), and the guest's busy CPU time from
# /proc/stat. A sampler records
# current_kb and MemTotal every 100 ms. The results are console lines:
#   EBB-BENCH-INFO key=value ...          the driver and the guest's sizes
#   EBB-BENCH phase=NAME key=value ...    one per phase
#   EBB-BENCH-MARK t_ms=T phase=NAME      when a phase started (for the plot)
#   EBB-BENCH-SAMPLE t_ms=T current_kb=K memtotal_kb=M
#   EBB-BENCH-FAIL reason                 and exit status 1 when a phase fails
# The phases write nothing to the console while they run: every console line costs
# hypercalls.
set -euo pipefail

cd /kselftest/ebb
. ./lib.sh

MIB=1024
DELTA_KB=$((512 * MIB))
PHASE_TIMEOUT_S=600
HOLD_S=30
ROUNDS=3
read -ra cmdline </proc/cmdline
for arg in "${cmdline[@]}"; do
    case $arg in
    ebb.bench_hold=*) HOLD_S=${arg#*=} ;;
    ebb.bench_rounds=*) ROUNDS=${arg#*=} ;;
    esac
done
SAMPLES=/tmp/bench-samples

fail() {
    echo "EBB-BENCH-FAIL $*"
    exit 1
}

# Sleeping by a read that times out on a FIFO nobody writes costs no fork, so the
# sampler and the polling loops stay cheap next to the driver they measure.
mkfifo /tmp/bench-nap
exec {NAP_FD}<>/tmp/bench-nap
nap() {
    read -rt "$1" -u "$NAP_FD" _ || true
}

now_ms() {
    local us=${EPOCHREALTIME/./}
    NOW_MS=$((us / 1000 - T0_MS))
}

mem_total() {
    local key value rest
    while read -r key value rest; do
        [ "$key" = MemTotal: ] && { MEMTOTAL_KB=$value; return; }
    done </proc/meminfo
}

# Busy time of the (single) CPU in ms: everything but idle and iowait (USER_HZ=100).
cpu_busy() {
    local user nice system irq softirq steal
    read -r _ user nice system _ _ irq softirq steal _ </proc/stat
    CPU_BUSY_MS=$(((user + nice + system + irq + softirq + steal) * 10))
}

online_blocks() {
    local b state n=0
    for b in "$MEM"/memory*; do
        read -r state <"$b/state"
        case $state in online*) n=$((n + 1)) ;; esac
    done
    ONLINE_BLOCKS=$n
}

current() { read -r CURRENT_KB <"$SYS/info/current_kb"; }

# Fills the associative array named $1 from `ebbctl info --raw` on the host.
hv_snap() {
    local -n snap=$1
    local line kv
    host_request info --raw >/dev/null 2>&1 || fail "ebbctl info through the host agent failed"
    line=$(host_output) || fail "no output from ebbctl info"
    snap=()
    for kv in $line; do
        case $kv in *=*) snap[${kv%%=*}]=${kv#*=} ;; esac
    done
    # ebbhv: guest_ms comes last, without it the reply was cut short. Xen: the
    # hypercall counts come from dom0's trace of the domain, which must have lost
    # nothing.
    local want="tot_pages max_pages static_max_kib exits hypercalls guest_ms"
    [ "${snap[platform]:-}" = xen ] && want="tot_pages max_pages static_max_kib hypercalls trace_lost"
    for kv in $want; do
        [ -n "${snap[$kv]:-}" ] || fail "ebbctl info --raw has no $kv (cut short?): $line"
    done
    [ "${snap[trace_lost]:-0}" = 0 ] || fail "Xen's trace lost ${snap[trace_lost]} records: the hypercall counts are incomplete"
}

# Reservation hypercalls: XENMEM_increase_reservation, decrease_reservation and
# populate_physmap (memory_op 0, 1, 6) under ebbhv; every memory_op (hypercall 12)
# on Xen, whose trace gives the hypercall's number only (the drivers make no other
# memory_op while they move memory).
reservation_calls() {
    local -n s=$1
    if [ "${s[platform]:-}" = xen ]; then
        echo "${s[hc_12]:-0}"
    else
        echo $((${s[hc_memory_op_0]:-0} + ${s[hc_memory_op_1]:-0} + ${s[hc_memory_op_6]:-0}))
    fi
}

# H1[key] - H0[key], or - where the hypervisor does not count it.
delta() {
    if [ -n "${H1[$1]:-}" ] && [ -n "${H0[$1]:-}" ]; then
        echo $((H1[$1] - H0[$1]))
    else
        echo -
    fi
}

# True when the driver is at target $1. The C driver moves 4 KiB pages and reaches
# a target exactly (within 2 MiB would stop the clock one batch early); ebb.ko
# reaches it to within one 2 MiB extent and says when it is done, hot-removal
# included.
at_target() {
    current
    [ "$DRIVER" = c ] && { [ "$CURRENT_KB" = "$1" ]; return; }
    within_extent "$CURRENT_KB" "$1" || return 1
    local state
    read -r state <"$SYS/ebb/state"
    [ "$state" = reached ]
}

wait_target() {
    local target=$1 start=$NOW_MS
    while ! at_target "$target"; do
        now_ms
        [ $((NOW_MS - start)) -lt $((PHASE_TIMEOUT_S * 1000)) ] || return 1
        nap 0.02
    done
}

# ebb.ko's own count of the reservation hypercalls it issued (Xen's trace counts
# every entry into Xen, and Xen re-enters a long memory_op as continuations); the C
# driver keeps no such count.
driver_hypercalls() {
    if [ "$DRIVER" = ebb ]; then
        read -r DRIVER_HC <"$SYS/ebb/hypercalls"
    else
        DRIVER_HC=-
    fi
}

declare -A H0 H1
phase_begin() {
    PHASE=$1
    hv_snap H0
    driver_hypercalls
    DRIVER_HC0=$DRIVER_HC
    cpu_busy
    CPU0=$CPU_BUSY_MS
    now_ms
    PHASE_T0=$NOW_MS
    echo "EBB-BENCH-MARK t_ms=$NOW_MS phase=$PHASE" >>/tmp/bench-marks
}

# Prints the phase's line; $@ are extra key=value fields.
phase_end() {
    now_ms
    local wall=$((NOW_MS - PHASE_T0))
    cpu_busy
    local cpu=$((CPU_BUSY_MS - CPU0))
    hv_snap H1
    driver_hypercalls
    [ "$DRIVER_HC" = - ] || DRIVER_HC=$((DRIVER_HC - DRIVER_HC0))
    current
    mem_total
    echo "EBB-BENCH phase=$PHASE driver=$DRIVER wall_ms=$wall cpu_ms=$cpu" \
        "hc_reservation=$(($(reservation_calls H1) - $(reservation_calls H0)))" \
        "hypercalls=$(delta hypercalls)" "exits=$(delta exits)" "guest_ms=$(delta guest_ms)" \
        "driver_hc=$DRIVER_HC" \
        "current_kb=$CURRENT_KB memtotal_kb=$MEMTOTAL_KB tot_kb=$((H1[tot_pages] * 4))" "$@"
}

# Runs phase $1: writes target $2 KiB and waits for the driver to reach it; $3 is
# the round.
move() {
    local from
    current
    from=$CURRENT_KB
    phase_begin "$1"
    echo "$2" >"$SYS/target_kb"
    wait_target "$2" || fail "phase $1: target $2 KiB not reached in $PHASE_TIMEOUT_S s (current_kb $CURRENT_KB$(ebb_why))"
    local moved=$((CURRENT_KB - from))
    phase_end target_kb="$2" moved_kb="${moved#-}" round="${3:-1}"
}

ebb_why() {
    [ "$DRIVER" = ebb ] && echo ", state $(cat $SYS/ebb/state), reason $(cat $SYS/ebb/reason)"
    true
}

hold() {
    phase_begin "$1"
    nap "$HOLD_S"
    phase_end
}

sampler() {
    local last=-1 last_t=-1000
    while :; do
        current
        mem_total
        now_ms
        if [ "$CURRENT_KB$MEMTOTAL_KB" != "$last" ] || [ $((NOW_MS - last_t)) -ge 1000 ]; then
            echo "EBB-BENCH-SAMPLE t_ms=$NOW_MS current_kb=$CURRENT_KB memtotal_kb=$MEMTOTAL_KB" >>"$SAMPLES"
            last=$CURRENT_KB$MEMTOTAL_KB
            last_t=$NOW_MS
        fi
        nap 0.1
    done
}

# --- setup ---------------------------------------------------------------------------
on_xen || fail "not on Xen"
have_xenstore || fail "no xenstore"
if [ -d "$SYS" ]; then
    DRIVER=c
else
    modprobe ebb || fail "modprobe ebb failed"
    DRIVER=ebb
fi
[ -w "$MEM/auto_online_blocks" ] || fail "no memory hotplug in this kernel"
# Both drivers rely on the kernel to online what they hot-add.
echo online_movable >"$MEM/auto_online_blocks"
T0_MS=0
now_ms
T0_MS=$NOW_MS

declare -A HV
hv_snap HV
STATIC_MAX_KB=${HV[static_max_kib]}
# What the domain holds with nothing ballooned. The C driver has already ballooned
# at boot (see README: it subtracts static-max - boot size from memory/target on a
# PVH domain), ebb.ko holds the boot size; giving back low_kb + high_kb undoes that.
current
read -r low <"$SYS/info/low_kb"
read -r high <"$SYS/info/high_kb"
BOOT_KB=$((CURRENT_KB + low + high))
read -r block_hex <"$MEM/block_size_bytes"
BLOCK_KB=$((16#$block_hex / 1024))
if [ $((BOOT_KB + DELTA_KB)) -gt "$STATIC_MAX_KB" ]; then
    # A real Xen domU boots with maxmem = memory (a PVH domain with less memory than
    # maxmem would run populate-on-demand): the host raises the maximum, as
    # `xl mem-max` does for a user who wants to grow a guest.
    STATIC_MAX_KB=$((BOOT_KB + DELTA_KB + 128 * MIB))
    host_request mem-max "${STATIC_MAX_KB}k" >/dev/null 2>&1 || fail "mem-max ${STATIC_MAX_KB}k failed"
fi
echo "EBB-BENCH-INFO driver=$DRIVER boot_kb=$BOOT_KB booted_at_kb=$CURRENT_KB static_max_kb=$STATIC_MAX_KB" \
    "block_kb=$BLOCK_KB hold_s=$HOLD_S kernel=$(uname -r)"
echo "$BOOT_KB" >"$SYS/target_kb"
now_ms
wait_target "$BOOT_KB" || fail "setup: the boot size $BOOT_KB KiB not reached (current_kb $CURRENT_KB$(ebb_why))"

: >"$SAMPLES"
: >/tmp/bench-marks
sampler &
SAMPLER_PID=$!
trap 'kill $SAMPLER_PID 2>/dev/null || true' EXIT

# --- phases --------------------------------------------------------------------------
for _ in 1 2 3; do
    phase_begin null
    phase_end
done

mem_total
MEMTOTAL_BOOT=$MEMTOTAL_KB
online_blocks
BLOCKS_BOOT=$ONLINE_BLOCKS
for round in $(seq "$ROUNDS"); do
    echo "EBB-BENCH-PROGRESS $DRIVER: balloon out and in $DELTA_KB KiB ($round/$ROUNDS)"
    move out $((BOOT_KB - DELTA_KB)) "$round"
    move in "$BOOT_KB" "$round"
done

for round in $(seq "$ROUNDS"); do
    echo "EBB-BENCH-PROGRESS $DRIVER: grow $DELTA_KB KiB by hotplug and shrink back ($round/$ROUNDS)"
    move grow $((BOOT_KB + DELTA_KB)) "$round"
    online_blocks
    # The first grow hot-adds; later ones find what the C driver kept.
    [ "$round" != 1 ] || GROWN_BLOCKS=$((ONLINE_BLOCKS - BLOCKS_BOOT))
    move shrink "$BOOT_KB" "$round"
done
online_blocks
LEFT_BLOCKS=$((ONLINE_BLOCKS - BLOCKS_BOOT))
mem_total
# struct page is 64 bytes for every 4 KiB page of a block that stays online.
echo "EBB-BENCH phase=leftover driver=$DRIVER blocks_added=$GROWN_BLOCKS blocks_left=$LEFT_BLOCKS" \
    "memmap_kb=$((LEFT_BLOCKS * BLOCK_KB * 64 / 4 / 1024)) memtotal_before_kb=$MEMTOTAL_BOOT" \
    "memtotal_after_kb=$MEMTOTAL_KB"

echo "EBB-BENCH-PROGRESS $DRIVER: unreachable target for $HOLD_S s (and an idle baseline)"
move prep $((BOOT_KB - DELTA_KB / 2))
hold idle
if [ "${H1[platform]:-}" = xen ]; then
    # libxl keeps the maximum at or above memory/target: the host's target comes
    # down to the domain's size first (the sysfs target below overrides it).
    host_request mem-set "$((H1[tot_pages] * 4))k" >/dev/null 2>&1 || fail "mem-set to the domain's size failed"
fi
host_request mem-max "$((H1[tot_pages] * 4))k" >/dev/null 2>&1 || fail "ebbctl mem-max failed"
phase_begin stuck
echo "$BOOT_KB" >"$SYS/target_kb"
nap "$HOLD_S"
phase_end target_kb="$BOOT_KB" state="$([ "$DRIVER" = ebb ] && cat $SYS/ebb/state || echo -)"
[ $((BOOT_KB - CURRENT_KB)) -gt 2048 ] || fail "stuck: the target was reached although mem-max forbids it"
host_request mem-max "${STATIC_MAX_KB}k" >/dev/null 2>&1 || fail "ebbctl mem-max ${STATIC_MAX_KB}k failed"

kill "$SAMPLER_PID"
wait "$SAMPLER_PID" 2>/dev/null || true
trap - EXIT
cat /tmp/bench-marks "$SAMPLES"
echo "EBB-BENCH-DONE driver=$DRIVER"
