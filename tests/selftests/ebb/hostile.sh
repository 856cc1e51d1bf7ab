#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# A hostile user process (issue 13): every hypercall number 0..63, made with VMMCALL
# from user space with kernel addresses and other garbage as arguments, must come back
# -EPERM (only the guest's kernel may call, as in Xen's hvm_hypercall), and the guest,
# its memory and the hypervisor must be as before. tests/guest/vmmcall.c makes the
# calls, as nobody. On plain QEMU VMMCALL raises #UD: the test skips.
cd "$(dirname "$0")" || exit 1
. ./lib.sh

WHAT="hypercalls from user space are refused"

ktap_print_header
ebb_require "$WHAT" vmmcall
# Off Xen the only question is whether there is a hypervisor at all; asking the host
# agent first would cost its minute of waiting.
if ! on_xen; then
    vmmcall >/dev/null 2>&1
    status=$?
    [ $status = 4 ] && skip_test "$WHAT" "no hypervisor: VMMCALL raised #UD"
    skip_test "$WHAT" "not on Xen, vmmcall exited $status"
fi
ebb_require "$WHAT" host
ktap_set_plan 4

mem_before=$(mem_total_kb)
# hv_info here, not in a $(...) subshell: hv reads the HV_INFO it leaves.
hv_info || ktap_exit_fail_msg "ebbctl info failed before the calls"
tot_before=$(($(hv tot_pages) * 4))
# ebbhv counts refused calls (hc_refused_user, listed even when 0); Xen's dom0 agent
# has no such counter.
refused_before=$(hv hc_refused_user)
counted=0
case "$HV_INFO" in *hc_refused_user=*) counted=1 ;; esac
log_mark=$(kmsg_mark hostile.sh)

out=$(vmmcall 2>&1)
status=$?
echo "$out" | while read -r line; do ktap_print_msg "$line"; done
calls=$(echo "$out" | sed -n 's/^vmmcall: [0-9]* of \([0-9]*\) calls.*/\1/p')

all_eperm() { [ $status = 0 ] && [ -n "$calls" ]; }
ktap_test_result "every hypercall from user space returns -EPERM" all_eperm

# A status above 128 is the program killed by a signal: a fault the hypervisor
# injected or a kernel it broke.
alive() { [ $status -lt 128 ] && kernel_quiet_since "$log_mark"; }
ktap_test_result "the process and the guest's kernel live on" alive

mem_after=$(mem_total_kb)
if hv_info; then
    answered=1
    tot_after=$(($(hv tot_pages) * 4))
    refused_after=$(hv hc_refused_user)
else
    answered=0
    tot_after=none
    refused_after=none
fi
ktap_print_msg "MemTotal $mem_before -> $mem_after kB, tot_pages $tot_before -> $tot_after KiB"
unchanged() {
    [ "$mem_after" = "$mem_before" ] && [ "$tot_after" = "$tot_before" ]
}
ktap_test_result "MemTotal and the hypervisor's tot_pages unchanged" unchanged

ktap_print_msg "hypervisor: $calls calls made, refused_user $refused_before -> $refused_after"
answers() {
    [ $answered = 1 ] || return 1
    [ $counted = 0 ] || [ $((refused_after - refused_before)) = "$calls" ]
}
ktap_test_result "the hypervisor still answers (and counted each call as refused)" answers

ktap_finished
