#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Users offlining and onlining ebb's hot-added blocks: an offline block's frames go
# back to the hypervisor (its unbacked pages are skipped, not migrated) and come back
# when a user onlines it; notifier errors injected into offline and online leave
# everything as it was; a block that cannot be removed is reported once, not retried
# until the target changes, and removed after it;
# the upstream mem-on-off-test passes with ebb's blocks present; invalid block states,
# a target above the maximum and rmmod during growth (held mid-way by `ebbctl
# fail-next`) are handled. Sizes are compared to the page.
cd "$(dirname "$0")" || exit 1
. ./lib.sh

INJECT=/sys/kernel/debug/notifier-error-inject/memory/actions

ktap_print_header
ebb_require "user offline of ebb's blocks" xen ebb.ko xenstore host hotplug memcheck
ktap_set_plan 15

ebb_start_measured hotplug-offline.sh
echo online_movable > $MEM/auto_online_blocks

# Checks that the guest holds target0 + $1 KiB as ebb reaches it: state reached, and
# current_kb, MemTotal and the hypervisor's tot_pages moved from before insmod by
# exactly what the domain gained. With nothing in the balloon, ebb grows the domain
# from what it held at insmod (tot_boot) by whole 2 MiB extents only (hotplug backs
# nothing smaller), so the target is reached to its last whole extent above tot_boot
# (under ebbhv the domain boots 24 KiB short of memory/target: target0 + 192 MiB is
# reached at tot_boot + 192 MiB).
holds_above_boot() {
    state=$(wait_state)
    cur=$(cat $SYS/info/current_kb)
    mem=$(mem_total_kb)
    tot=$(hv_tot_kb)
    gained=$(((target0 + $1 - tot_boot) / 2048 * 2048))
    ktap_print_msg "  state $state, current $cur KiB, MemTotal $mem kB, tot_pages $tot kB (want $gained KiB above $tot_boot); $(hotplug_files)"
    [ "$state" = reached ] && [ "$cur" = $((tot_boot + gained)) ] &&
        [ $((mem - mem_boot)) = "$gained" ] && [ $((tot - tot_boot)) = "$gained" ]
}

# 1. Grow by 192 MiB: two blocks, the second half backed.
up_kb=$((target0 + 196608))
host_request mem-set $((up_kb / 1024))
wait_state $up_kb >/dev/null
grown_192() {
    holds_above_boot 196608 && [ "$(cat $SYS/ebb/hotplug_blocks)" = 2 ] &&
        [ "$(cat $SYS/ebb/hotplug_ballooned_pages)" = 16384 ] &&
        [ "$(grep -c ' online zone=Movable ' $SYS/ebb/hotplug_block_list)" = 2 ]
}
ktap_test_result "grow by 192 MiB: 2 blocks in ZONE_MOVABLE, the second one half backed" grown_192
set -- $(ebb_blocks)
first=$1
second=$2
ktap_print_msg "ebb's blocks: $(tr '\n' ';' < $SYS/ebb/hotplug_block_list)"

# 2-5. A user offlines each block: its backed frames go back to the hypervisor, ebb
# backs ballooned extents of its other blocks to make up for them, and waits for the
# block (not_onlined); onlining it again backs what the target asks for.
for block in "$second" "$first"; do
    backed_kb=$(($(ebb_block_pages "$block" backed_pages) * 4))
    others_kb=$(($(ebb_block_pages "!$block" ballooned_pages) * 4))
    made_up_kb=$((others_kb < backed_kb ? others_kb : backed_kb))
    echo offline > $MEM/$block/state
    status=$?
    state=$(wait_state)
    tot=$(hv_tot_kb)
    mem=$(mem_total_kb)
    ktap_print_msg "offline $block ($backed_kb KiB backed, $made_up_kb KiB to make up): write status $status, ebb state $state," \
        "block $(ebb_block_state "$block"), tot_pages $tot kB, MemTotal $mem kB"
    offline_gives_back() {
        [ $status = 0 ] && [ "$(cat $MEM/$block/state)" = offline ] &&
            [ "$(ebb_block_state "$block")" = offline ] && [ "$state" = not_onlined ] &&
            grep -q "^$block offline zone=none backed_pages=0 ballooned_pages=0 " $SYS/ebb/hotplug_block_list &&
            [ $((tot_boot + 196608 - tot)) = $((backed_kb - made_up_kb)) ] &&
            [ $((mem_boot + 196608 - mem)) = $((backed_kb - made_up_kb)) ]
    }
    ktap_test_result "user offline of $block gives its $backed_kb KiB back to the hypervisor ($made_up_kb KiB made up elsewhere); ebb says not_onlined" offline_gives_back
    echo online_movable > $MEM/$block/state
    ktap_test_result "user online of $block: ebb backs it again and the domain holds the target" \
        holds_above_boot 196608
done

# 6. MEM_GOING_OFFLINE fails (injected after ebb dropped its page references): the
# block stays online with every count unchanged, and a later offline works.
if modprobe memory-notifier-error-inject 2>/dev/null && [ -d $INJECT ]; then
    before=$(grep "^$second " $SYS/ebb/hotplug_block_list)
    echo -12 > $INJECT/MEM_GOING_OFFLINE/error
    echo offline > $MEM/$second/state 2>/dev/null
    status=$?
    echo 0 > $INJECT/MEM_GOING_OFFLINE/error
    after=$(grep "^$second " $SYS/ebb/hotplug_block_list)
    tot=$(hv_tot_kb)
    ktap_print_msg "offline $second with MEM_GOING_OFFLINE failing: status $status; before: $before; after: $after; tot_pages $tot kB"
    echo offline > $MEM/$second/state
    again=$?
    echo online_movable > $MEM/$second/state
    going_offline_refused() {
        [ $status != 0 ] && [ "$(cat $MEM/$second/state)" = online ] && [ "$before" = "$after" ] &&
            [ $((tot - tot_boot)) = 196608 ] && [ $again = 0 ] && holds_above_boot 196608
    }
    ktap_test_result "an injected MEM_GOING_OFFLINE error leaves $second online and unchanged; offline works after" going_offline_refused

    # 7. MEM_GOING_ONLINE fails: the block stays offline and ebb keeps waiting.
    echo offline > $MEM/$second/state
    echo -12 > $INJECT/MEM_GOING_ONLINE/error
    echo online_movable > $MEM/$second/state 2>/dev/null
    status=$?
    echo 0 > $INJECT/MEM_GOING_ONLINE/error
    state=$(wait_state)
    ktap_print_msg "online $second with MEM_GOING_ONLINE failing: status $status, block $(cat $MEM/$second/state), ebb $state"
    failed_online=$([ $status != 0 ] && [ "$(cat $MEM/$second/state)" = offline ] &&
        [ "$state" = not_onlined ] && echo yes)
    echo online_movable > $MEM/$second/state
    going_online_refused() {
        [ "$failed_online" = yes ] && holds_above_boot 196608
    }
    ktap_test_result "an injected MEM_GOING_ONLINE error leaves $second offline, ebb not_onlined; online works after" going_online_refused

    # 8. ebb's own hot-remove fails: reported once (unremovable), not retried in a
    # loop; the target is reached by ballooning instead.
    echo -12 > $INJECT/MEM_GOING_OFFLINE/error
    host_request mem-set $((target0 / 1024))
    state=$(wait_state "$target0")
    sleep 5
    reports=$(dmesg_since "$log_mark" | grep -c "cannot be removed now")
    unremovable=$(cat $SYS/ebb/hotplug_unremovable)
    cur=$(cat $SYS/info/current_kb)
    echo 0 > $INJECT/MEM_GOING_OFFLINE/error
    ktap_print_msg "down to $target0 KiB with offline failing: state $state, current $cur KiB, $reports reports; $(hotplug_files)"
    unremovable_reported() {
        [ "$state" = reached ] && [ "$cur" = "$target0" ] && [ "$reports" -ge 1 ] &&
            [ "$reports" -le 2 ] && [ "$unremovable" = "$reports" ] &&
            grep -q "unremovable=1" $SYS/ebb/hotplug_block_list &&
            xenstore read data/ebb-state | grep -q "hotplug_unremovable=$unremovable"
    }
    ktap_test_result "a block that cannot be offlined is reported once as unremovable; ballooning reaches the target" unremovable_reported

    # 8b. The unremovable block is tried again once the target changes: with the
    # injection gone, a target lower by what the highest block holds removes that
    # block (not ballooning: the balloon keeps what it held), and nothing is reported.
    last=$(ebb_blocks | tail -n 1)
    last_kb=$(($(ebb_block_pages "$last" backed_pages) * 4))
    ballooned0=$(cat $SYS/ebb/ballooned_pages)
    low_kb=$((target0 - last_kb))
    host_request mem-set "${low_kb}k"
    state=$(wait_state "$low_kb")
    cur=$(cat $SYS/info/current_kb)
    tot=$(hv_tot_kb)
    reports_after=$(dmesg_since "$log_mark" | grep -c "cannot be removed now")
    ktap_print_msg "down to $low_kb KiB ($last held $last_kb KiB): state $state, current $cur KiB, tot_pages $tot kB," \
        "ballooned $(cat $SYS/ebb/ballooned_pages) pages (was $ballooned0), $reports_after reports; $(hotplug_files)"
    unremovable_retried() {
        [ "$state" = reached ] && [ "$cur" = "$low_kb" ] && [ "$tot" = "$cur" ] &&
            [ "$(cat $SYS/ebb/ballooned_pages)" = "$ballooned0" ] &&
            [ "$(cat $SYS/ebb/hotplug_blocks)" = 1 ] && [ "$(cat $SYS/ebb/hotplug_unremovable)" = 0 ] &&
            ! ebb_blocks | grep -qx "$last" && [ "$reports_after" = "$reports" ]
    }
    ktap_test_result "after a target change the unremovable block is tried again and removed" unremovable_retried
    rmmod memory-notifier-error-inject
    host_request mem-set $((up_kb / 1024))
    wait_state $up_kb >/dev/null
else
    ktap_test_skip "MEM_GOING_OFFLINE error injection (no memory-notifier-error-inject)"
    ktap_test_skip "MEM_GOING_ONLINE error injection (no memory-notifier-error-inject)"
    ktap_test_skip "unremovable block reporting (no memory-notifier-error-inject)"
    ktap_test_skip "unremovable block retried after a target change (no memory-notifier-error-inject)"
fi

# 8c. A removal that outlasts ebb/remove_timeout_ms is given up: the offline is
# interrupted (EINTR), the block stays and is reported unremovable, and ballooning
# reaches the target. memcheck holds 512 MiB meanwhile: user memory fills
# ZONE_MOVABLE, ebb's blocks, first, so each offline has pages to migrate and outlasts
# 1 ms; every one of them must stay intact. A timeout of 0 is refused.
timeout0=$(cat $SYS/ebb/remove_timeout_ms)
{ echo 0 > $SYS/ebb/remove_timeout_ms; } 2>/dev/null && zero_refused=no || zero_refused=yes
reports0=$(dmesg_since "$log_mark" | grep -c "cannot be removed now (Error(4))")
cat > /tmp/ebb-remove-timeout.sh <<SCRIPT
. $PWD/lib.sh
echo 1 > $SYS/ebb/remove_timeout_ms || exit 1
host_request mem-set $((target0 / 1024)) >/dev/null 2>&1 || exit 1
[ "\$(wait_state $target0)" = reached ] || exit 1
echo \$(cat $SYS/ebb/hotplug_unremovable $SYS/ebb/hotplug_blocks $SYS/info/current_kb) > /tmp/ebb-timed-out
echo $timeout0 > $SYS/ebb/remove_timeout_ms || exit 1
host_request mem-set $((up_kb / 1024)) >/dev/null 2>&1 || exit 1
[ "\$(wait_state $up_kb)" = reached ]
SCRIPT
out=$(memcheck 512 1 "sh /tmp/ebb-remove-timeout.sh" 2>&1)
status=$?
echo "$out" | sed 's/^/#   /'
read -r unremovable blocks cur < /tmp/ebb-timed-out 2>/dev/null || true
reports=$(dmesg_since "$log_mark" | grep -c "cannot be removed now (Error(4))")
ktap_print_msg "with a 1 ms removal timeout: ${unremovable:-?} of ${blocks:-?} blocks unremovable, current ${cur:-?} KiB," \
    "$((reports - reports0)) EINTR reports; memcheck status $status; timeout now $(cat $SYS/ebb/remove_timeout_ms) ms"
removal_times_out() {
    [ "$zero_refused" = yes ] && [ "$status" = 0 ] && [ "${unremovable:-0}" -ge 1 ] &&
        [ "${cur:-}" = "$target0" ] && [ $((reports - reports0)) -ge 1 ] &&
        [ "$(cat $SYS/ebb/remove_timeout_ms)" = "$timeout0" ] && holds_above_boot 196608
}
ktap_test_result "a removal that outlasts ebb/remove_timeout_ms is interrupted: the block stays, unremovable, and ballooning reaches the target; memcheck's pages intact" removal_times_out

# 9. The upstream memory-hotplug selftest with ebb's blocks online among the others.
# It onlines what it offlined with `online`: the auto-movable policy keeps ebb's
# blocks movable then (with contig-zones one could land in ZONE_NORMAL and hold
# kernel memory, which would make it unremovable for the checks below). A boot block
# it re-onlined movable goes back to the kernel zone, as it was.
zone_policy=$(cat $ONLINE_POLICY)
echo auto-movable > $ONLINE_POLICY
out=$(../memory-hotplug/mem-on-off-test.sh 2>&1)
status=$?
echo "$zone_policy" > $ONLINE_POLICY
echo "$out" | grep -E "memory|FAIL|fail" | sed 's/^/#   /'
for block in $MEM/memory[0-9]*; do
    name=${block##*/}
    ebb_blocks | grep -qx "$name" && continue
    if [ "$(cat $block/valid_zones)" = Movable ]; then
        ktap_print_msg "boot block $name came back movable: back to the kernel zone"
        echo offline > $block/state && echo online_kernel > $block/state
    fi
done
upstream_test_passes() {
    [ $status = 0 ] && holds_above_boot 196608
}
ktap_test_result "mem-on-off-test.sh passes with ebb's blocks present; ebb still holds its target after" upstream_test_passes

# 10. Invalid writes to an ebb block's state are refused and change nothing.
before=$(cat $SYS/ebb/hotplug_block_list)
bad=0
for value in bogus 42 offlinex online_kernel online_movable; do
    if printf '%s' "$value" > $MEM/$first/state 2>/dev/null; then
        # Writing the state a block is in is accepted as a no-op by the kernel.
        [ "$value" = online_movable ] || { ktap_print_msg "'$value' accepted"; bad=1; }
    fi
done
invalid_refused() {
    [ $bad = 0 ] && [ "$(cat $SYS/ebb/hotplug_block_list)" = "$before" ] &&
        [ "$(cat $MEM/$first/state)" = online ]
}
ktap_test_result "invalid state writes to $first are refused and change nothing" invalid_refused

# 11. A target above the maximum is clamped, visibly, and reached.
max_kb=$(cat $SYS/ebb/max_kb)
echo $((max_kb + 1048576)) > $SYS/target_kb
state=$(wait_state "$max_kb")
ktap_print_msg "target max+1 GiB: target_kb $(cat $SYS/target_kb), reason $(cat $SYS/ebb/reason), state $state; $(hotplug_files)"
clamped_reached() {
    [ "$(cat $SYS/target_kb)" = "$max_kb" ] && [ "$(cat $SYS/ebb/reason)" = clamped ] &&
        holds_above_boot $((max_kb - target0))
}
ktap_test_result "a target above the maximum is clamped to $max_kb KiB (reason clamped) and reached" clamped_reached

# 12. rmmod while the guest grows: the host holds the growth mid-way (ebbctl
# fail-next): the first populate backing the new blocks is cut after 10 of its
# extents and the next ones fail, so ebb is stalled with every block of the region
# added and onlined and exactly 20 MiB of them backed when rmmod runs. Everything ebb
# added goes; MemTotal, the blocks and tot_pages are as before insmod.
host_request mem-set $((target0 / 1024))
state=$(wait_state "$target0")
ktap_print_msg "back at $target0 KiB: $state; $(hotplug_files)"
region_blocks=$(((max_kb - target0) / 131072))
if host_can_fail; then
    mid_ok=1
    [ "$state" = reached ] && [ "$(cat $SYS/ebb/hotplug_blocks)" = 0 ] || mid_ok=0
    host_request fail-next populate 1 10 && host_request fail-next populate 20 -EBUSY || {
        ktap_print_msg "ebbctl fail-next failed: $(host_output)"; mid_ok=0; }
    echo "$max_kb" > $SYS/target_kb
    wait_for 60 state_is stalled
    mid_state=$(cat $SYS/ebb/state)
    mid_blocks=$(cat $SYS/ebb/hotplug_blocks)
    mid_onlined=$(cat $SYS/ebb/hotplug_onlined)
    mid_backed=$(cat $SYS/ebb/hotplug_backed_pages)
    mid_cur=$(cat $SYS/info/current_kb)
    ktap_print_msg "rmmod while growing: state $mid_state ($(cat $SYS/ebb/reason)), current $mid_cur KiB; $(hotplug_files)"
    rmmod_held || mid_ok=0
    removed_while_growing() {
        [ $mid_ok = 1 ] && [ "$mid_state" = stalled ] && [ "$mid_blocks" = "$region_blocks" ] &&
            [ "$mid_onlined" = "$region_blocks" ] && [ "$mid_backed" = 5120 ] &&
            [ "$mid_cur" = $((tot_boot + 20480)) ] &&
            [ $RMMOD_STATUS = 0 ] && ! ebb_loaded && [ "$mem" = "$mem_boot" ] &&
            [ "$(nr_blocks)" = "$blocks_boot" ] && [ "$tot" = "$tot_boot" ]
    }
    ktap_test_result "rmmod while growing ($region_blocks blocks added, 10 extents backed) removes ebb's blocks: MemTotal, blocks and tot_pages as before insmod" removed_while_growing
else
    ktap_test_skip "rmmod while growing (no host with fail-next to hold the growth: not ebbhv)"
    rmmod ebb
fi
echo "$online_policy" > $MEM/auto_online_blocks

# 13. No kernel warning.
ktap_test_result "no kernel warning while users offline and online ebb's blocks" kernel_quiet_since "$log_mark"
ktap_finished
