#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# ebb.ko loads on Xen and refuses (-ENODEV, with a message) elsewhere; rmmod works;
# repeated load/unload (or refused loads) leave MemTotal and the module list as they
# were.
cd "$(dirname "$0")" || exit 1
. ./lib.sh

# In the debug kernel each unload waits out DEBUG_KOBJECT_RELEASE's delayed release
# of the sysfs device (1 to 4 s, on purpose): 6 cycles there show each path several
# times in a third of the time.
if [ -e /proc/lockdep ]; then
    CYCLES=6
else
    CYCLES=20
fi

ktap_print_header
ebb_require "loading ebb.ko" ebb.ko
ktap_set_plan 4

ebb_unload || ktap_exit_fail_msg "ebb was loaded and rmmod failed"

mem_before=$(mem_total_kb)
mods_before=$(loaded_modules)

if on_xen; then
    ktap_print_msg "running on Xen: ebb.ko must load"
    log_mark=$(kmsg_mark module.sh)
    loads() {
        ebb_load && ebb_loaded && dmesg_since "$log_mark" | grep -q "ebb: loaded on a Xen"
    }
    ktap_test_result "insmod on Xen loads the module and reports the domain type" loads
    unloads() { rmmod ebb && ! ebb_loaded; }
    ktap_test_result "rmmod unloads the module" unloads
    ktap_test_skip "refusal off Xen (running on Xen)"
    failed=0
    i=0
    while [ $i -lt $CYCLES ]; do
        ebb_load || { failed=1; break; }
        rmmod ebb || { failed=1; break; }
        i=$((i + 1))
    done
else
    ktap_print_msg "not on Xen: ebb.ko must refuse to load"
    ktap_test_skip "insmod on Xen loads the module (not on Xen)"
    ktap_test_skip "rmmod unloads the module (not on Xen)"
    log_mark=$(kmsg_mark module.sh)
    err=$(ebb_load 2>&1)
    status=$?
    ktap_print_msg "modprobe ebb: status $status: $err"
    refused() {
        [ $status -ne 0 ] && echo "$err" | grep -q "No such device" &&
            ! ebb_loaded && dmesg_since "$log_mark" | grep -q "ebb: not running on Xen"
    }
    ktap_test_result "insmod off Xen fails with ENODEV and says why" refused
    failed=0
    i=0
    while [ $i -lt $CYCLES ]; do
        ebb_load 2>/dev/null && { failed=1; break; }
        i=$((i + 1))
    done
fi

mem_after=$(mem_total_kb)
mods_after=$(loaded_modules)
ktap_print_msg "after $i cycles: MemTotal $mem_before -> $mem_after kB; modules '$mods_before' -> '$mods_after'"
unchanged() {
    [ $failed -eq 0 ] && [ "$mem_after" = "$mem_before" ] && [ "$mods_after" = "$mods_before" ]
}
ktap_test_result "$CYCLES load attempts leave MemTotal and the module list unchanged" unchanged

ktap_finished
