#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# ebb.ko loads on Xen and refuses (-ENODEV, with a message) elsewhere; rmmod works;
# repeated load/unload (or refused loads) leave MemTotal and the module list as they
# were.
cd "$(dirname "$0")" || exit 1
. ./lib.sh

CYCLES=20

ktap_print_header
ktap_set_plan 4

if [ ! -f "$EBB_KO" ]; then
    ktap_skip_all "ebb.ko not installed at $EBB_KO"
    exit "$KSFT_SKIP"
fi
if ebb_loaded; then
    rmmod ebb || ktap_exit_fail_msg "ebb was loaded and rmmod failed"
fi

mem_before=$(mem_total_kb)
mods_before=$(loaded_modules)

if on_xen; then
    ktap_print_msg "running on Xen: ebb.ko must load"
    log_mark=$(kmsg_mark module.sh)
    if insmod "$EBB_KO" && ebb_loaded && dmesg_since "$log_mark" | grep -q "ebb: loaded on a Xen"; then
        ktap_test_pass "insmod on Xen loads the module and reports the domain type"
    else
        ktap_test_fail "insmod on Xen loads the module and reports the domain type"
    fi
    if rmmod ebb && ! ebb_loaded; then
        ktap_test_pass "rmmod unloads the module"
    else
        ktap_test_fail "rmmod unloads the module"
    fi
    ktap_test_skip "refusal off Xen (running on Xen)"
    failed=0
    i=0
    while [ $i -lt $CYCLES ]; do
        insmod "$EBB_KO" || { failed=1; break; }
        rmmod ebb || { failed=1; break; }
        i=$((i + 1))
    done
else
    ktap_print_msg "not on Xen: ebb.ko must refuse to load"
    ktap_test_skip "insmod on Xen loads the module (not on Xen)"
    ktap_test_skip "rmmod unloads the module (not on Xen)"
    log_mark=$(kmsg_mark module.sh)
    err=$(insmod "$EBB_KO" 2>&1)
    status=$?
    if [ $status -ne 0 ] && echo "$err" | grep -q "No such device" &&
        ! ebb_loaded && dmesg_since "$log_mark" | grep -q "ebb: not running on Xen"; then
        ktap_test_pass "insmod off Xen fails with ENODEV and says why"
    else
        ktap_print_msg "insmod status $status: $err"
        ktap_test_fail "insmod off Xen fails with ENODEV and says why"
    fi
    failed=0
    i=0
    while [ $i -lt $CYCLES ]; do
        insmod "$EBB_KO" 2>/dev/null && { failed=1; break; }
        i=$((i + 1))
    done
fi

mem_after=$(mem_total_kb)
mods_after=$(loaded_modules)
if [ $failed -eq 0 ] && [ "$mem_after" = "$mem_before" ] && [ "$mods_after" = "$mods_before" ]; then
    ktap_test_pass "$CYCLES load attempts leave MemTotal and the module list unchanged"
else
    ktap_print_msg "after $i cycles: MemTotal $mem_before -> $mem_after kB; modules '$mods_before' -> '$mods_after'"
    ktap_test_fail "$CYCLES load attempts leave MemTotal and the module list unchanged"
fi

ktap_finished
