#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Balloon throughput and hypercall economy: from the boot size down towards the floor
# and back, timing each way and counting reservation hypercalls. ebb moves 512 extents
# of 2 MiB per hypercall, so each way takes exactly one call per GiB (or part of one)
# plus one for the 4 KiB remainder: 2 calls each way for the 1 GiB test guest (the C
# driver makes one call per 2 MiB: 4 KiB extents, 512 per call). That holds for what
# the guest has free in whole 2 MiB runs: where its free memory is broken up (by the
# tests before this one), ebb gives the rest 4 KiB at a time, 512 pages per call,
# which is right but no measure of the economy; the balloon then goes out only as far
# as the free 2 MiB runs reach.
cd "$(dirname "$0")" || exit 1
. ./lib.sh

ktap_print_header
ebb_require "balloon throughput" xen ebb.ko
ktap_set_plan 2

ebb_unload
mem_boot=$(mem_total_kb)
ebb_start

settle() {
    i=0
    while [ $i -lt 3000 ]; do
        case "$(cat $SYS/ebb/state)" in reached|stalled|gave_up) return 0 ;; esac
        sleep 0.05
        i=$((i + 1))
    done
}

# Free memory in whole 2 MiB runs: the buddy allocator's free blocks of order 9 (one
# run) and 10 (two), summed over the zones of /proc/buddyinfo.
free_2mib_runs() {
    awk '{ w = 1; for (i = 14; i <= NF; i++) { n += $i * w; w *= 2 } } END { print n + 0 }' /proc/buddyinfo
}

# Moves to target $2 KiB and checks the reservation hypercalls to the call: one per
# 512 extents of 2 MiB, then one per 512 pages of the 4 KiB remainder (less than one
# extent: one call). More would mean 2 MiB runs that were not found or not taken
# whole. $1 names the direction.
measure() {
    from=$(cat $SYS/info/current_kb)
    calls0=$(cat $SYS/ebb/hypercalls)
    t0=$(uptime_cs)
    echo "$2" > $SYS/target_kb
    settle
    cs=$(($(uptime_cs) - t0))
    [ $cs -gt 0 ] || cs=1
    moved_kb=$(($(cat $SYS/info/current_kb) - from))
    moved_kb=${moved_kb#-}
    want_kb=$(($2 - from))
    want_kb=${want_kb#-}
    calls=$(($(cat $SYS/ebb/hypercalls) - calls0))
    extents=$((want_kb / 2048))
    rest_pages=$((want_kb % 2048 / 4))
    expect_calls=$(( (extents + 511) / 512 + (rest_pages + 511) / 512 ))
    ktap_print_msg "$1: $moved_kb KiB ($extents extents of 2 MiB + $rest_pages pages) in ${cs}0 ms ($((moved_kb * 100 / 1024 / cs)) MiB/s, $((moved_kb * 25 / cs)) pages/s), $calls hypercalls (want $expect_calls; C driver: $(( (moved_kb + 2047) / 2048 ))), state $(cat $SYS/ebb/state)"
    economical() {
        [ "$(cat $SYS/ebb/state)" = reached ] && [ "$moved_kb" = "$want_kb" ] &&
            [ "$moved_kb" -gt 0 ] && [ $calls = $expect_calls ]
    }
    ktap_test_result "$1: one hypercall per 512 extents of 2 MiB, one more for the 4 KiB remainder" economical
}

start_kb=$(cat $SYS/info/current_kb)
floor_kb=$(cat $SYS/ebb/floor_kb)
echo 0 > $SYS/scrub_pages
# The balloon leaves its free-memory reserve (a 32nd of MemTotal at load, at least 16
# MiB) and a run for the 4 KiB remainder; compacting first joins what can be joined.
echo 1 > /proc/sys/vm/compact_memory 2>/dev/null
runs=$(free_2mib_runs)
reserve_kb=$((mem_boot / 4 / 32 * 4))
[ $reserve_kb -lt 16384 ] && reserve_kb=16384
usable=$((runs - (reserve_kb + 2047) / 2048 - 1))
[ "$usable" -gt 0 ] || ktap_exit_fail_msg "no free 2 MiB run beyond the reserve: $(cat /proc/buddyinfo)"
down_kb=$floor_kb
if [ $(((start_kb - floor_kb) / 2048)) -gt $usable ]; then
    down_kb=$((start_kb - usable * 2048 - (start_kb - floor_kb) % 2048))
fi
ktap_print_msg "free memory in 2 MiB runs: $runs ($(tr -s ' ' < /proc/buddyinfo | tr '\n' ';')); floor $floor_kb KiB, balloon out to $down_kb KiB"
grep -A2 "Number of blocks type" /proc/pagetypeinfo 2>/dev/null | while read -r line; do ktap_print_msg "$line"; done
measure "balloon out towards the floor" "$down_kb"
measure "balloon in to the boot size" "$start_kb"
rmmod ebb
ktap_finished
