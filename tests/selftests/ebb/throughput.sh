#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Balloon throughput and hypercall economy: from the boot size down to the floor and
# back, timing each way and counting reservation hypercalls. ebb moves 512 extents of
# 2 MiB per hypercall, so each way takes exactly one call per GiB (or part of one) plus
# one for the 4 KiB remainder: 2 calls each way for the 1 GiB test guest (the C driver
# makes one call per 2 MiB: 4 KiB extents, 512 per call).
cd "$(dirname "$0")" || exit 1
. ./lib.sh


ktap_print_header

skip_all() {
    ktap_set_plan 1
    ktap_test_skip "balloon throughput ($1)"
    ktap_finished
}
on_xen || skip_all "not on Xen: ebb.ko refuses to load"
[ -f "$EBB_KO" ] || skip_all "ebb.ko not installed"
ktap_set_plan 2

ebb_loaded && rmmod ebb
insmod "$EBB_KO" || ktap_exit_fail_msg "insmod failed"

uptime_cs() { tr -d . < /proc/uptime | cut -d' ' -f1; }
settle() {
    i=0
    while [ $i -lt 3000 ]; do
        case "$(cat $SYS/ebb/state)" in reached|stalled|gave_up) return 0 ;; esac
        sleep 0.05
        i=$((i + 1))
    done
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
    if [ "$(cat $SYS/ebb/state)" = reached ] && [ "$moved_kb" = "$want_kb" ] &&
        [ "$moved_kb" -gt 0 ] && [ $calls = $expect_calls ]; then
        ktap_test_pass "$1: $((moved_kb / 1024)) MiB in $calls hypercalls (512 extents of 2 MiB per call, one more for the 4 KiB remainder)"
    else
        ktap_test_fail "$1: $expect_calls hypercalls for $((want_kb / 1024)) MiB (512 extents of 2 MiB per call, one more for the 4 KiB remainder)"
    fi
}

start_kb=$(cat $SYS/info/current_kb)
echo 0 > $SYS/scrub_pages
measure "balloon out to the floor" "$(cat $SYS/ebb/floor_kb)"
measure "balloon in to the boot size" "$start_kb"
rmmod ebb
ktap_finished
