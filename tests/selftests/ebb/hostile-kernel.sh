#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# A hostile guest kernel (issue 13): the ebb_hostile test module makes raw hypercalls
# and MSR writes from CPL 0 (tests/guest/hostile/hostile_main.rs): buffers that are
# non-canonical, run past the end of RAM, or lie in a non-RAM frame the guest mapped
# (the end of its last System RAM range, from /proc/iomem), or lie behind page
# tables the module builds with bit 50 set in their PML4 entry, a 2 GiB console write,
# event channel ports past 4096, closing the xenstore port, HVMOP_set_param on read-only params, an
# exchange whose output array wraps (XSA-212's shape), EFER and PAT values VMRUN
# refuses. Each check is one KTAP result with the exact error; then the guest's
# kernel must be quiet, xenstore must answer and ebbhv must still answer ebbctl info
# with the domain running. The module runs only under ebbhv (a real Xen answers some
# of these differently): elsewhere it refuses to load and the test skips.
cd "$(dirname "$0")" || exit 1
. ./lib.sh

WHAT="a hostile guest kernel"

ktap_print_header
ebb_require "$WHAT" xen
[ -n "$(modinfo -n ebb_hostile 2>/dev/null)" ] || skip_test "$WHAT" "ebb_hostile.ko not installed"
last_ram=$(sed -n 's/^\([0-9a-f]*\)-\([0-9a-f]*\) : System RAM$/\2/p' /proc/iomem | tail -n 1)
[ -n "$last_ram" ] || ktap_exit_fail_msg "no System RAM in /proc/iomem"
ram_end=$(printf '0x%x' $((0x$last_ram + 1)))
mark=$(kmsg_mark hostile-kernel.sh)
hostile_load "$mark" ram_end="$ram_end"
out=$HOSTILE_OUT
plan=$(echo "$out" | sed -n 's/^plan \([0-9]*\)$/\1/p')
[ -n "$plan" ] || ktap_exit_fail_msg "ebb_hostile printed no plan: $out"
ktap_set_plan $((plan + 3))

# A here-document, not a pipe: the results must count in this shell.
while read -r line; do
    case "$line" in
    "ok "*) ktap_test_pass "${line#ok [0-9]* }" ;;
    "not ok "*) ktap_test_fail "${line#not ok [0-9]* }" ;;
    esac
done <<END
$(echo "$out" | grep -E '^(not )?ok [0-9]+ ')
END

ktap_test_result "the guest's kernel logged no warning" kernel_quiet_since "$mark"
ktap_test_result "xenstore still answers (its port was not closed)" have_xenstore
running() {
    hv_info && [ "$(hv state)" = running ]
}
ktap_test_result "ebbhv answers ebbctl info, the domain running" running

ktap_finished
