#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# ebb.ko and xenstore, from inside the guest: ebb publishes its status in
# data/ebb-state and keeps it current; a guest write to its own memory/target is
# refused by the store and changes nothing; a malformed target from the host is
# refused and reported; control/feature-balloon says whether ebb is loaded.
cd "$(dirname "$0")" || exit 1
. ./lib.sh

ktap_print_header
ebb_require "ebb's xenstore status" xen ebb.ko xenstore
ktap_set_plan 5

ebb_unload
mem_boot=$(mem_total_kb)
target0=$(xenstore read memory/target)
log_mark=$(kmsg_mark xenstore.sh)
ebb_start

# Reads one key=value field of data/ebb-state.
state_field() {
    xenstore read data/ebb-state 2>/dev/null | tr ' ' '\n' | sed -n "s/^$1=//p"
}

# Waits until data/ebb-state has field $1 = $2 and, if given, field $3 = $4 in
# the same line (a status is written at the end of each worker run).
wait_field() {
    i=0
    while [ $i -lt 100 ]; do
        line=$(xenstore read data/ebb-state 2>/dev/null | tr ' ' '\n')
        if echo "$line" | grep -qx "$1=$2" && { [ $# -lt 4 ] || echo "$line" | grep -qx "$3=$4"; }; then
            return 0
        fi
        sleep 0.1
        i=$((i + 1))
    done
    return 1
}

# A populate-on-demand domain balloons the unbacked rest of its memory map out just
# after the load: the published line must be the one of the balloon at rest. At rest
# is `reached` with the size the worker published at the end of its last run (not
# the target to the page: `reached` also means nothing is left to take back, a few
# pages short of it).
at_rest() {
    state_is reached && [ "$(cat $SYS/info/current_kb)" = "$(state_field current_kb)" ]
}
wait_for 60 at_rest
start_kb=$(cat $SYS/info/current_kb)
ktap_print_msg "data/ebb-state: '$(xenstore read data/ebb-state 2>&1)'"
published() {
    wait_field current_kb "$start_kb"
}
ktap_test_result "data/ebb-state is published once xenstore is up" published

down_kb=$((start_kb - 32768))
echo $down_kb > $SYS/target_kb
wait_field target_kb "$down_kb" state reached
cur=$(state_field current_kb)
ktap_print_msg "data/ebb-state: $(xenstore read data/ebb-state 2>&1)"
follows_down() {
    [ "$(state_field target_kb)" = "$down_kb" ] && [ "$cur" = "$down_kb" ]
}
ktap_test_result "data/ebb-state follows a balloon-down" follows_down

before=$(cat $SYS/target_kb)
guest_write_refused() {
    if xenstore write memory/target 65536 2>/dev/null; then
        ktap_print_msg "the store accepted the guest's write to memory/target"
        return 1
    fi
    sleep 1
    [ "$(cat $SYS/target_kb)" = "$before" ]
}
ktap_test_result "a guest write to memory/target is refused and changes nothing" guest_write_refused

# A malformed memory/target from the host is refused, counted and reported, and the
# target stays; the next well-formed one is taken. (xenbus_scanf("%llu"), as the C
# driver reads it, takes "12abc" as 12 KiB: the guest would balloon to its floor.)
target_before=$(cat $SYS/target_kb)
rejected_before=$(cat $SYS/ebb/rejected_targets)
ok=1
n=0
for v in 12abc -1 0x10000 +65536 65536k 99999999999999999999999 1.5; do
    if ! host_request xenstore-write memory/target "$v"; then
        ktap_print_msg "the host could not write '$v' to memory/target: $(host_output)"
        ok=0
        continue
    fi
    n=$((n + 1))
    i=0
    while [ "$(cat $SYS/ebb/rejected_targets)" != $((rejected_before + n)) ] && [ $i -lt 50 ]; do
        sleep 0.1
        i=$((i + 1))
    done
    got=$(cat $SYS/ebb/rejected_targets)
    if [ "$got" != $((rejected_before + n)) ] || [ "$(cat $SYS/target_kb)" != "$target_before" ]; then
        ktap_print_msg "memory/target '$v': rejected_targets $got (want $((rejected_before + n))), target_kb $(cat $SYS/target_kb) (was $target_before)"
        ok=0
    fi
done
dmesg_since "$log_mark" | grep -q 'memory/target "12abc" is not a decimal number' || {
    ktap_print_msg "no kernel message names the rejected value 12abc"; ok=0; }
# Written as a plain node (xl mem-set would refuse while memory/target holds junk):
# the boot target, which later tests start from.
host_request xenstore-write memory/target "$target0" || ok=0
wait_field target_kb "$target0" state reached || ok=0
malformed_refused() {
    [ $ok = 1 ] && [ "$(cat $SYS/target_kb)" = "$target0" ] &&
        [ "$(state_field rejected_targets)" = $((rejected_before + n)) ]
}
ktap_test_result "malformed host targets are refused, counted and logged; the target stays; a good one is taken" malformed_refused

# control/feature-balloon: ebbhv lets the guest create it; libxl creates no such node
# and the guest may not (EACCES): then ebb says so once and goes on.
feature_loaded=$(xenstore read control/feature-balloon 2>&1)
rmmod ebb
feature_unloaded=$(xenstore read control/feature-balloon 2>&1)
refusals=$(dmesg_since "$log_mark" | grep -c "the toolstack does not let the guest write control/feature-balloon")
feature_balloon() {
    { [ "$feature_loaded" = 1 ] && [ "$feature_unloaded" = 0 ] && [ "$refusals" = 0 ]; } ||
        { [ "${feature_loaded#*ENOENT}" != "$feature_loaded" ] && [ "$refusals" = 1 ]; }
}
ktap_test_result "control/feature-balloon is 1 while ebb is loaded and 0 after rmmod, or its refusal is reported once" feature_balloon
[ "$(mem_total_kb)" = "$mem_boot" ] || ktap_print_msg "MemTotal $(mem_total_kb) kB after rmmod, $mem_boot before"
ktap_finished
