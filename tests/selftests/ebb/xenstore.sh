#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# ebb.ko and xenstore, from inside the guest: ebb publishes its status in
# memory/ebb-state and keeps it current; a guest write to its own memory/target is
# refused by the store and changes nothing.
cd "$(dirname "$0")" || exit 1
. ./lib.sh


ktap_print_header

skip_all() {
    ktap_set_plan 1
    ktap_test_skip "ebb's xenstore status ($1)"
    ktap_finished
}
on_xen || skip_all "not on Xen: ebb.ko refuses to load"
[ -f "$EBB_KO" ] || skip_all "ebb.ko not installed"
command -v xenstore >/dev/null || skip_all "no xenstore tool in the guest"
[ -e /dev/xen/xenbus ] && timeout 10 xenstore read domid >/dev/null 2>&1 ||
    skip_all "xenstore does not answer (no /dev/xen/xenbus or no store)"
ktap_set_plan 3

ebb_loaded && rmmod ebb
mem_boot=$(mem_total_kb)
insmod "$EBB_KO" || ktap_exit_fail_msg "insmod failed"

# Reads one key=value field of memory/ebb-state.
state_field() {
    xenstore read memory/ebb-state 2>/dev/null | tr ' ' '\n' | sed -n "s/^$1=//p"
}

# Waits until memory/ebb-state has field $1 = $2 and, if given, field $3 = $4 in
# the same line (a status is written at the end of each worker run).
wait_field() {
    i=0
    while [ $i -lt 100 ]; do
        line=$(xenstore read memory/ebb-state 2>/dev/null | tr ' ' '\n')
        if echo "$line" | grep -qx "$1=$2" && { [ $# -lt 4 ] || echo "$line" | grep -qx "$3=$4"; }; then
            return 0
        fi
        sleep 0.1
        i=$((i + 1))
    done
    return 1
}

start_kb=$(cat $SYS/info/current_kb)
if wait_field current_kb "$start_kb"; then
    ktap_test_pass "memory/ebb-state is published once xenstore is up"
else
    ktap_print_msg "memory/ebb-state: '$(xenstore read memory/ebb-state 2>&1)'"
    ktap_test_fail "memory/ebb-state is published once xenstore is up"
fi

down_kb=$((start_kb - 32768))
echo $down_kb > $SYS/target_kb
wait_field target_kb "$down_kb" state reached
cur=$(state_field current_kb)
ktap_print_msg "memory/ebb-state: $(xenstore read memory/ebb-state 2>&1)"
if [ "$(state_field target_kb)" = "$down_kb" ] && within_extent "$cur" "$down_kb"; then
    ktap_test_pass "memory/ebb-state follows a balloon-down"
else
    ktap_test_fail "memory/ebb-state follows a balloon-down"
fi

before=$(cat $SYS/target_kb)
if xenstore write memory/target 65536 2>/dev/null; then
    ktap_print_msg "the store accepted the guest's write to memory/target"
    ktap_test_fail "a guest write to memory/target is refused and changes nothing"
else
    sleep 1
    if [ "$(cat $SYS/target_kb)" = "$before" ]; then
        ktap_test_pass "a guest write to memory/target is refused and changes nothing"
    else
        ktap_test_fail "a guest write to memory/target is refused and changes nothing"
    fi
fi

rmmod ebb
[ "$(mem_total_kb)" = "$mem_boot" ] || ktap_print_msg "MemTotal $(mem_total_kb) kB after rmmod, $mem_boot before"
ktap_finished
