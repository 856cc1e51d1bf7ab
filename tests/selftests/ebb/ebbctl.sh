#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# The host's control tool as the guest sees it: `ebbctl mem-set` changes
# memory/target as the guest reads it, and with ebb.ko loaded the balloon follows it
# until the hypervisor's count of the domain's pages (`ebbctl info`) agrees with the
# target; a bad mem-set is refused and changes nothing.
cd "$(dirname "$0")" || exit 1
. ./lib.sh

ktap_print_header
ebb_require "ebbctl from the host" xen xenstore host
ktap_set_plan 4

target0=$(xenstore read memory/target)
new_mib=$((target0 / 1024 - 64))
host_request mem-set "$new_mib"
status=$?
seen=$(xenstore read memory/target)
ktap_print_msg "ebbctl status $status; memory/target $target0 -> $seen"
set_seen() { [ $status -eq 0 ] && [ "$seen" = $((new_mib * 1024)) ]; }
ktap_test_result "ebbctl mem-set ${new_mib}m: the guest reads memory/target = $((new_mib * 1024))" set_seen

# ebbctl refuses a bad size as a usage error (status 2); any other failure (125: the
# host agent never answered; 3, 4: no channel to the hypervisor) is not a refusal.
host_request mem-set 12x
status=$?
ktap_print_msg "ebbctl status $status (want 2); memory/target $seen -> $(xenstore read memory/target)"
refused() { [ $status -eq 2 ] && [ "$(xenstore read memory/target)" = "$seen" ]; }
ktap_test_result "a malformed mem-set is refused (ebbctl status 2) and changes nothing" refused

if [ -z "$(ebb_ko)" ]; then
    ktap_test_skip "the balloon follows mem-set (ebb.ko not installed)"
    ktap_test_skip "the balloon follows mem-set back up (ebb.ko not installed)"
    host_request mem-set "$((target0 / 1024))"
    ktap_finished
fi
ebb_unload
tot_before=$(hv_tot_kb)
ebb_start

# Waits until the balloon reports target $1 KiB reached, holding what it reaches it
# at to the page, then checks that the hypervisor's count of the domain's pages agrees
# to the page. Up to what the domain held at insmod ($tot_before), ballooning reaches
# a target to the 4 KiB page; above it only hotplug can add, in whole 2 MiB extents,
# so the target is reached at the last whole extent (under ebbhv the domain boots
# 24 KiB short of memory/target, and the boot target is reached at tot_before).
follows() {
    want_kb=$1
    at_kb=$want_kb
    [ "$want_kb" -le "$tot_before" ] || at_kb=$((tot_before + (want_kb - tot_before) / 2048 * 2048))
    wait_for 30 reached_kb "$at_kb"
    state=$(cat $SYS/ebb/state)
    cur=$(cat $SYS/info/current_kb)
    tot=$(hv_tot_kb)
    ktap_print_msg "target $want_kb kB (reached at $at_kb): state $state, info/current_kb $cur, hypervisor tot_pages $tot kB (before insmod $tot_before kB)"
    [ "$state" = reached ] && [ "$(cat $SYS/target_kb)" = "$want_kb" ] && [ "$cur" = "$at_kb" ] &&
        [ "$tot" = "$at_kb" ]
}

down_mib=$((target0 / 1024 - 128))
host_request mem-set "$down_mib"
ktap_test_result "the balloon follows ebbctl mem-set ${down_mib}m, and ebbctl info agrees" \
    follows $((down_mib * 1024))

host_request mem-set "$((target0 / 1024))"
ktap_test_result "the balloon follows ebbctl mem-set back up, and ebbctl info agrees" follows "$target0"

rmmod ebb
ktap_finished
