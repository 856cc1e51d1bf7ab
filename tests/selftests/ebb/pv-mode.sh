#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# The reservation engine as it runs on a PV guest (ebb.ko pv_mode=1 on this PVH
# guest): 4 KiB extents, 512 per hypercall, no memory hotplug. Ballooning down and up
# reaches the target with exactly one hypercall per 2 MiB, memory stays intact, and
# rmmod in the middle of ballooning restores MemTotal. What PV adds beyond this (the
# guest's own p2m and kernel mappings, through the kernel's xenmem_reservation
# helpers, which are no-ops here) is exercised under a real Xen PV domain.
cd "$(dirname "$0")" || exit 1
. ./lib.sh

ktap_print_header
require_ebbhv "the PV engine path"
ktap_set_plan 6

report() {
    if [ "$1" = 0 ]; then ktap_test_pass "$2"; else ktap_test_fail "$2"; fi
}

ebb_loaded && rmmod ebb
mem_boot=$(mem_total_kb)
tot_boot=$(hv_tot_kb)
log_mark=$(kmsg_mark pv-mode.sh)
insmod "$EBB_KO" pv_mode=1 || ktap_exit_fail_msg "insmod pv_mode=1 failed"
start_kb=$(cat $SYS/info/current_kb)

# 1. PV mode: no hotplug region, so a target above the boot size is clamped to it.
echo $((start_kb + 262144)) > $SYS/target_kb
state=$(wait_state)
ktap_print_msg "target +256 MiB: target_kb $(cat $SYS/target_kb), max_kb $(cat $SYS/ebb/max_kb), reason $(cat $SYS/ebb/reason), $(hotplug_files)"
dmesg_since "$log_mark" | grep -q "pv_mode: 4 KiB extents and no hotplug" &&
    [ "$(cat $SYS/ebb/max_kb)" -le $((start_kb + 2048)) ] &&
    [ "$(cat $SYS/ebb/reason)" = clamped ] && [ "$(cat $SYS/ebb/hotplug_blocks)" = 0 ] &&
    [ "$state" = reached ]
report $? "pv_mode: no hotplug; a target above the boot size is clamped to it"

# 2-3. Down by 64 MiB and back: 16384 pages in 4 KiB extents, 512 per hypercall.
for step in down up; do
    if [ $step = down ]; then want_kb=$((start_kb - 65536)); else want_kb=$start_kb; fi
    hc0=$(cat $SYS/ebb/hypercalls)
    echo $want_kb > $SYS/target_kb
    state=$(wait_state $want_kb)
    hc=$(($(cat $SYS/ebb/hypercalls) - hc0))
    cur=$(cat $SYS/info/current_kb)
    mem=$(mem_total_kb)
    tot=$(hv_tot_kb)
    ktap_print_msg "$step to $want_kb KiB: state $state, current $cur KiB, MemTotal $mem kB, tot_pages $tot kB, $hc hypercalls"
    [ "$state" = reached ] && [ "$cur" = "$want_kb" ] && [ $hc = 32 ] &&
        [ $((mem_boot - mem)) = $((start_kb - want_kb)) ] &&
        within_extent $((tot_boot - tot)) $((start_kb - want_kb))
    report $? "pv_mode balloon $step 64 MiB: exactly 32 hypercalls of 512 pages; MemTotal and tot_pages follow"
done

# 4. Integrity: memcheck across two down/up rounds of 4 KiB ballooning.
cat > /tmp/ebb-pv-round.sh <<ROUND
. $PWD/lib.sh
echo $((start_kb - 131072 + 4)) > $SYS/target_kb
echo "# round \$1: down: \$(wait_state $((start_kb - 131072 + 4))) at \$(cat $SYS/info/current_kb) KiB"
echo $start_kb > $SYS/target_kb
echo "# round \$1: up: \$(wait_state $start_kb) at \$(cat $SYS/info/current_kb) KiB"
ROUND
free_kb=$(free_kb)
out=$(memcheck $((free_kb * 5 / 10 / 1024)) 2 "sh /tmp/ebb-pv-round.sh \$1" 2>&1)
status=$?
echo "$out" | sed 's/^/# /'
[ $status = 0 ] && [ "$(echo "$out" | grep -c ' 0 of ')" = 2 ] &&
    [ "$(echo "$out" | grep -c ': reached at ')" = 4 ]
report $? "pv_mode: every page intact after 2 rounds of 4 KiB ballooning"

# 5. rmmod in the middle of ballooning down gives every page back.
echo $((start_kb - 262144)) > $SYS/target_kb
sleep 0.3
ktap_print_msg "rmmod while ballooning: current $(cat $SYS/info/current_kb) KiB, state $(cat $SYS/ebb/state)"
rmmod ebb
mem=$(mem_total_kb)
tot=$(hv_tot_kb)
ktap_print_msg "after rmmod: MemTotal $mem kB, tot_pages $tot kB"
! ebb_loaded && [ "$mem" = "$mem_boot" ] && within_extent "$tot" "$tot_boot"
report $? "pv_mode: rmmod while ballooning restores MemTotal and tot_pages"

! kernel_warned_since "$log_mark"
report $? "no kernel warning in pv_mode"
ktap_finished
