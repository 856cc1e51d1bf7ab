#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Deflate on OOM: with the balloon at its floor, a program that needs more memory
# than is free still runs to completion (its pages intact) because ebb's OOM
# notifier gives ballooned pages back, 2 MiB per call; the deflate is recorded
# (ebb/oom_deflated_pages, reason oom_deflate) and nothing is killed. Then the same
# with the pressure on two CPUs: two such programs at once while a user kicks the
# worker with the floor target every half second, so that the worker, which would
# take the memory back, runs against the deflating notifier.
cd "$(dirname "$0")" || exit 1
. ./lib.sh

ktap_print_header
ebb_require "deflate on OOM" xen ebb.ko memcheck
ktap_set_plan 5

ebb_unload
mem_boot=$(mem_total_kb)
ebb_start
echo 60 > $SYS/max_schedule_delay

floor_kb=$(cat $SYS/ebb/floor_kb)
echo "$floor_kb" > $SYS/target_kb
i=0
while [ $i -lt 300 ] && [ "$(cat $SYS/ebb/state)" != reached ]; do sleep 0.1; i=$((i + 1)); done
free_kb=$(free_kb)
need_mib=$((free_kb / 1024 + 24))
ktap_print_msg "balloon at $(cat $SYS/info/current_kb) KiB, $free_kb kB free; memcheck needs $need_mib MiB"
log_mark=$(kmsg_mark oom.sh)

# The heuristic overcommit check would refuse more than MemTotal before any page is
# touched; the point is to run out of memory while touching them.
overcommit=$(cat /proc/sys/vm/overcommit_memory)
echo 1 > /proc/sys/vm/overcommit_memory
out=$(memcheck $need_mib 1 true 2>&1)
status=$?
echo "$overcommit" > /proc/sys/vm/overcommit_memory
echo "$out" | sed 's/^/# /'
deflated=$(cat $SYS/ebb/oom_deflated_pages)
reason=$(cat $SYS/ebb/reason)
ktap_print_msg "memcheck status $status; ebb deflated $deflated pages; reason $reason"
ktap_test_result "a program needing more than the free memory completes with its pages intact" [ $status -eq 0 ]
dmesg_since "$log_mark" | grep -iE "oom|killed" | head -5 | sed 's/^/# /'
# The reason says oom_deflate until the worker tries the target again; when it does
# while the program still holds the memory (a slow run), the balloon stalls and the
# reason is the stall's, enomem_guest.
deflated_nothing_killed() {
    [ "$deflated" -gt 0 ] && { [ "$reason" = oom_deflate ] || [ "$reason" = enomem_guest ]; } &&
        ! dmesg_since "$log_mark" | grep -q "Killed process"
}
ktap_test_result "the OOM notifier deflated the balloon, recorded it, and nothing was killed" deflated_nothing_killed

# 2. Back to the floor, then two programs that together need more than is free, and
# a user kicking the worker.
echo "$floor_kb" > $SYS/target_kb
state=$(wait_state "$floor_kb")
free_kb=$(free_kb)
each_mib=$((free_kb / 1024 / 2 + 16))
deflated0=$(cat $SYS/ebb/oom_deflated_pages)
ktap_print_msg "balloon at $(cat $SYS/info/current_kb) KiB ($state), $free_kb kB free; two programs need $each_mib MiB each"
log_mark=$(kmsg_mark "oom.sh two CPUs")
echo 1 > /proc/sys/vm/overcommit_memory
rm -f /tmp/ebb-oom-*
memcheck $each_mib 1 true > /tmp/ebb-oom-1 2>&1 &
first=$!
memcheck $each_mib 1 true > /tmp/ebb-oom-2 2>&1 &
second=$!
( kicks=0
  while kill -0 $first 2>/dev/null || kill -0 $second 2>/dev/null; do
      echo "$floor_kb" > $SYS/target_kb && kicks=$((kicks + 1))
      sleep 0.5
  done
  echo $kicks > /tmp/ebb-oom-kicks ) &
kicker=$!
wait $first
status1=$?
wait $second
status2=$?
wait $kicker
echo "$overcommit" > /proc/sys/vm/overcommit_memory
sed 's/^/# 1: /' /tmp/ebb-oom-1
sed 's/^/# 2: /' /tmp/ebb-oom-2
deflated=$(($(cat $SYS/ebb/oom_deflated_pages) - deflated0))
kicks=$(cat /tmp/ebb-oom-kicks)
ktap_print_msg "memcheck statuses $status1 and $status2; $kicks kicks; ebb deflated $deflated more pages"
both_intact() {
    [ $status1 = 0 ] && [ $status2 = 0 ] && grep -q ": 0 of .* pages mismatch" /tmp/ebb-oom-1 &&
        grep -q ": 0 of .* pages mismatch" /tmp/ebb-oom-2 && [ "$kicks" -ge 1 ]
}
ktap_test_result "two programs needing more than the free memory between them complete with their pages intact while the worker is kicked" both_intact
dmesg_since "$log_mark" | grep -iE "oom|killed" | head -5 | sed 's/^/# /'
deflated_again() {
    [ "$deflated" -gt 0 ] && ! dmesg_since "$log_mark" | grep -q "Killed process"
}
ktap_test_result "the OOM notifier deflated the balloon again under pressure from two CPUs and nothing was killed" deflated_again

rmmod ebb
ktap_test_result "rmmod restores MemTotal after deflating on OOM" [ "$(mem_total_kb)" = "$mem_boot" ]
ktap_finished
