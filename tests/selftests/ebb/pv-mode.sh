#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# The reservation engine as it runs on a PV guest (ebb.ko pv_mode=1 on this PVH
# guest): 4 KiB extents, 512 per hypercall, no memory hotplug. Ballooning down and up
# reaches the target with exactly one hypercall per 2 MiB, memory stays intact, and
# rmmod in the middle of ballooning (held there by `ebbctl fail-next`) restores
# MemTotal and tot_pages. What PV adds beyond this (the
# guest's own p2m and kernel mappings, through the kernel's xenmem_reservation
# helpers, which are no-ops here) is exercised under a real Xen PV domain.
cd "$(dirname "$0")" || exit 1
. ./lib.sh

ktap_print_header
ebb_require "the PV engine path" xen ebb.ko xenstore host
ktap_set_plan 6

ebb_unload
mem_boot=$(mem_total_kb)
tot_boot=$(hv_tot_kb)
log_mark=$(kmsg_mark pv-mode.sh)
ebb_start pv_mode=1
start_kb=$(cat $SYS/info/current_kb)

# 1. PV mode: no hotplug region, so a target above the boot size is clamped to it.
echo $((start_kb + 262144)) > $SYS/target_kb
state=$(wait_state)
ktap_print_msg "target +256 MiB: target_kb $(cat $SYS/target_kb), max_kb $(cat $SYS/ebb/max_kb), reason $(cat $SYS/ebb/reason), $(hotplug_files)"
clamped_no_hotplug() {
    dmesg_since "$log_mark" | grep -q "pv_mode: 4 KiB extents and no hotplug" &&
        [ "$(cat $SYS/ebb/max_kb)" = "$start_kb" ] && [ "$(cat $SYS/target_kb)" = "$start_kb" ] &&
        [ "$(cat $SYS/ebb/reason)" = clamped ] && [ "$(cat $SYS/ebb/hotplug_blocks)" = 0 ] &&
        [ "$state" = reached ]
}
ktap_test_result "pv_mode: no hotplug; a target above the boot size is clamped to it" clamped_no_hotplug

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
    moved_in_pages() {
        [ "$state" = reached ] && [ "$cur" = "$want_kb" ] && [ $hc = 32 ] &&
            [ $((mem_boot - mem)) = $((start_kb - want_kb)) ] &&
            [ $((tot_boot - tot)) = $((start_kb - want_kb)) ]
    }
    ktap_test_result "pv_mode balloon $step 64 MiB: exactly 32 hypercalls of 512 pages; MemTotal and tot_pages follow" moved_in_pages
done

# 4. Integrity: memcheck across two down/up rounds of 4 KiB ballooning.
# A step that does not reach its target to the page within 60 s fails the round's
# command, and with it memcheck.
cat > /tmp/ebb-pv-round.sh <<ROUND
. $PWD/lib.sh
step() {
    echo \$2 > $SYS/target_kb
    wait_for 60 reached_kb \$2
    status=\$?
    echo "# round \$1: \$3: \$(cat $SYS/ebb/state) at \$(cat $SYS/info/current_kb) KiB (target \$2)"
    [ \$status = 0 ] || exit 1
}
step \$1 $((start_kb - 131072 + 4)) down
step \$1 $start_kb up
ROUND
free_kb=$(free_kb)
out=$(memcheck $((free_kb * 5 / 10 / 1024)) 2 "sh /tmp/ebb-pv-round.sh \$1" 2>&1)
status=$?
echo "$out" | sed 's/^/# /'
intact() {
    [ $status = 0 ] && [ "$(echo "$out" | grep -c ' 0 of ')" = 2 ] &&
        [ "$(echo "$out" | grep -c ': reached at ')" = 4 ]
}
ktap_test_result "pv_mode: every page intact after 2 rounds of 4 KiB ballooning" intact

# 5. rmmod in the middle of ballooning down gives every page back (lib.sh's
# rmmod_mid_balloon): the first decrease of a 256 MiB balloon-down is cut after $CUT
# of its 512 pages.
CUT=300
if host_can_fail; then
    ktap_test_result "pv_mode: rmmod with the balloon stalled $CUT pages into a balloon-down restores MemTotal and tot_pages" \
        rmmod_mid_balloon "$start_kb" 262144 $CUT 4 "$mem_boot" "$tot_boot"
else
    ktap_test_skip "pv_mode: rmmod in the middle of ballooning (no host with fail-next to hold the worker: not ebbhv)"
    rmmod ebb
fi

ktap_test_result "no kernel warning in pv_mode" kernel_quiet_since "$log_mark"
ktap_finished
