#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Concurrency: for RACE_SECONDS, two writers set random targets (sysfs target_kb and
# the host's memory/target), a third onlines and offlines ebb's blocks, a fourth
# unloads and reloads ebb.ko, all at once and while memcheck holds checksummed
# memory. Afterwards every page memcheck wrote is intact, and once ebb is back at the
# boot target and unloaded, MemTotal and the hypervisor's tot_pages agree to the page
# with what the guest holds (blocks a removal could not take stay as ordinary memory,
# backed). The kernel log must stay free of warnings, lockdep reports and hung tasks
# (the host checks it). Meaningful with several vCPUs; on one it still interleaves
# the four through preemption.
cd "$(dirname "$0")" || exit 1
. ./lib.sh

# The debug kernel (lockdep, page and slab debugging) runs the four threads several
# times slower: in 40 s, and on some machines in 80 s, a block was at times never
# hot-added before the next rmmod, and the race had no offline to show.
if [ -e /proc/lockdep ]; then
    RACE_SECONDS=${RACE_SECONDS:-160}
else
    RACE_SECONDS=${RACE_SECONDS:-40}
fi

ktap_print_header
ebb_require "concurrent targets, user online/offline and reloads" xen ebb.ko xenstore host hotplug memcheck
ktap_set_plan 2

# A domain whose maximum leaves no room to grow (a Xen domU with maxmem = memory)
# gets 512 MiB more, as `xl mem-max` gives it, so that ebb hot-adds blocks for the
# offline thread; put back at the end.
ebb_make_room 524288
ebb_start_measured smp.sh
cpus=$(grep -c ^processor /proc/cpuinfo)
echo online_movable > $MEM/auto_online_blocks
wait_for 10 eval '[ "$(cat $SYS/ebb/max_kb)" -gt "$target0" ]'
max_kb=$(cat $SYS/ebb/max_kb)
# Blocks to offline exist only where ebb can hotplug.
grows=no
[ $((max_kb - target0)) -ge 131072 ] && grows=yes
ktap_print_msg "$cpus vCPUs; boot target $target0 KiB, tot_pages $tot_boot kB, max $max_kb KiB${raised:+ (maximum raised)}, hotplug: $grows; racing for $RACE_SECONDS s"

# The race, as memcheck's command. random_target: a target in 2 MiB steps from
# 256 MiB below the boot target up to the maximum. It runs RACE_SECONDS, and on (for at
# most 120 s more) until each thread has done the least the check below needs: on a
# slow domain a thread can get little done while the others hold the CPU.
cat > /tmp/ebb-race.sh <<EOF
. $PWD/lib.sh
start=\$(cut -d. -f1 /proc/uptime)
deadline=\$((start + $RACE_SECONDS)) last=\$((start + $RACE_SECONDS + 120))
done_count() { cat "/tmp/ebb-smp-\$1" 2>/dev/null | wc -l; }
enough_done() {
    [ \$(done_count sysfs) -ge 3 ] && [ \$(done_count host) -ge 3 ] && [ \$(done_count rmmod) -ge 1 ] &&
        [ \$(done_count insmod) -ge 1 ] && { [ $grows = no ] || [ \$(done_count offline) -ge 1 ]; }
}
running() {
    now=\$(cut -d. -f1 /proc/uptime)
    [ \$now -lt \$deadline ] || { [ \$now -lt \$last ] && ! enough_done; }
}
max_kb=$max_kb target0=$target0
random_target() {
    r=\$((0x\$(cut -c1-4 /proc/sys/kernel/random/uuid)))
    echo \$((target0 - 262144 + r % ((max_kb - target0 + 262144) / 2048) * 2048))
}
# Each thread counts what it got done in /tmp/ebb-smp-<thread>.
# 1: sysfs targets.
( while running; do
    { random_target > $SYS/target_kb; } 2>/dev/null && echo >> /tmp/ebb-smp-sysfs
    sleep 0.3
  done ) &
# 2: host targets (memory/target through the host's agent).
( while running; do
    host_request xenstore-write memory/target "\$(random_target)" >/dev/null 2>&1 && echo >> /tmp/ebb-smp-host
    sleep 0.7
  done ) &
# 3: a user offlining and onlining ebb's blocks.
( while running; do
    for b in \$(cut -d' ' -f1 $SYS/ebb/hotplug_block_list 2>/dev/null); do
        { echo offline > $MEM/\$b/state; } 2>/dev/null && echo >> /tmp/ebb-smp-offline
        { echo online_movable > $MEM/\$b/state; } 2>/dev/null && echo >> /tmp/ebb-smp-online
    done
    sleep 0.2
  done ) &
# 4: unload and reload.
( while running; do
    sleep 4
    rmmod ebb 2>/dev/null && echo >> /tmp/ebb-smp-rmmod
    sleep 0.5
    ebb_load 2>/dev/null && echo >> /tmp/ebb-smp-insmod
  done ) &
wait
echo "raced for \$((\$(cut -d. -f1 /proc/uptime) - start)) s"
ebb_loaded || ebb_load
EOF

rm -f /tmp/ebb-smp-*
fill_mib=$(($(free_kb) / 1024 / 4))
out=$(memcheck "$fill_mib" 1 "sh /tmp/ebb-race.sh" 2>&1)
status=$?
echo "$out" | while read -r line; do ktap_print_msg "memcheck: $line"; done
done_count() { cat "/tmp/ebb-smp-$1" 2>/dev/null | wc -l; }
ktap_print_msg "done in the race: $(done_count sysfs) sysfs targets, $(done_count host) host targets, $(done_count offline) offlines, $(done_count online) onlines, $(done_count rmmod) rmmods, $(done_count insmod) insmods"
# A race in which nothing happened proves nothing: each thread must have got through,
# in the debug kernel too, which is slower.
intact_after_race() {
    why=
    [ $status = 0 ] || why="$why memcheck exit status $status;"
    echo "$out" | grep -q ": 0 of .* pages mismatch" || why="$why no '0 of N pages mismatch' from memcheck;"
    [ "$(done_count sysfs)" -ge 3 ] || why="$why fewer than 3 sysfs targets;"
    [ "$(done_count host)" -ge 3 ] || why="$why fewer than 3 host targets;"
    [ "$grows" = no ] || [ "$(done_count offline)" -ge 1 ] || why="$why no offline of a hot-added block;"
    [ "$(done_count rmmod)" -ge 1 ] || why="$why no rmmod;"
    [ "$(done_count insmod)" -ge 1 ] || why="$why no reload;"
    [ -z "$why" ] || ktap_print_msg "not intact or not raced:$why"
    [ -z "$why" ]
}
ktap_test_result "every page of $fill_mib MiB intact after at least $RACE_SECONDS s of racing targets, onlines/offlines and reloads" intact_after_race

# Settle: every block online, ebb back at the boot target, then unloaded.
for b in $(cut -d' ' -f1 $SYS/ebb/hotplug_block_list); do
    [ "$(cat $MEM/$b/state)" = online ] || echo online_movable > $MEM/$b/state
done
host_request mem-set "${target0}k" || ktap_print_msg "ebbctl mem-set ${target0}k failed: $(host_output)"
state=$(wait_state "$target0")
ktap_print_msg "settled: $state ($(cat $SYS/ebb/reason)), current $(cat $SYS/info/current_kb) KiB; $(hotplug_files)"
rmmod ebb
for b in $(ls -d $MEM/memory[0-9]* | xargs -n1 basename); do
    [ "$(cat $MEM/$b/state)" = online ] || echo online_movable > $MEM/$b/state
done
extra_kb=$((($(nr_blocks) - blocks_boot) * 131072))
mem=$(mem_total_kb)
tot=$(hv_tot_kb)
# Where ebb keeps the blocks it added (PV without hot-remove, lib.sh's
# ebb_removes_blocks), `xl mem-set` lowers the domain's maximum to the target: what
# the balloon held of them stays out of the guest after rmmod, and the guest holds
# what the hypervisor counts.
ebb_removes_blocks || extra_kb=$((tot - tot_boot))
ktap_print_msg "after rmmod: MemTotal $mem kB (boot $mem_boot), tot_pages $tot kB (boot $tot_boot), $(($(nr_blocks) - blocks_boot)) blocks left as ordinary memory"
books_agree() {
    why=
    [ "$state" = reached ] || why="$why state $state;"
    [ $((mem - mem_boot)) = "$extra_kb" ] || why="$why MemTotal grew $((mem - mem_boot)) kB, not $extra_kb;"
    [ $((tot - tot_boot)) = "$extra_kb" ] || why="$why tot_pages grew $((tot - tot_boot)) kB, not $extra_kb;"
    [ -z "$why" ] || ktap_print_msg "books disagree:$why"
    [ -z "$why" ]
}
ktap_test_result "after the race and rmmod, MemTotal and tot_pages agree to the page with the memory the guest holds" books_agree
ebb_restore_max "$extra_kb"
echo "$online_policy" > $MEM/auto_online_blocks
ktap_finished
