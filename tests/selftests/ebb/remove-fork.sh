#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Hot-remove while processes fork on every CPU: each block ebb removes frees its
# memmap (2 MiB per 128 MiB block) while the forks take fresh pages for their page
# tables. On Xen PV a page that is free while still mapped writable cannot become a
# page table: the fork's pin fails ("mmuext_op ... PIN_L1 ... -22", a warning from
# arch/x86/xen/multicalls.c). The project's kernel frees each memmap page only once
# unmapped (scripts/kernel-patches/0002-*); this test is that fix's regression test,
# and a hot-remove test under fork load anywhere ebb removes blocks.
cd "$(dirname "$0")" || exit 1
. ./lib.sh

ROUNDS=4
BLOCKS=4
BLOCK_KB=131072

ktap_print_header
ebb_require "hot-remove while processes fork" xen ebb.ko xenstore host hotplug
ebb_removes_blocks || skip_test "hot-remove while processes fork" \
    "ebb removes no blocks on PV without pv_hot_remove=1"
ktap_set_plan 2

ebb_make_room $((BLOCKS * BLOCK_KB))
ebb_start_measured remove-fork.sh
echo online_movable > $MEM/auto_online_blocks

# One forking loop per CPU: each `( : )` is a fork whose new page tables the kernel
# pins (on PV); the count of forks goes to a file per loop when it stops.
stop=/tmp/remove-fork.stop
rm -f "$stop" /tmp/remove-fork.forks.*
cpus=$(grep -c ^processor /proc/cpuinfo)
for cpu in $(seq 1 "$cpus"); do
    (
        forks=0
        while [ ! -e "$stop" ]; do
            ( : )
            forks=$((forks + 1))
        done
        echo $forks > /tmp/remove-fork.forks.$cpu
    ) &
done

# Each round grows by BLOCKS blocks and shrinks back, every added block removed.
grown_kb=$((BLOCKS * BLOCK_KB))
removed=0
rounds_ok=0
for round in $(seq 1 $ROUNDS); do
    host_request mem-set "$((target0 + grown_kb))k" ||
        ktap_print_msg "round $round: mem-set up failed: $(host_output)"
    up=$(wait_state $((target0 + grown_kb)))
    blocks_up=$(cat $SYS/ebb/hotplug_blocks)
    host_request mem-set "${target0}k" ||
        ktap_print_msg "round $round: mem-set down failed: $(host_output)"
    down=$(wait_state "$target0")
    blocks_down=$(cat $SYS/ebb/hotplug_blocks)
    ktap_print_msg "round $round: up $up with $blocks_up blocks, down $down with $blocks_down"
    if [ "$up" = reached ] && [ "$blocks_up" -ge "$BLOCKS" ] && [ "$down" = reached ] &&
        [ "$blocks_down" = 0 ]; then
        rounds_ok=$((rounds_ok + 1))
        removed=$((removed + blocks_up))
    fi
done

touch "$stop"
wait
forks=$(cat /tmp/remove-fork.forks.* | awk '{ n += $1 } END { print n + 0 }')
rm -f "$stop" /tmp/remove-fork.forks.*
ktap_print_msg "$removed blocks removed in $rounds_ok of $ROUNDS rounds while $cpus loops forked $forks times"

rmmod ebb
echo "$online_policy" > $MEM/auto_online_blocks
ebb_restore_max
sleep 1
tot=$(hv_tot_kb)
ktap_print_msg "after rmmod: MemTotal $(mem_total_kb) kB (boot $mem_boot), tot_pages $tot kB (boot $tot_boot)"
every_round_removed() {
    [ "$rounds_ok" = $ROUNDS ] && [ "$forks" -gt 0 ] &&
        [ "$(mem_total_kb)" = "$mem_boot" ] && [ "$tot" = "$tot_boot" ]
}
ktap_test_result "every round grew by $BLOCKS blocks and removed them all while every CPU forked; MemTotal and tot_pages back to the page" every_round_removed
ktap_test_result "no kernel warning (no refused page-table pin) while blocks were removed under forks" \
    kernel_quiet_since "$log_mark"
ktap_finished
