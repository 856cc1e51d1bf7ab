#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Deflate on OOM: with the balloon at its floor, a program that needs more memory
# than is free still runs to completion (its pages intact) because ebb's OOM
# notifier gives ballooned pages back, 2 MiB per call; the deflate is recorded
# (ebb/oom_deflated_pages, reason oom_deflate) and nothing is killed.
cd "$(dirname "$0")" || exit 1
. ./lib.sh

ktap_print_header
ebb_require "deflate on OOM" xen ebb.ko memcheck
ktap_set_plan 3

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
deflated_nothing_killed() {
    [ "$deflated" -gt 0 ] && [ "$reason" = oom_deflate ] && ! dmesg_since "$log_mark" | grep -q "Killed process"
}
ktap_test_result "the OOM notifier deflated the balloon, recorded it, and nothing was killed" deflated_nothing_killed

rmmod ebb
ktap_test_result "rmmod restores MemTotal after deflating on OOM" [ "$(mem_total_kb)" = "$mem_boot" ]
ktap_finished
