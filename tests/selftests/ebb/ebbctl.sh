#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# The host's control tool as the guest sees it: `ebbctl mem-set` changes
# memory/target as the guest reads it, and with ebb.ko loaded the balloon follows it
# until the hypervisor's count of the domain's pages (`ebbctl info`) agrees with the
# target; a bad mem-set is refused and changes nothing.
cd "$(dirname "$0")" || exit 1
. ./lib.sh


ktap_print_header
skip_all() {
    ktap_set_plan 1
    ktap_test_skip "ebbctl from the host ($1)"
    ktap_finished
}
on_xen || skip_all "not on Xen"
have_xenstore || skip_all "xenstore does not answer"
host_request ping || skip_all "no host agent answers (run under scripts/run-guest.sh)"
ktap_set_plan 4

target0=$(xenstore read memory/target)
new_mib=$((target0 / 1024 - 64))
host_request mem-set "$new_mib"
status=$?
seen=$(xenstore read memory/target)
if [ $status -eq 0 ] && [ "$seen" = $((new_mib * 1024)) ]; then
    ktap_test_pass "ebbctl mem-set ${new_mib}m: the guest reads memory/target = $seen"
else
    ktap_print_msg "ebbctl status $status; memory/target $target0 -> $seen"
    ktap_test_fail "ebbctl mem-set ${new_mib}m: the guest reads memory/target = $((new_mib * 1024))"
fi

# ebbctl refuses a bad size as a usage error (status 2); any other failure (125: the
# host agent never answered; 3, 4: no channel to the hypervisor) is not a refusal.
host_request mem-set 12x
status=$?
if [ $status -eq 2 ] && [ "$(xenstore read memory/target)" = "$seen" ]; then
    ktap_test_pass "a malformed mem-set is refused (ebbctl status 2) and changes nothing"
else
    ktap_print_msg "ebbctl status $status (want 2); memory/target $seen -> $(xenstore read memory/target)"
    ktap_test_fail "a malformed mem-set is refused (ebbctl status 2) and changes nothing"
fi

if [ ! -f "$EBB_KO" ]; then
    ktap_test_skip "the balloon follows mem-set (ebb.ko not installed)"
    ktap_test_skip "the balloon follows mem-set back up (ebb.ko not installed)"
    host_request mem-set "$((target0 / 1024))"
    ktap_finished
fi
ebb_loaded && rmmod ebb
tot_before=$(hv_tot_kb)
insmod "$EBB_KO" || ktap_exit_fail_msg "insmod failed"

# Waits until the balloon reports the target reached, then compares the guest's and
# the hypervisor's view of the domain's memory with the target.
follows() {
    want_kb=$1
    i=0
    while [ $i -lt 300 ] && [ "$(cat $SYS/target_kb)" != "$want_kb" ]; do
        sleep 0.1; i=$((i + 1))
    done
    i=0
    while [ $i -lt 300 ]; do
        cur=$(cat $SYS/info/current_kb)
        within_extent "$cur" "$want_kb" && break
        sleep 0.1; i=$((i + 1))
    done
    tot=$(hv_tot_kb)
    ktap_print_msg "target $want_kb kB: info/current_kb $cur, hypervisor tot_pages $tot kB (before insmod $tot_before kB)"
    within_extent "$cur" "$want_kb" &&
        within_extent "$((tot - (tot_before - target0)))" "$want_kb"
}

down_mib=$((target0 / 1024 - 128))
host_request mem-set "$down_mib"
if follows $((down_mib * 1024)); then
    ktap_test_pass "the balloon follows ebbctl mem-set ${down_mib}m, and ebbctl info agrees"
else
    ktap_test_fail "the balloon follows ebbctl mem-set ${down_mib}m, and ebbctl info agrees"
fi

host_request mem-set "$((target0 / 1024))"
if follows "$target0"; then
    ktap_test_pass "the balloon follows ebbctl mem-set back up, and ebbctl info agrees"
else
    ktap_test_fail "the balloon follows ebbctl mem-set back up, and ebbctl info agrees"
fi

rmmod ebb
ktap_finished
