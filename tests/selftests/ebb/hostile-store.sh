#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# A hostile guest floods xenstore (issue 13): 2 KiB nodes until the store refuses one
# (its node or memory quota), a listing of the flooded directory longer than a reply
# may be (XENSTORE_PAYLOAD_MAX: E2BIG), then transactions until refused (each one
# works on a copy of the tree, which the guest pays for: EQUOTA under ebbhv). The
# hypervisor must still answer `ebbctl info`, with the guest's memory pool, xenstore
# share included, under its limit; once the flood is removed the store serves the
# guest again. tests/guest/xenstore.c makes the requests through /dev/xen/xenbus.
cd "$(dirname "$0")" || exit 1
. ./lib.sh

WHAT="xenstore floods end in a quota error"
FLOOD=data/flood

ktap_print_header
ebb_require "$WHAT" xen xenstore host
ktap_set_plan 5

# A quota error as Xen's xenstored and ebbhv name them.
is_quota_error() {
    case "$1" in ENOSPC | EQUOTA | ENOMEM | E2BIG) return 0 ;; esac
    return 1
}

out=$(xenstore flood $FLOOD)
status=$?
ktap_print_msg "$out"
flood_error=$(echo "$out" | sed -n 's/^flood: [0-9]* nodes written, then \([A-Z0-9]*\)$/\1/p')
nodes=$(echo "$out" | sed -n 's/^flood: \([0-9]*\) nodes written.*/\1/p')
flood_refused() { [ $status = 0 ] && is_quota_error "$flood_error" && [ "$nodes" -gt 0 ]; }
ktap_test_result "a flood of 2 KiB nodes ends in a quota error" flood_refused

ls_out=$(xenstore ls $FLOOD 2>&1)
ls_status=$?
ktap_print_msg "ls $FLOOD ($nodes children): status $ls_status, $(echo "$ls_out" | tail -n 1)"
# The names n0, n1, ... take 4890 bytes with their NULs for 990 children; a reply
# carries at most 4096.
listing_too_big() {
    if [ "$nodes" -lt 900 ]; then
        ktap_print_msg "only $nodes children: the listing fits a reply"
        return 1
    fi
    [ $ls_status = 1 ] && echo "$ls_out" | grep -q ': E2BIG$'
}
ktap_test_result "listing the flooded directory is E2BIG" listing_too_big

out=$(xenstore transactions)
status=$?
ktap_print_msg "$out"
tx_error=$(echo "$out" | sed -n 's/^transactions: [0-9]* started, then \([A-Z0-9]*\)$/\1/p')

# hv_info here, not in a $(...) subshell: hv reads the HV_INFO it leaves.
if hv_info; then
    answered=1
    limit=$(hv mem_pool_limit)
    used=$(hv mem_pool_used)
    store=$(hv mem_pool_xenstore)
    ktap_print_msg "memory pool: $used of $limit bytes, xenstore $store; ebbhv's pool $(hv hv_pool_free_bytes) of $(hv hv_pool_bytes) bytes free"
else
    answered=0
fi
on_ebbhv=0
case "$HV_INFO" in *mem_pool_limit=*) on_ebbhv=1 ;; esac

transactions_refused() {
    [ $status = 0 ] || return 1
    if [ $on_ebbhv = 1 ]; then
        [ "$tx_error" = EQUOTA ]
    else
        is_quota_error "$tx_error"
    fi
}
ktap_test_result "transactions over the flood end in a quota error (EQUOTA under ebbhv)" \
    transactions_refused

pool_bounded() {
    [ $answered = 1 ] || return 1
    [ $on_ebbhv = 1 ] || return 0
    [ "$used" -le "$limit" ] && [ "$store" -gt 0 ] && [ "$(hv hv_pool_free_bytes)" -gt 0 ]
}
ktap_test_result "ebbctl info answers, the guest's memory pool under its limit" pool_bounded

xenstore rm $FLOOD
rm_status=$?
served_again() {
    [ $rm_status = 0 ] || return 1
    xenstore write data/after-flood 1 && [ "$(xenstore read data/after-flood)" = 1 ] &&
        xenstore rm data/after-flood || return 1
    [ $on_ebbhv = 1 ] || return 0
    hv_info || return 1
    ktap_print_msg "after the flood: xenstore $(hv mem_pool_xenstore) bytes"
    [ "$(hv mem_pool_xenstore)" -lt "$store" ]
}
ktap_test_result "the flood removed, the store serves the guest again" served_again

ktap_finished
