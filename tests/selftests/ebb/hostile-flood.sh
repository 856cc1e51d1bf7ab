#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# A hostile guest kernel floods ebbhv with single 4 KiB populates scattered one per
# GiB over the guest-physical space, each needing its own p2m and nested tables (the
# ebb_hostile test module with flood=1): ebbhv charges those tables to the guest's
# memory pool and refuses the populate that would take the pool past its limit, long
# before the guest's maximum, instead of running out of memory itself. The guest
# keeps running; unloading the module gives every frame back, and the pool's p2m
# share with them.
cd "$(dirname "$0")" || exit 1
. ./lib.sh

WHAT="a populate flood stops at the guest's pool limit"
ktap_print_header
ebb_require "$WHAT" xen host
[ -n "$(modinfo -n ebb_hostile 2>/dev/null)" ] || skip_test "$WHAT" "ebb_hostile.ko not installed"
hv_info || ktap_exit_fail_msg "no ebbctl info"
tot0=$(hv tot_pages) max=$(hv max_pages) limit=$(hv mem_pool_limit)
used0=$(hv mem_pool_used) p2m0=$(hv mem_pool_p2m)
ktap_print_msg "before: tot_pages $tot0 of $max, pool $used0 of $limit bytes (p2m $p2m0)"

mark=$(kmsg_mark hostile-flood.sh)
modprobe ebb_hostile flood=1 2>/dev/null
loaded=$?
out=$(dmesg_since "$mark" | sed -n 's/^.*ebb_hostile: //p')
[ $loaded = 0 ] || {
    reason=$(echo "$out" | sed -n 's/^skip: //p' | head -n 1)
    [ -n "$reason" ] && skip_test "$WHAT" "$reason"
    ktap_exit_fail_msg "modprobe ebb_hostile flood=1 failed: $out"
}
ktap_set_plan 5
flooded=$(echo "$out" | sed -n 's/^flood: populated \([0-9]*\) .*/\1/p')
hv_info
tot1=$(hv tot_pages) used1=$(hv mem_pool_used) state1=$(hv state)
ktap_print_msg "flooded: $out"
ktap_print_msg "during: tot_pages $tot1, pool $used1 of $limit bytes (p2m $(hv mem_pool_p2m), nested tables $(hv mem_pool_nested_tables))"

# Each frame costs its tables (about 20 KiB); the flood stops when one more would
# not fit, with the guest far below its maximum.
stopped_at_pool() {
    [ -n "$flooded" ] && [ "$flooded" -gt 100 ] && [ "$tot1" = $((tot0 + flooded)) ] &&
        [ "$tot1" -lt "$max" ] && [ $((limit - used1)) -lt 65536 ] && [ "$used1" -le "$limit" ]
}
ktap_test_result "the flood is refused at the pool limit ($flooded frames), not at the guest's maximum" stopped_at_pool
running() { [ "$state1" = running ]; }
ktap_test_result "ebbhv still runs the domain and answers ebbctl" running
ktap_test_result "the guest's xenstore still answers" have_xenstore

rmmod ebb_hostile
given=$(dmesg_since "$mark" | sed -n 's/^.*ebb_hostile: flood: gave back \([0-9]*\) of .*/\1/p')
hv_info
tot2=$(hv tot_pages) used2=$(hv mem_pool_used) p2m2=$(hv mem_pool_p2m)
ktap_print_msg "after: gave back $given; tot_pages $tot2, pool $used2 bytes (p2m $p2m2, nested tables $(hv mem_pool_nested_tables))"
given_back() { [ "$given" = "$flooded" ] && [ "$tot2" = "$tot0" ]; }
ktap_test_result "unloading gives every frame back: tot_pages as before" given_back
# The p2m drops its empty tables; the nested tables keep theirs for reuse and stay
# charged, within the limit.
pool_back() { [ "$p2m2" = "$p2m0" ] && [ "$used2" -le "$limit" ] && [ "$used2" -lt "$used1" ]; }
ktap_test_result "the pool's p2m share is back where it was" pool_back
ktap_finished
