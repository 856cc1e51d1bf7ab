#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# A hostile guest kernel (issue 13): the ebb_hostile test module makes raw hypercalls
# and MSR writes from CPL 0 (tests/guest/hostile/hostile_main.rs): buffers that are
# non-canonical, run past the end of RAM, or lie in a non-RAM frame the guest mapped
# (the end of its last System RAM range, from /proc/iomem), or lie behind page
# tables the module builds with bit 50 set in their PML4 entry, a 2 GiB console write,
# event channel ports past 4096, closing the xenstore port, HVMOP_set_param on read-only params, an
# exchange whose output array wraps (XSA-212's shape), EFER and PAT values VMRUN
# refuses; populates whose mem_flags ask for an exact or missing NUMA node or memory
# below 1 MiB (XSA-231's class: 0 done); decrease_reservation and remove_from_physmap
# of the xenstore ring (XSA-277's class: refused); and a storm of set_timer_op,
# VCPUOP_set_singleshot_timer and vcpu_op calls (bad vCPUs, unknown commands) with
# distinct arguments. Each check is one KTAP result with the exact error. Then the
# module is loaded again to run only the storm, with arguments not used before:
# ebbhv's statistics (the hc_* keys of ebbctl info) must have no more keys after it
# than before, a `sleep 1` must return with /proc/uptime a second further, the
# guest's kernel must be quiet, xenstore must answer (its ring still mapped) and
# ebbhv must still answer ebbctl info with the domain running. The module runs only
# under ebbhv (a real Xen answers some of these differently): elsewhere it refuses
# to load and the test skips.
cd "$(dirname "$0")" || exit 1
. ./lib.sh

WHAT="a hostile guest kernel"

ktap_print_header
ebb_require "$WHAT" xen
[ -n "$(modinfo -n ebb_hostile 2>/dev/null)" ] || skip_test "$WHAT" "ebb_hostile.ko not installed"
last_ram=$(sed -n 's/^\([0-9a-f]*\)-\([0-9a-f]*\) : System RAM$/\2/p' /proc/iomem | tail -n 1)
[ -n "$last_ram" ] || ktap_exit_fail_msg "no System RAM in /proc/iomem"
ram_end=$(printf '0x%x' $((0x$last_ram + 1)))
# The number of statistics keys ebbctl info shows, after hv_info.
hc_keys() {
    echo "$HV_INFO" | grep -c '^hc_'
}
# ebb_hostile's plan in its output $1.
plan_of() {
    echo "$1" | sed -n 's/^plan \([0-9]*\)$/\1/p'
}

mark=$(kmsg_mark hostile-kernel.sh)
hostile_load "$mark" ram_end="$ram_end"
first_mark=$mark
out=$HOSTILE_OUT
plan=$(plan_of "$out")
[ -n "$plan" ] || ktap_exit_fail_msg "ebb_hostile printed no plan: $out"
# The checks' storm made the keys its calls count under; a second storm with new
# arguments must add none.
hv_info || ktap_exit_fail_msg "ebbctl info failed after the checks"
keys_before=$(hc_keys)
mark=$(kmsg_mark hostile-kernel.sh storm)
hostile_load "$mark" storm_only=1
out="$out
$HOSTILE_OUT"
storm_plan=$(plan_of "$HOSTILE_OUT")
[ -n "$storm_plan" ] || ktap_exit_fail_msg "ebb_hostile storm_only printed no plan: $HOSTILE_OUT"
hv_info || ktap_exit_fail_msg "ebbctl info failed after the storm"
keys_after=$(hc_keys)
ktap_set_plan $((plan + storm_plan + 5))

ktap_relay_results "$out"

keys_kept() {
    [ "$keys_after" -eq "$keys_before" ] && return 0
    echo "hc_* keys: $keys_before before the second storm, $keys_after after" >&2
    return 1
}
ktap_test_result "a storm with new arguments adds no statistics key" keys_kept
# The storm replaced the kernel's next timer event many times over; its timer must
# still fire.
slept_a_second() {
    local before after
    before=$(cut -d ' ' -f 1 /proc/uptime)
    sleep 1
    after=$(cut -d ' ' -f 1 /proc/uptime)
    awk -v a="$before" -v b="$after" 'BEGIN { exit !(b - a >= 1) }' && return 0
    echo "uptime $before before sleep 1, $after after" >&2
    return 1
}
ktap_test_result "sleep 1 returns, uptime a second further" slept_a_second
ktap_test_result "the guest's kernel logged no warning" kernel_quiet_since "$first_mark"
ktap_test_result "xenstore still answers (its port open, its ring mapped)" have_xenstore
running() {
    hv_info && [ "$(hv state)" = running ]
}
ktap_test_result "ebbhv answers ebbctl info, the domain running" running

ktap_finished
