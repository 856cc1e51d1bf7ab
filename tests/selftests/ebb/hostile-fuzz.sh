#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# A fuzzer inside the guest (issue 13): the ebb_hostile test module makes random
# hypercalls with random arguments from the kernel for 60 s (fuzz_secs=60; which
# calls and why only those: `fuzz` in tests/guest/hostile/hostile_main.rs). Then the
# guest's kernel must be quiet, xenstore must answer, and ebbhv must answer ebbctl
# info with the domain running. Runs only under ebbhv, as hostile-kernel.sh.
cd "$(dirname "$0")" || exit 1
. ./lib.sh

WHAT="an in-guest fuzzer"
FUZZ_SECS=60

ktap_print_header
ebb_require "$WHAT" xen
[ -n "$(modinfo -n ebb_hostile 2>/dev/null)" ] || skip_test "$WHAT" "ebb_hostile.ko not installed"
mark=$(kmsg_mark hostile-fuzz.sh)
hostile_load "$mark" fuzz_secs=$FUZZ_SECS
out=$HOSTILE_OUT
ktap_set_plan 4

done_line=$(echo "$out" | grep '^fuzz: done, ')
ktap_print_msg "${done_line:-the fuzzer printed no result}"
calls=$(echo "$done_line" | sed -n 's/^fuzz: done, \([0-9]*\) calls in \([0-9]*\) s.*/\1 \2/p')
fuzzed() { [ -n "$calls" ] && [ "${calls% *}" -gt 0 ] && [ "${calls#* }" = $FUZZ_SECS ]; }
ktap_test_result "$FUZZ_SECS s of random hypercalls from the kernel" fuzzed
ktap_test_result "the guest's kernel logged no warning" kernel_quiet_since "$mark"
ktap_test_result "xenstore still answers" have_xenstore
running() {
    hv_info && [ "$(hv state)" = running ] && ktap_print_msg "ebbhv heap_hypervisor $(hv heap_hypervisor) frames"
}
ktap_test_result "ebbhv answers ebbctl info, the domain running" running

ktap_finished
