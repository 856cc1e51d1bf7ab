#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# rmmod racing a user who offlines ebb's hot-added blocks while ebb's removals fail.
# In each round ebb grows the guest by every block it may add; then, with
# MEM_GOING_OFFLINE failing (memory-notifier-error-inject), ebb.ko unloads. As soon
# as the kernel logs ebb's first failed removal the injected error is lifted, one
# user offlines that block at once and another offlines all of ebb's blocks in a loop,
# on other vCPUs while ebb removes the rest: a user's offline can get in between
# ebb's failed attempt at a block and the end of the unload. A
# block a user offlined then has given its frames back: ebb must remove it, not leave
# it for an online that would hand the allocator pages without memory behind them.
# After each round every block left is onlined (by a user, after ebb is gone) and
# MemTotal and the hypervisor's tot_pages must agree to the page with the blocks that
# stayed; after the last, memcheck touches all free memory (on a real Xen an unbacked
# page crashes the domain). Meaningful with several vCPUs; on one the user only
# interleaves through preemption.
cd "$(dirname "$0")" || exit 1
. ./lib.sh

INJECT=/sys/kernel/debug/notifier-error-inject/memory/actions
ROUNDS=${ROUNDS:-6}

ktap_print_header
ebb_require "rmmod racing a user offline with failing removals" xen ebb.ko xenstore host hotplug memcheck
WHAT="rmmod racing a user offline with failing removals"
ebb_removes_blocks || skip_test "$WHAT" "ebb removes no blocks on PV without pv_hot_remove"
modprobe memory-notifier-error-inject 2>/dev/null && [ -d $INJECT ] ||
    skip_test "$WHAT" "no memory-notifier-error-inject"
ktap_set_plan 4

ebb_make_room 524288
blocks0=$(nr_blocks)
policy0=$(cat $MEM/auto_online_blocks)
echo online_movable > $MEM/auto_online_blocks
test_mark=$(kmsg_mark unload-race.sh)
ktap_print_msg "$(grep -c ^processor /proc/cpuinfo) vCPUs; up to $ROUNDS rounds"

# One round; sets round_ok and round_why, adds to the race's counts.
books_ok=yes
failed_removals=0 user_removed=0 refused_offlines=0 rounds=0
run_round() {
    round_why=
    ebb_start_measured "unload-race.sh round $1"
    max_kb=$(cat $SYS/ebb/max_kb)
    echo "$max_kb" > $SYS/target_kb
    state=$(wait_state "$max_kb")
    blocks=$(ebb_blocks | tr '\n' ' ')
    nr_added=$(cat $SYS/ebb/hotplug_blocks)
    ktap_print_msg "round $1: grown to $max_kb KiB ($state), ebb's blocks: $blocks"
    if [ "$nr_added" -lt 2 ]; then
        ktap_print_msg "round $1: fewer than 2 blocks to add: the rounds end here"
        rmmod ebb
        return 1
    fi
    rm -f /tmp/ebb-ur-*
    # Lifts the injected error at ebb's first failed removal and offlines that block
    # at once, while ebb goes on with the others. awk skips the log up to this round's
    # mark (the shell reads a pipe a byte at a time); the shell reacts (echo is a
    # builtin: no fork between the line and the lift).
    lift_mark=$(kmsg_mark "unload-race.sh lift $1")
    ( cat /dev/kmsg & echo $! > /tmp/ebb-ur-reader; wait ) | {
        awk -v mark="$lift_mark" 'index($0, mark) { exit }'
        : > /tmp/ebb-ur-watching
        while read -r line; do
            case "$line" in
                *"unload: memory block "*" cannot be removed"*)
                    echo 0 > $INJECT/MEM_GOING_OFFLINE/error
                    : > /tmp/ebb-ur-lifted
                    failed_block=${line##*unload: memory block }
                    { echo offline > $MEM/memory${failed_block%% *}/state; } 2>/dev/null &&
                        echo "memory${failed_block%% *}" >> /tmp/ebb-ur-offline
                    break
                    ;;
            esac
        done
    } &
    wait_for 60 test -e /tmp/ebb-ur-watching
    echo -16 > $INJECT/MEM_GOING_OFFLINE/error
    # Another user: offlines each of ebb's blocks from the lift until the unload is
    # over (not before: every offline refused by the injected error is a line in the
    # kernel log).
    ( until [ -e /tmp/ebb-ur-lifted ] || [ -e /tmp/ebb-ur-stop ]; do sleep 0.01; done
      while [ ! -e /tmp/ebb-ur-stop ]; do
        for b in $blocks; do
            { echo offline > $MEM/$b/state; } 2>/dev/null
        done
      done ) &
    user=$!
    rmmod ebb
    rmmod_status=$?
    : > /tmp/ebb-ur-stop
    wait $user
    echo 0 > $INJECT/MEM_GOING_OFFLINE/error
    kill "$(cat /tmp/ebb-ur-reader)" 2>/dev/null
    # After ebb is gone a user may online what stayed: every page must be backed.
    for b in $(ls -d $MEM/memory[0-9]* | xargs -n1 basename); do
        [ "$(cat $MEM/$b/state)" = online ] || echo online_movable > $MEM/$b/state ||
            round_why="$round_why cannot online $b after unload;"
    done
    log=$(dmesg_since "$log_mark")
    failed=$(echo "$log" | grep -c "unload: memory block .* cannot be removed")
    removed=$(echo "$log" | grep -c "was offlined by a user during unload; removed")
    refused=$(echo "$log" | grep -c "ebb is unloading; offline it once ebb is gone")
    offlined=$(cat /tmp/ebb-ur-offline 2>/dev/null)
    stayed=$(($(nr_blocks) - blocks_boot))
    mem=$(mem_total_kb)
    tot=$(hv_tot_kb)
    ktap_print_msg "round $1: rmmod status $rmmod_status; $failed failed removals" \
        "(error lifted: $([ -e /tmp/ebb-ur-lifted ] && echo yes || echo no), then ${offlined:-no block} offlined);" \
        "$removed blocks offlined during unload removed, $refused offlines refused as ebb unloaded; $stayed blocks stayed;" \
        "MemTotal +$((mem - mem_boot)) kB, tot_pages +$((tot - tot_boot)) kB"
    [ "$rmmod_status" = 0 ] && ! ebb_loaded || round_why="$round_why rmmod status $rmmod_status;"
    [ $((mem - mem_boot)) = $((stayed * 131072)) ] ||
        round_why="$round_why MemTotal grew $((mem - mem_boot)) kB, not $((stayed * 131072));"
    [ $((tot - tot_boot)) = $((stayed * 131072)) ] ||
        round_why="$round_why tot_pages grew $((tot - tot_boot)) kB, not $((stayed * 131072));"
    if [ -n "$round_why" ]; then
        ktap_print_msg "round $1 books disagree:$round_why"
        books_ok=no
    fi
    failed_removals=$((failed_removals + failed))
    user_removed=$((user_removed + removed))
    refused_offlines=$((refused_offlines + refused))
    rounds=$1
}

round=1
while [ $round -le "$ROUNDS" ] && run_round $round; do
    round=$((round + 1))
done

books_agree() { [ "$rounds" -ge 1 ] && [ "$books_ok" = yes ]; }
ktap_test_result "after each of $rounds rounds rmmod succeeds, every block left is onlined and MemTotal and tot_pages agree to the page with the blocks that stayed" books_agree

ktap_print_msg "in $rounds rounds: $failed_removals failed removals at unload," \
    "$user_removed blocks a user offlined during unload removed, $refused_offlines offlines refused as ebb unloaded"
raced() {
    [ "$failed_removals" -ge 1 ] && [ $((user_removed + refused_offlines)) -ge 1 ]
}
# On one vCPU the users run only when rmmod sleeps, mostly after ebb let go of the
# notifier: the checks above and below still hold, but the race cannot be forced.
if [ "$(grep -c ^processor /proc/cpuinfo)" -ge 2 ]; then
    ktap_test_result "ebb's removals failed at unload and the user's offlines landed during it" raced
else
    ktap_test_skip "ebb's removals failed at unload and the user's offlines landed during it (one vCPU: the users cannot run while rmmod does)"
fi

touch_free_memory 65536
touched=$?
ktap_test_result "a program touching all $fill_mib MiB of free memory after the rounds runs to the end, every page intact" [ $touched = 0 ]

rmmod memory-notifier-error-inject
ebb_restore_max $((($(nr_blocks) - blocks0) * 131072))
echo "$policy0" > $MEM/auto_online_blocks
ktap_test_result "no kernel warning while rmmod raced the user's offlines" kernel_quiet_since "$test_mark"
ktap_finished
