#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# The balloon when the hypervisor, not the guest, says no: the host lowers the
# domain's maximum (`ebbctl mem-max`) below what taking the balloon back needs.
# - A target above the maximum stalls with reason enomem_hypervisor (in sysfs and in
#   xenstore for the host), the domain sits exactly at its maximum, the worker backs
#   off instead of spinning, and once the maximum is raised the balloon reaches the
#   target without being asked again.
# - rmmod with pages the hypervisor will not back waits and says so; when the host
#   relents it gives everything back; when it never fully does, rmmod says how many
#   pages stay out, and the guest's and the hypervisor's counts stay in step.
# - A malformed mem-max is refused with a clear message and changes nothing.
# The host's maximum never goes below memory/target (as libxl requires of
# `xl mem-max`): the guest itself asks for more through sysfs. mem-max and
# memory/target are restored at the end.
cd "$(dirname "$0")" || exit 1
. ./lib.sh

SYS=/sys/devices/system/xen_memory/xen_memory0
# Seconds of each CPU measurement (an idle baseline, then the same while stalled).
WATCH_S=8
# The worker's longest backoff while stalled, so that recovery is quick to see.
MAX_DELAY_S=4
DRAIN_WARN="unload: the hypervisor backs none"
DRAIN_LEFT="still ballooned"

ktap_print_header
ebb_require "balloon against the hypervisor's maximum" xen ebb.ko xenstore host
ktap_set_plan 15

dmesg_count() { dmesg | grep -c "$1"; }
dmesg_more() { [ "$(dmesg_count "$1")" -gt "$2" ]; }
running() { kill -0 "$1" 2>/dev/null; }
not_running() { ! running "$1"; }
# CPU time of the whole guest (user+nice+system+irq+softirq, USER_HZ ticks).
busy() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 }' /proc/stat; }

ebb_unload
mem_boot=$(mem_total_kb)
hv_info || ktap_exit_fail_msg "ebbctl info failed"
tot0=$(($(hv tot_pages) * 4))
max_pages0=$(hv max_pages)
static_max0=$(hv static_max_kib)
target0=$(xenstore read memory/target)
ktap_print_msg "before: MemTotal $mem_boot kB, tot_pages $tot0 kB, max_pages $max_pages0, static-max $static_max0 kB, memory/target $target0 kB"

# Puts the host's view back as it was, or as consistent as a lost page allows:
# memory/target follows whatever the domain could not get back.
RESTORED=
restore() {
    [ -n "$RESTORED" ] && return
    RESTORED=1
    host_request mem-max "${static_max0}k"
    tot_end=$(hv_tot_kb)
    host_request mem-set "$((target0 - (tot0 - tot_end)))k"
}
trap restore EXIT

# --- Bad input: refused with a message, nothing changes.
# ebbctl's own parser and, through `raw`, the hypervisor's.
bad_mem_max() {
    want_status=$1 want_text=$2
    shift 2
    host_request "$@"
    status=$?
    out=$(host_output)
    hv_info
    static_now=$(xenstore read memory/static-max)
    ktap_print_msg "status $status (want $want_status), output '$out', max_pages $(hv max_pages), static-max $static_now"
    refused_unchanged() {
        [ $status -eq "$want_status" ] && echo "$out" | grep -q "$want_text" &&
            [ "$(hv max_pages)" = "$max_pages0" ] && [ "$static_now" = "$static_max0" ]
    }
    ktap_test_result "ebbctl $* is refused (status $want_status) and changes nothing" refused_unchanged
}
bad_mem_max 2 "bad size" mem-max 12x
bad_mem_max 2 "bad size" mem-max -1
bad_mem_max 2 "bad size" mem-max 99999999999999999999
bad_mem_max 1 "EINVAL.*non-zero multiple of 4 KiB" mem-max 0
bad_mem_max 1 "EINVAL.*non-zero multiple of 4 KiB" mem-max 6k
bad_mem_max 1 "EINVAL.*expected a number" raw mem-max 12x

# --- enomem_hypervisor while the worker runs.
ebb_start
echo $MAX_DELAY_S > $SYS/max_schedule_delay
wait_for 30 state_is reached
start_kb=$(cat $SYS/info/current_kb)
# 256 MiB in 2 MiB runs, so that the last run ballooned is one: the stall and rmmod's
# first attempt then fall back from 2 MiB to 4 KiB populates.
down_kb=$((start_kb - 262144))
host_request mem-set "${down_kb}k" || ktap_exit_fail_msg "ebbctl mem-set failed"
wait_for 60 reached_kb $down_kb || ktap_exit_fail_msg "the balloon did not reach $down_kb kB"

busy0=$(busy)
sleep $WATCH_S
idle_ticks=$(($(busy) - busy0))

# Room for 64 MiB of the 256 MiB in the balloon.
squeeze_kb=$((down_kb + 65536))
host_request mem-max "${squeeze_kb}k" || ktap_exit_fail_msg "ebbctl mem-max failed"
echo "$start_kb" > $SYS/target_kb
wait_for 30 state_is stalled
state=$(cat $SYS/ebb/state)
reason=$(cat $SYS/ebb/reason)
host_request xenstore-read data/ebb-state
host_view=$(host_output)
ktap_print_msg "asked $start_kb kB under a maximum of $squeeze_kb kB: $state, $reason, current $(cat $SYS/info/current_kb) kB; the host reads: $host_view"
stalls_enomem_hypervisor() {
    [ "$state" = stalled ] && [ "$reason" = enomem_hypervisor ] &&
        echo "$host_view" | grep -q "state=stalled reason=enomem_hypervisor "
}
ktap_test_result "a target above the hypervisor's maximum stalls with reason enomem_hypervisor, in sysfs and in data/ebb-state" stalls_enomem_hypervisor

# The balloon took what the maximum allows, to the page, and its books agree.
hv_info
tot=$(($(hv tot_pages) * 4))
max=$(($(hv max_pages) * 4))
cur=$(cat $SYS/info/current_kb)
ktap_print_msg "tot_pages $tot kB, max_pages $max kB, info/current_kb $cur kB"
holds_maximum() {
    [ "$tot" = "$squeeze_kb" ] && [ "$max" = "$squeeze_kb" ] && [ "$cur" = "$tot" ]
}
ktap_test_result "stalled on enomem_hypervisor, the domain holds exactly its maximum and info/current_kb agrees" holds_maximum

pop0=$(hv hc_memory_op_6)
idle_ms0=$(hv idle_ms)
guest_ms0=$(hv guest_ms)
calls0=$(cat $SYS/ebb/hypercalls)
fails0=$(cat $SYS/ebb/failures)
busy0=$(busy)
sleep $WATCH_S
stall_ticks=$(($(busy) - busy0))
calls=$(($(cat $SYS/ebb/hypercalls) - calls0))
fails=$(($(cat $SYS/ebb/failures) - fails0))
hv_info
pops=$(($(hv hc_memory_op_6) - pop0))
tot=$(($(hv tot_pages) * 4))
idle_ms=$(($(hv idle_ms) - idle_ms0))
guest_ms=$(($(hv guest_ms) - guest_ms0))
ktap_print_msg "stalled for $WATCH_S s: $fails failed attempts, $calls hypercalls (ebbhv counted $pops populates), $stall_ticks busy ticks of $((WATCH_S * 100)) (idle baseline $idle_ticks), ebbhv: vCPU idle ${idle_ms} of ${guest_ms} ms; state $(cat $SYS/ebb/state), schedule_delay $(cat $SYS/schedule_delay) s, tot_pages $tot kB"
# At most one attempt a second, each at most a 2 MiB populate and a 4 KiB one (the
# guest's count, give or take an attempt between reading the two counters; ebbhv's,
# sampled apart from them, by the same bound over the window);
# the vCPU stays within 5% of the idle baseline; the domain does not move.
backed_off() {
    [ $fails -ge 1 ] && [ $fails -le $WATCH_S ] && [ $calls -le $((2 * fails + 2)) ] &&
        [ $pops -le $((2 * WATCH_S)) ] && [ $stall_ticks -le $((idle_ticks + WATCH_S * 5)) ] &&
        [ "$tot" = "$squeeze_kb" ] && state_is stalled
}
ktap_test_result "while stalled on enomem_hypervisor the worker retries, backed off (at most 1 attempt/s, 2 populates each, CPU near idle)" \
    backed_off

host_request mem-max "${static_max0}k" || ktap_exit_fail_msg "ebbctl mem-max failed"
wait_for $((MAX_DELAY_S * 2 + 10)) reached_kb "$start_kb"
cur=$(cat $SYS/info/current_kb)
mem=$(mem_total_kb)
tot=$(hv_tot_kb)
ktap_print_msg "maximum back to $static_max0 kB: $(cat $SYS/ebb/state), current $cur kB, MemTotal $mem kB (before insmod $mem_boot), tot_pages $tot kB (before $tot0)"
reached_unasked() {
    state_is reached && [ "$cur" = "$start_kb" ] && [ "$mem" = "$mem_boot" ] && [ "$tot" = "$tot0" ]
}
ktap_test_result "once the maximum is raised the balloon reaches the target unasked; MemTotal, current_kb and tot_pages agree" reached_unasked

# --- rmmod with pages the hypervisor will not back: it waits, then the host relents.
# memory/target is still down_kb: the balloon follows it down again.
echo "$down_kb" > $SYS/target_kb
wait_for 60 reached_kb $down_kb || ktap_exit_fail_msg "the balloon did not reach $down_kb kB"
tot=$(hv_tot_kb)
host_request mem-max "${tot}k" || ktap_exit_fail_msg "ebbctl mem-max failed"
warns0=$(dmesg_count "$DRAIN_WARN")
rmmod ebb &
rmmod_pid=$!
wait_for 20 dmesg_more "$DRAIN_WARN" "$warns0"
warned=$?
running $rmmod_pid
waiting=$?
host_request mem-max "${static_max0}k"
wait_for 60 not_running $rmmod_pid
wait $rmmod_pid
rmmod_status=$?
mem=$(mem_total_kb)
tot=$(hv_tot_kb)
dmesg | grep "$DRAIN_WARN" | tail -n 1 | while read -r line; do ktap_print_msg "$line"; done
ktap_print_msg "rmmod status $rmmod_status; MemTotal $mem kB (before insmod $mem_boot), tot_pages $tot kB (before $tot0)"
rmmod_waits() {
    [ $warned -eq 0 ] && [ $waiting -eq 0 ] && [ $rmmod_status -eq 0 ] && ! ebb_loaded &&
        [ "$mem" = "$mem_boot" ] && [ "$tot" = "$tot0" ]
}
ktap_test_result "rmmod under a squeezed maximum warns and waits; raised, it gives every page back (MemTotal and tot_pages as before insmod)" rmmod_waits

# --- rmmod that never gets everything back: the host relents only in the last wait,
# and by one page less than the balloon holds.
ebb_start
wait_for 60 reached_kb $down_kb || ktap_exit_fail_msg "the balloon did not reach $down_kb kB"
tot=$(hv_tot_kb)
host_request mem-max "${tot}k" || ktap_exit_fail_msg "ebbctl mem-max failed"
warns0=$(dmesg_count "$DRAIN_WARN")
lasts0=$(dmesg_count "retry 5/5")
left0=$(dmesg_count "$DRAIN_LEFT")
hv_info
pop0=$(hv hc_memory_op_6)
rmmod ebb &
rmmod_pid=$!
wait_for 40 dmesg_more "retry 5/5" "$lasts0"
host_request mem-max "$((tot0 - 4))k"
wait_for 60 not_running $rmmod_pid
wait $rmmod_pid
rmmod_status=$?
hv_info
pops=$(($(hv hc_memory_op_6) - pop0))
warns=$(($(dmesg_count "$DRAIN_WARN") - warns0))
mem=$(mem_total_kb)
tot=$(($(hv tot_pages) * 4))
left_line=$(dmesg | grep "$DRAIN_LEFT" | tail -n 1)
[ "$(dmesg_count "$DRAIN_LEFT")" -gt "$left0" ] || left_line=
left_kb=$(echo "$left_line" | sed -n 's/.* (\([0-9]*\) KiB) still ballooned.*/\1/p')
ktap_print_msg "$left_line"
ktap_print_msg "rmmod status $rmmod_status after $warns warnings and $pops populates; MemTotal $mem kB (before insmod $mem_boot), tot_pages $tot kB (before $tot0)"
rmmod_reports_left() {
    [ $warns -eq 5 ] && [ "$left_kb" = 4 ]
}
ktap_test_result "rmmod tries again after its last announced wait, and reports the one page it could not get back" rmmod_reports_left
# Six attempts: the first falls back to 4 KiB, each later one starts with 2 MiB again
# (a 2 MiB populate and at most three 4 KiB ones for the last); 4 KiB all the way
# would take a populate per 2 MiB run, 128 here.
repopulates_2mib() {
    [ $pops -le $((2 * 6 + 2)) ]
}
ktap_test_result "rmmod's later attempts populate 2 MiB extents again after a 4 KiB fallback (at most 14 populates)" \
    repopulates_2mib
short_by_left() {
    [ $rmmod_status -eq 0 ] && ! ebb_loaded && [ -n "$left_kb" ] &&
        [ "$mem" = $((mem_boot - left_kb)) ] && [ "$tot" = $((tot0 - left_kb)) ]
}
ktap_test_result "after rmmod with pages left out, MemTotal and tot_pages are both short by exactly what it reported" short_by_left

restore
hv_info
target_now=$(xenstore read memory/target)
ktap_print_msg "restored: max_pages $(hv max_pages), static-max $(hv static_max_kib) kB, memory/target $target_now kB, tot_pages $(($(hv tot_pages) * 4)) kB"
maximum_restored() {
    [ "$(hv max_pages)" = "$max_pages0" ] && [ "$(hv static_max_kib)" = "$static_max0" ] &&
        [ "$target_now" = $((target0 - (tot0 - $(hv tot_pages) * 4))) ]
}
ktap_test_result "the maximum is restored and memory/target matches what the domain holds" maximum_restored
ktap_finished
