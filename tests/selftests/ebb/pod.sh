#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Populate-on-demand (a Xen PVH/HVM domU whose memory is below its maxmem): the guest's
# memory map covers maxmem but Xen backs only `memory`, and a guest that touches more
# is killed. After insmod ebb balloons the difference out: the domain then holds
# exactly its target, as ebb and the hypervisor count it, and a program that touches
# all the free memory runs to the end with its pages intact (the domain lives).
cd "$(dirname "$0")" || exit 1
. ./lib.sh

ktap_print_header
require_ebbhv "populate-on-demand"
command -v memcheck >/dev/null || skip_test "populate-on-demand" "no memcheck"
target0=$(xenstore read memory/target)
[ "$(mem_total_kb)" -gt "$target0" ] ||
    skip_test "populate-on-demand" "not a populate-on-demand domain: MemTotal $(mem_total_kb) kB is within memory/target $target0 KiB"
ktap_set_plan 3

ebb_loaded && rmmod ebb
static_max=$(xenstore read memory/static-max)
mem_boot=$(mem_total_kb)
log_mark=$(kmsg_mark pod.sh)
insmod "$EBB_KO" || ktap_exit_fail_msg "insmod failed"

# 1. The unbacked part goes out at once: ebb counts the guest as holding static-max
# and reaches the target to the page; the hypervisor's count agrees.
state=$(wait_state "$target0")
cur=$(cat $SYS/info/current_kb)
tot=$(hv_tot_kb)
ktap_print_msg "MemTotal $mem_boot kB at boot, static-max $static_max KiB, target $target0 KiB: $state, current $cur KiB, tot_pages $tot kB, ballooned $(cat $SYS/ebb/ballooned_pages) pages"
if [ "$state" = reached ] && [ "$cur" = "$target0" ] && [ "$tot" = "$target0" ] &&
    [ "$(cat $SYS/ebb/ballooned_pages)" = $(((static_max - target0) / 4)) ] &&
    dmesg_since "$log_mark" | grep -q "populate-on-demand: the memory map holds $static_max KiB"; then
    ktap_test_pass "after insmod the domain holds exactly its target: ebb and the hypervisor agree"
else
    ktap_test_fail "after insmod the domain holds exactly its target: ebb and the hypervisor agree"
fi

# 2. Touch all the free memory but a little: without the balloon this kills the domain
# ("PoD out of memory"); with it every page is there and intact.
fill_mib=$((($(free_kb) - 16384) / 1024))
out=$(memcheck "$fill_mib" 1 true 2>&1)
status=$?
echo "$out" | while read -r line; do ktap_print_msg "memcheck: $line"; done
if [ $status = 0 ] && echo "$out" | grep -q ": 0 of .* pages mismatch"; then
    ktap_test_pass "a program touching all $fill_mib MiB of free memory runs to the end, every page intact"
else
    ktap_test_fail "a program touching all $fill_mib MiB of free memory runs to the end, every page intact"
fi

# 3. rmmod gives the ballooned part back, backed this time: the guest has its whole
# memory map.
rmmod ebb
mem=$(mem_total_kb)
tot=$(hv_tot_kb)
ktap_print_msg "after rmmod: MemTotal $mem kB (boot $mem_boot), tot_pages $tot kB"
if [ "$mem" = "$mem_boot" ] && [ "$tot" -ge "$static_max" ]; then
    ktap_test_pass "rmmod gives the whole memory map back, backed"
else
    ktap_test_fail "rmmod gives the whole memory map back, backed"
fi
ktap_finished
