#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Memory integrity across ballooning: memcheck fills most of the free memory with
# checksummed pages, the balloon goes down and up several times through sysfs
# (target_kb), and memcheck verifies every page after each round: zero mismatches.
cd "$(dirname "$0")" || exit 1
. ./lib.sh

ROUNDS=4

ktap_print_header

if ! on_xen; then
    ktap_set_plan 1
    ktap_test_skip "balloon with checksummed memory (not on Xen: ebb.ko refuses to load)"
    ktap_finished
fi
if [ ! -f "$EBB_KO" ] || ! command -v memcheck >/dev/null; then
    ktap_skip_all "ebb.ko or memcheck not installed"
    exit "$KSFT_SKIP"
fi
ktap_set_plan 2

ebb_loaded && rmmod ebb
mem_boot=$(mem_total_kb)
insmod "$EBB_KO" || ktap_exit_fail_msg "insmod failed"

start_kb=$(cat $SYS/info/current_kb)
floor_kb=$(cat $SYS/ebb/floor_kb)
free_kb=$(free_kb)
# memcheck takes 60% of the free memory; the balloon takes most of the rest, but
# never below the floor.
fill_mib=$((free_kb * 6 / 10 / 1024))
down_kb=$((start_kb - free_kb * 3 / 10))
[ $down_kb -lt "$floor_kb" ] && down_kb=$floor_kb
ktap_print_msg "free $free_kb kB: memcheck fills $fill_mib MiB, balloon $start_kb -> $down_kb KiB, $ROUNDS rounds"

# Each round: down (odd rounds by 2 MiB extents, even ones to a 4 KiB-odd target),
# wait until settled, then back up.
cat > /tmp/ebb-round.sh <<ROUND
settle() {
    i=0
    while [ \$i -lt 600 ]; do
        case "\$(cat $SYS/ebb/state)" in reached|stalled|gave_up) return 0 ;; esac
        sleep 0.1; i=\$((i + 1))
    done
}
echo \$(( $down_kb + (\$1 % 2) * 12 )) > $SYS/target_kb; settle
echo "# round \$1: down to \$(cat $SYS/info/current_kb) KiB (\$(cat $SYS/ebb/state), \$(cat $SYS/ebb/reason))"
echo $start_kb > $SYS/target_kb; settle
echo "# round \$1: up to \$(cat $SYS/info/current_kb) KiB (\$(cat $SYS/ebb/state))"
ROUND

out=$(memcheck "$fill_mib" $ROUNDS "sh /tmp/ebb-round.sh \$1" 2>&1)
status=$?
echo "$out" | sed 's/^/# /'
if [ $status -eq 0 ] && [ "$(echo "$out" | grep -c ' 0 of ')" = $ROUNDS ]; then
    ktap_test_pass "every page intact after $ROUNDS balloon down/up rounds"
else
    ktap_test_fail "every page intact after $ROUNDS balloon down/up rounds"
fi

rmmod ebb
if [ "$(mem_total_kb)" = "$mem_boot" ]; then
    ktap_test_pass "rmmod restores MemTotal after the integrity rounds"
else
    ktap_test_fail "rmmod restores MemTotal after the integrity rounds"
fi
ktap_finished
