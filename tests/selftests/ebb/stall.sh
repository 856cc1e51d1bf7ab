#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# An unreachable target does not spin: with most of the guest's memory held by a
# program, a target at the floor stalls with reason enomem_guest; while stalled the
# worker backs off (few hypercalls, near-zero CPU); once the memory is released the
# balloon reaches the target without being asked again.
cd "$(dirname "$0")" || exit 1
. ./lib.sh

WATCH_S=10

ktap_print_header

if ! on_xen; then
    ktap_set_plan 1
    ktap_test_skip "stall on an unreachable target (not on Xen: ebb.ko refuses to load)"
    ktap_finished
fi
if [ ! -f "$EBB_KO" ] || ! command -v memcheck >/dev/null; then
    ktap_skip_all "ebb.ko or memcheck not installed"
    exit "$KSFT_SKIP"
fi
ktap_set_plan 5

ebb_loaded && rmmod ebb
mem_boot=$(mem_total_kb)
insmod "$EBB_KO" || ktap_exit_fail_msg "insmod failed"
echo 2 > $SYS/max_schedule_delay

floor_kb=$(cat $SYS/ebb/floor_kb)
start_kb=$(cat $SYS/info/current_kb)
free_kb=$(free_kb)
# Hold all but 40 MiB of the memory above the floor, so the floor cannot be reached.
hold_mib=$(( (free_kb - (start_kb - floor_kb) + 40960) / 1024 ))
[ $hold_mib -lt 16 ] && hold_mib=16
rm -f /tmp/ebb-release
memcheck $hold_mib 1 'while [ ! -e /tmp/ebb-release ]; do sleep 1; done' >/tmp/ebb-hold.log 2>&1 &
holder=$!
while ! grep -q filled /tmp/ebb-hold.log 2>/dev/null; do sleep 0.2; done
ktap_print_msg "holding $hold_mib MiB; floor $floor_kb KiB"

# CPU time of the whole guest (user+nice+system+irq+softirq jiffies): a baseline
# with nothing to do, then the same span while stalled.
busy() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 }' /proc/stat; }
busy0=$(busy)
sleep $WATCH_S
idle_ticks=$(($(busy) - busy0))

echo "$floor_kb" > $SYS/target_kb
i=0
while [ $i -lt 300 ] && [ "$(cat $SYS/ebb/state)" != stalled ]; do sleep 0.1; i=$((i + 1)); done
state=$(cat $SYS/ebb/state)
reason=$(cat $SYS/ebb/reason)
ktap_print_msg "state $state, reason $reason, current $(cat $SYS/info/current_kb) KiB"
if [ "$state" = stalled ] && [ "$reason" = enomem_guest ]; then
    ktap_test_pass "an unreachable target stalls with reason enomem_guest"
else
    ktap_test_fail "an unreachable target stalls with reason enomem_guest"
fi

calls0=$(cat $SYS/ebb/hypercalls)
fails0=$(cat $SYS/ebb/failures)
busy0=$(busy)
sleep $WATCH_S
busy1=$(busy)
calls=$(($(cat $SYS/ebb/hypercalls) - calls0))
fails=$(($(cat $SYS/ebb/failures) - fails0))
hz_ticks=$((busy1 - busy0))
ktap_print_msg "stalled for $WATCH_S s: $calls hypercalls, $fails failed attempts, $hz_ticks busy jiffies (baseline $idle_ticks), schedule_delay $(cat $SYS/schedule_delay) s"
# At most one attempt per second (max_schedule_delay 2 s): no spinning.
if [ $fails -le $WATCH_S ]; then
    ktap_test_pass "while stalled the worker backs off (at most one attempt per second)"
else
    ktap_test_fail "while stalled the worker backs off (at most one attempt per second)"
fi

# With max_retry_count set, the worker gives up and stays quiet until told again.
echo 3 > $SYS/max_retry_count
i=0
while [ $i -lt 100 ] && [ "$(cat $SYS/ebb/state)" != gave_up ]; do sleep 0.1; i=$((i + 1)); done
fails0=$(cat $SYS/ebb/failures)
sleep 4
fails=$(($(cat $SYS/ebb/failures) - fails0))
ktap_print_msg "max_retry_count 3: state $(cat $SYS/ebb/state), retry_count $(cat $SYS/retry_count), $fails attempts in 4 s"
if [ "$(cat $SYS/ebb/state)" = gave_up ] && [ $fails -eq 0 ]; then
    ktap_test_pass "after max_retry_count attempts the worker gives up and stops trying"
else
    ktap_test_fail "after max_retry_count attempts the worker gives up and stops trying"
fi
echo 0 > $SYS/max_retry_count

touch /tmp/ebb-release
wait $holder
i=0
while [ $i -lt 300 ] && [ "$(cat $SYS/ebb/state)" != reached ]; do sleep 0.1; i=$((i + 1)); done
ktap_print_msg "after release: state $(cat $SYS/ebb/state), current $(cat $SYS/info/current_kb) KiB"
if [ "$(cat $SYS/ebb/state)" = reached ] && [ "$(cat $SYS/info/current_kb)" = "$floor_kb" ]; then
    ktap_test_pass "the target is reached once memory is released, without a new request"
else
    ktap_test_fail "the target is reached once memory is released, without a new request"
fi

rmmod ebb
if [ "$(mem_total_kb)" = "$mem_boot" ]; then
    ktap_test_pass "rmmod restores MemTotal after a stall"
else
    ktap_test_fail "rmmod restores MemTotal after a stall"
fi
ktap_finished
