#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# ebb.ko ballooning through the C driver's sysfs ABI: the files and their modes;
# balloon down and up with MemTotal and info/current_kb following the target to the
# page; invalid writes change nothing; targets below the floor or above the maximum
# are clamped visibly; rmmod in the middle of ballooning (the host holds the worker
# there with `ebbctl fail-next`) restores MemTotal and tot_pages; 20 insmod/rmmod
# cycles with ballooning. Only test 6 needs the host.
cd "$(dirname "$0")" || exit 1
. ./lib.sh

CYCLES=20

ktap_print_header
ebb_require "balloon through sysfs" xen ebb.ko
ktap_set_plan 9
log_mark=$(kmsg_mark balloon.sh)

ebb_unload
mem_boot=$(mem_total_kb)
# The host's agent (scripts/run-guest.sh) holds the worker mid-way for test 6, with
# ebbhv's fail-next.
have_host=0
if have_xenstore && host_request ping && host_can_fail; then
    have_host=1
    tot_boot=$(hv_tot_kb)
fi

# True when a write of $2 to file $1 fails and leaves every target file unchanged.
write_refused() {
    before="$(cat $SYS/target_kb $SYS/target $SYS/max_schedule_delay $SYS/max_retry_count $SYS/scrub_pages)"
    if printf '%s' "$2" > "$SYS/$1" 2>/dev/null; then
        ktap_print_msg "write of '$2' to $1 was accepted"
        return 1
    fi
    after="$(cat $SYS/target_kb $SYS/target $SYS/max_schedule_delay $SYS/max_retry_count $SYS/scrub_pages)"
    [ "$before" = "$after" ] || { ktap_print_msg "write of '$2' to $1 changed something"; return 1; }
}

ebb_start

# 1. The C driver's files with its modes, plus ebb's status files.
ok=1
for entry in target_kb:644 target:644 schedule_delay:444 max_schedule_delay:644 \
    retry_count:444 max_retry_count:644 scrub_pages:644 info/current_kb:444 \
    info/low_kb:444 info/high_kb:444 ebb/state:444 ebb/reason:444 ebb/floor_kb:444 \
    ebb/max_kb:444 ebb/ballooned_pages:444 ebb/hypercalls:444; do
    f=${entry%:*}
    mode=$(stat -c %a "$SYS/$f" 2>/dev/null)
    [ "$mode" = "${entry#*:}" ] || { ok=0; ktap_print_msg "$f: mode '$mode', want ${entry#*:}"; }
done
ktap_test_result "sysfs files exist with the C driver's modes" [ $ok = 1 ]

start_kb=$(cat $SYS/info/current_kb)
floor_kb=$(cat $SYS/ebb/floor_kb)
max_kb=$(cat $SYS/ebb/max_kb)
ktap_print_msg "current $start_kb KiB, floor $floor_kb KiB, max $max_kb KiB, MemTotal $mem_boot kB"

# 2. Balloon down by 128 MiB plus 12 KiB (2 MiB extents, then 4 KiB pages).
down_kb=$((start_kb - 131084))
calls_before=$(cat $SYS/ebb/hypercalls)
t0=$(uptime_cs)
echo $down_kb > $SYS/target_kb
state=$(wait_state)
ktap_print_msg "down 128 MiB in $(($(uptime_cs) - t0))0 ms (scrub_pages $(cat $SYS/scrub_pages), 100 ms polling)"
cur=$(cat $SYS/info/current_kb)
mem=$(mem_total_kb)
calls=$(($(cat $SYS/ebb/hypercalls) - calls_before))
ktap_print_msg "down: state $state, current $cur KiB, MemTotal $mem kB, $calls hypercalls, reason $(cat $SYS/ebb/reason)"
# 64 extents of 2 MiB, then the 4 KiB fallback for the last 12 KiB: the balloon holds
# exactly the target, and MemTotal shrinks by exactly what it gave.
down_exactly() {
    [ "$state" = reached ] && [ "$cur" = "$down_kb" ] &&
        [ $((mem_boot - mem)) = $((start_kb - down_kb)) ] &&
        [ "$(cat $SYS/ebb/ballooned_pages)" = $(((start_kb - down_kb) / 4)) ]
}
ktap_test_result "balloon down by 128 MiB + 12 KiB: info/current_kb and MemTotal follow target_kb to the page" \
    down_exactly

# 3. Balloon up to where it started, through `target` in bytes with a suffix.
calls_before=$(cat $SYS/ebb/hypercalls)
t0=$(uptime_cs)
echo "${start_kb}K" > $SYS/target
state=$(wait_state)
ktap_print_msg "up 128 MiB in $(($(uptime_cs) - t0))0 ms, $(($(cat $SYS/ebb/hypercalls) - calls_before)) hypercalls"
cur=$(cat $SYS/info/current_kb)
mem=$(mem_total_kb)
ktap_print_msg "up: state $state, current $cur KiB, MemTotal $mem kB, ballooned $(cat $SYS/ebb/ballooned_pages)"
back_at_start() { [ "$state" = reached ] && [ "$cur" = "$start_kb" ] && [ "$mem" = "$mem_boot" ]; }
ktap_test_result "balloon up: back to the start, MemTotal restored" back_at_start

# 4. Invalid writes are refused and change nothing; numbers in the C driver's other
# bases (0x hex, 0 octal) are accepted as it accepts them.
ok=1
for v in abc -1 12abc 1.5 " 12" 99999999999999999999999 18446744073709551616 0x 0xg 089; do
    write_refused target_kb "$v" || ok=0
done
for v in 12X 1KB -1M 99999999999999999999G 0x1Z; do write_refused target "$v" || ok=0; done
printf '%#x\n' "$start_kb" > $SYS/target_kb && [ "$(cat $SYS/target_kb)" = "$start_kb" ] || {
    ktap_print_msg "hex target_kb $(printf '%#x' "$start_kb") not read as $start_kb"; ok=0; }
printf '%#o\n' "$start_kb" > $SYS/target_kb && [ "$(cat $SYS/target_kb)" = "$start_kb" ] || {
    ktap_print_msg "octal target_kb $(printf '%#o' "$start_kb") not read as $start_kb"; ok=0; }
printf '%#xK\n' "$start_kb" > $SYS/target && [ "$(cat $SYS/target_kb)" = "$start_kb" ] || {
    ktap_print_msg "hex target $(printf '%#xK' "$start_kb") not read as $start_kb KiB"; ok=0; }
for v in 0 -3 abc 4294967296; do write_refused max_schedule_delay "$v" || ok=0; done
for v in -1 x 4294967296; do write_refused max_retry_count "$v" || ok=0; done
for v in maybe 2; do write_refused scrub_pages "$v" || ok=0; done
for v in 1 5; do write_refused schedule_delay "$v" || ok=0; done
# Root without CAP_SYS_ADMIN may not set a target or a tunable (as the C driver).
for f in target_kb target max_schedule_delay max_retry_count scrub_pages; do
    before=$(cat "$SYS/$f")
    err=$(dropcap 21 sh -c "echo 1 > $SYS/$f" 2>&1)
    case "$err" in *"not permitted"*) refused=1 ;; *) refused=0 ;; esac
    if [ $refused = 0 ] || [ "$(cat "$SYS/$f")" != "$before" ]; then
        ktap_print_msg "$f without CAP_SYS_ADMIN: '$err', now $(cat "$SYS/$f"), was $before"
        ok=0
    fi
done
ktap_test_result "invalid sysfs writes and writes without CAP_SYS_ADMIN return an error and change nothing; 0x and 0 prefixes work" \
    [ $ok = 1 ]

# 5. Below the floor and above the maximum: clamped, and the clamp is visible. Above
# the boot size ebb adds memory blocks, which wait for a user (not_onlined) under the
# kernel's default auto_online_blocks=offline, so the domain keeps its size.
echo 0 > $SYS/target_kb
state=$(wait_state)
low_target=$(cat $SYS/target_kb)
low_reason=$(cat $SYS/ebb/reason)
low_requested=$(cat $SYS/ebb/requested_kb)
cur=$(cat $SYS/info/current_kb)
ktap_print_msg "target 0: state $state, target $low_target KiB, current $cur KiB, reason $low_reason"
clamped_to_floor() {
    [ "$state" = reached ] && [ "$low_target" = "$floor_kb" ] && [ "$low_reason" = clamped ] &&
        [ "$low_requested" = 0 ] && [ "$cur" = "$floor_kb" ]
}
ktap_test_result "a target below the floor is clamped to it, visibly" clamped_to_floor
echo $((max_kb + 1048576)) > $SYS/target_kb
state=$(wait_state)
ktap_print_msg "target above max: state $state, target $(cat $SYS/target_kb) KiB, reason $(cat $SYS/ebb/reason)"
clamped_to_max() {
    [ "$(cat $SYS/target_kb)" = "$max_kb" ] && [ "$(cat $SYS/ebb/reason)" = clamped ] &&
        [ "$(cat $SYS/info/current_kb)" = "$start_kb" ]
}
ktap_test_result "a target above the maximum is clamped to it, visibly" clamped_to_max

# 6. rmmod in the middle of ballooning down gives everything back (lib.sh's
# rmmod_mid_balloon): the first decrease of a 512 MiB balloon-down is cut after $CUT
# of its 256 extents of 2 MiB.
CUT=100
if [ $have_host = 1 ]; then
    ktap_test_result "rmmod with the balloon stalled $CUT extents into a 256-extent balloon-down restores MemTotal and tot_pages" \
        rmmod_mid_balloon "$start_kb" 524288 $CUT 2048 "$mem_boot" "$tot_boot"
else
    ktap_test_skip "rmmod in the middle of ballooning (no host with fail-next to hold the worker: not ebbhv)"
    rmmod ebb
fi

# 7. Cycles of insmod, balloon down 32 MiB, rmmod.
failed=0
i=0
while [ $i -lt $CYCLES ]; do
    ebb_load || { failed=1; break; }
    echo $(($(cat $SYS/info/current_kb) - 32768)) > $SYS/target_kb
    [ "$(wait_state)" = reached ] || { failed=1; break; }
    rmmod ebb || { failed=1; break; }
    [ "$(mem_total_kb)" = "$mem_boot" ] || { failed=1; break; }
    i=$((i + 1))
done
ktap_print_msg "$i cycles done, MemTotal $(mem_total_kb) kB"
ktap_test_result "$CYCLES insmod/balloon/rmmod cycles restore MemTotal each time" [ $failed = 0 ]

# 8. The kernel log has no warning from ebb.
ktap_test_result "no kernel warning while ballooning" kernel_quiet_since "$log_mark"

ebb_unload
ktap_finished
