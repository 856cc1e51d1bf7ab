#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# The domain's maximum at run time (`ebbctl mem-max`, as `xl mem-max` does: the host
# raises the hypervisor's limit and rewrites memory/static-max): ebb re-reads it, so
# a target above the boot maximum is reached by hotplug once the maximum allows it,
# and shrinking back removes the block it added. A lower maximum is no clamp: ebb
# keeps its highest known maximum and the hypervisor refuses what lies above.
cd "$(dirname "$0")" || exit 1
. ./lib.sh

ktap_print_header
ebb_require "the domain maximum at run time" xen ebb.ko xenstore host hotplug
ktap_set_plan 3

static_max0=$(xenstore read memory/static-max)
ebb_start_measured maxmem.sh
echo online_movable > $MEM/auto_online_blocks

# 1. Raise the maximum by one 128 MiB block past the boot maximum: ebb's highest
# target rises by exactly as much (the hypervisor's maximum may exceed static-max:
# libxl adds 1 MiB of slack).
max0=$(cat $SYS/ebb/max_kb)
new_max=$((static_max0 + 131072))
max1=$((max0 + 131072))
host_request mem-max "${new_max}k" || ktap_exit_fail_msg "ebbctl mem-max ${new_max}k failed: $(host_output)"
max_follows() {
    wait_for 10 eval '[ "$(cat $SYS/ebb/max_kb)" = "$max1" ]' &&
        dmesg_since "$log_mark" | grep -q "the domain's maximum is now $max1 KiB"
}
ktap_test_result "ebb/max_kb follows a raised maximum ($max0 -> $max1 KiB) and the log says so" max_follows
ktap_print_msg "max_kb $(cat $SYS/ebb/max_kb), want $max1"

# 2. Grow to the new maximum: past the boot maximum by hotplug, exactly.
host_request mem-set "${new_max}k" || ktap_print_msg "ebbctl mem-set ${new_max}k failed: $(host_output)"
state=$(wait_state "$new_max")
cur=$(cat $SYS/info/current_kb)
tot=$(hv_tot_kb)
ktap_print_msg "to $new_max KiB: state $state ($(cat $SYS/ebb/reason)), current $cur KiB, tot_pages $tot kB; $(hotplug_files)"
# Growth adds whole 2 MiB extents to what the domain held at insmod (which may be a
# few KiB short of its target: within one extent, so reached), in 128 MiB blocks.
grown=$(((new_max - tot_boot) / 2048 * 2048))
grown_past_boot_max() {
    [ "$state" = reached ] && [ "$cur" = $((tot_boot + grown)) ] &&
        [ "$tot" = "$cur" ] && [ "$(cat $SYS/ebb/hotplug_blocks)" = $(((grown + 131071) / 131072)) ] &&
        [ "$(cat $SYS/ebb/reason)" = none ]
}
ktap_test_result "a target past the boot maximum is reached by hotplug once the maximum allows it" grown_past_boot_max

# 3. Back to the boot size and maximum: every block is removed (on PV where ebb
# removes no block, the block stays and ballooning gives the memory back, 4 KiB
# frames, 512 per hypercall), and a lowered maximum leaves ebb's highest target where
# it was.
calls0=$(cat $SYS/ebb/hypercalls)
host_request mem-set "${target0}k" || ktap_print_msg "ebbctl mem-set ${target0}k failed: $(host_output)"
state=$(wait_state "$target0")
calls=$(($(cat $SYS/ebb/hypercalls) - calls0))
host_request mem-max "${static_max0}k" || ktap_print_msg "ebbctl mem-max ${static_max0}k failed: $(host_output)"
sleep 1
tot=$(hv_tot_kb)
ktap_print_msg "back: state $state, tot_pages $tot kB (boot $tot_boot), max_kb $(cat $SYS/ebb/max_kb), $calls reservation hypercalls; $(hotplug_files)"
# Back to what the domain held at insmod, or to the target where it held more (1 MiB
# of libxl's slack that an earlier test's rmmod took back).
back_kb=$tot_boot
[ "$tot_boot" -le "$target0" ] || back_kb=$target0
# The added blocks go in one shrink step, and their frames back in one hypercall (on
# PV, one per extent: the frame list holds 512 machine frames).
removal_calls=1
on_xen_pv && removal_calls=$((grown / 2048))
shrunk_back() {
    [ "$state" = reached ] && [ "$tot" = "$back_kb" ] && [ "$calls" = "$removal_calls" ] &&
        [ "$(cat $SYS/ebb/hotplug_blocks)" = 0 ] && [ "$(cat $SYS/ebb/max_kb)" = "$max1" ]
}
ballooned_back() {
    [ "$state" = reached ] && [ "$tot" = "$back_kb" ] &&
        [ "$calls" = $(((cur - back_kb + 2047) / 2048)) ] &&
        [ "$(cat $SYS/ebb/hotplug_blocks)" = $(((grown + 131071) / 131072)) ] &&
        [ "$(cat $SYS/ebb/max_kb)" = "$max1" ]
}
if ! ebb_removes_blocks; then
    ktap_test_result "PV: shrinking back balloons out what hotplug added, blocks kept; a lowered maximum is no clamp" ballooned_back
else
    ktap_test_result "shrinking back removes every added block, their frames in $removal_calls hypercalls; a lowered maximum is no clamp" shrunk_back
fi

rmmod ebb
echo "$online_policy" > $MEM/auto_online_blocks
ktap_finished
