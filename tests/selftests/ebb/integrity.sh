#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Memory integrity across ballooning: memcheck fills most of the free memory with
# checksummed pages, the balloon goes down and up several times through sysfs
# (target_kb), reaching each target to the page, and memcheck verifies every page
# after each round: zero mismatches.
cd "$(dirname "$0")" || exit 1
. ./lib.sh

ROUNDS=4

ktap_print_header
ebb_require "balloon with checksummed memory" xen ebb.ko memcheck
ktap_set_plan 2

ebb_unload
mem_boot=$(mem_total_kb)
ebb_start

start_kb=$(cat $SYS/info/current_kb)
floor_kb=$(cat $SYS/ebb/floor_kb)
free_kb=$(free_kb)
# memcheck takes 60% of the free memory; the balloon takes most of the rest (whole
# 2 MiB extents), but never below the floor.
fill_mib=$((free_kb * 6 / 10 / 1024))
down_kb=$((start_kb - free_kb * 3 / 10 / 2048 * 2048))
[ $down_kb -lt "$floor_kb" ] && down_kb=$floor_kb
ktap_print_msg "free $free_kb kB: memcheck fills $fill_mib MiB, balloon $start_kb -> $down_kb KiB, $ROUNDS rounds"

# Each round: down (odd rounds to a target 12 KiB above down_kb, reached by 2 MiB
# extents and then three 4 KiB pages; even rounds by 2 MiB extents only), then back
# up. A step counts only when ebb says `reached` and holds the target to the page
# (the balloon moves nothing but whole pages; the targets are multiples of 4 KiB),
# within 60 s; otherwise the round's command fails, and with it memcheck: pages that
# stayed intact because the balloon never moved prove nothing.
cat > /tmp/ebb-round.sh <<ROUND
. $PWD/lib.sh
step() {
    echo \$2 > $SYS/target_kb
    if wait_for 60 reached_kb \$2; then
        echo "# round \$1: \$3 to \$2 KiB: reached"
    else
        echo "# round \$1: \$3 to \$2 KiB: FAILED: \$(cat $SYS/ebb/state) (\$(cat $SYS/ebb/reason)) at \$(cat $SYS/info/current_kb) KiB"
        exit 1
    fi
}
step \$1 \$(( $down_kb + (\$1 % 2) * 12 )) down
step \$1 $start_kb up
ROUND

out=$(memcheck "$fill_mib" $ROUNDS "sh /tmp/ebb-round.sh \$1" 2>&1)
status=$?
echo "$out" | sed 's/^/# /'
intact() {
    [ $status -eq 0 ] && [ "$(echo "$out" | grep -c ' 0 of ')" = $ROUNDS ] &&
        [ "$(echo "$out" | grep -c ': reached$')" = $((ROUNDS * 2)) ]
}
ktap_test_result "every page intact after $ROUNDS balloon down/up rounds, each target reached to the page" intact

rmmod ebb
ktap_test_result "rmmod restores MemTotal after the integrity rounds" [ "$(mem_total_kb)" = "$mem_boot" ]
ktap_finished
