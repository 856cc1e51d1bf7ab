#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Memory integrity across hotplug: memcheck fills much of the free memory with
# checksummed pages, then each round grows the guest by 256 MiB (two ebb blocks,
# onlined movable in odd rounds, and `online` under the auto-movable zone policy in
# even ones), a
# user offlines and onlines ebb's last block, and the guest shrinks back to its boot
# size (hot-remove, or ballooning where a block cannot go). memcheck verifies every
# page after each round: zero mismatches; every step reaches its target.
cd "$(dirname "$0")" || exit 1
. ./lib.sh

ROUNDS=4

what="memory integrity across hotplug"
ktap_print_header
ebb_require "$what" xen ebb.ko memcheck hotplug
ktap_set_plan 3

ebb_unload
online_policy=$(cat $MEM/auto_online_blocks)
zone_policy=$(cat $ONLINE_POLICY)
echo auto-movable > $ONLINE_POLICY
mem_boot=$(mem_total_kb)
blocks_boot=$(nr_blocks)
ebb_start
start_kb=$(cat $SYS/info/current_kb)
[ "$(cat $SYS/ebb/max_kb)" -ge $((start_kb + 262144)) ] || skip_test "$what" "no room for 256 MiB of hotplug"
free_kb=$(free_kb)
fill_mib=$((free_kb * 4 / 10 / 1024))
ktap_print_msg "free $free_kb kB: memcheck fills $fill_mib MiB; $ROUNDS rounds of +256 MiB, offline/online, back to $start_kb KiB"

cat > /tmp/ebb-hotplug-round.sh <<ROUND
. $PWD/lib.sh
policy=online_movable
[ \$((\$1 % 2)) = 0 ] && policy=online
echo \$policy > $MEM/auto_online_blocks
echo $((start_kb + 262144)) > $SYS/target_kb
echo "# round \$1 (\$policy): up: \$(wait_state $((start_kb + 262144))) at \$(cat $SYS/info/current_kb) KiB"
last=\$(ebb_blocks | tail -n 1)
echo offline > $MEM/\$last/state
echo "# round \$1: \$last offline: \$(wait_state) at \$(cat $SYS/info/current_kb) KiB"
echo \$policy > $MEM/\$last/state
echo "# round \$1: \$last online: \$(wait_state) at \$(cat $SYS/info/current_kb) KiB"
echo $start_kb > $SYS/target_kb
echo "# round \$1: down: \$(wait_state $start_kb) at \$(cat $SYS/info/current_kb) KiB; \$(hotplug_files)"
ROUND

out=$(memcheck "$fill_mib" $ROUNDS "sh /tmp/ebb-hotplug-round.sh \$1" 2>&1)
status=$?
echo "$out" | sed 's/^/# /'
intact() { [ $status -eq 0 ] && [ "$(echo "$out" | grep -c ' 0 of ')" = $ROUNDS ]; }
ktap_test_result "every page intact after $ROUNDS grow/offline/online/shrink rounds" intact

rounds_reached() {
    [ "$(echo "$out" | grep -c ': reached at ')" = $((ROUNDS * 3)) ] &&
        [ "$(echo "$out" | grep -c ' offline: not_onlined at ')" = $ROUNDS ]
}
ktap_test_result "every round reaches its targets; an offlined block is reported not_onlined" rounds_reached

rmmod ebb
echo "$online_policy" > $MEM/auto_online_blocks
echo "$zone_policy" > $ONLINE_POLICY
as_at_boot() { [ "$(mem_total_kb)" = "$mem_boot" ] && [ "$(nr_blocks)" = "$blocks_boot" ]; }
ktap_test_result "rmmod restores MemTotal and the memory blocks after the rounds" as_at_boot
ktap_finished
