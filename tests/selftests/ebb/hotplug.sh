#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Memory hotplug: a target above the boot size (set with `ebbctl mem-set`) grows the
# guest by adding ebb's memory blocks, which the kernel onlines (auto_online_blocks)
# and ebb backs as they come online; the guest's MemTotal, ebb's files and the
# hypervisor's tot_pages agree. Back down by whole blocks, ebb removes them. With
# auto_online_blocks offline ebb says `not_onlined` until a user onlines the block.
# rmmod removes the blocks and leaves the guest as it was.
cd "$(dirname "$0")" || exit 1
. ./lib.sh

ktap_print_header
ebb_require "memory hotplug" xen ebb.ko xenstore host hotplug
ktap_set_plan 9

ebb_start_measured hotplug.sh

# What the guest holds once target $1 KiB is reached, to the page: with nothing in
# the balloon, ebb grows the domain from what it held at insmod ($tot_boot) by
# whole 2 MiB extents only (hotplug backs nothing smaller), so a target above it is
# reached to the last whole extent; a target at or below it, by the 4 KiB page.
# (Under ebbhv the domain boots 24 KiB short of memory/target: target0 + 192 MiB is
# reached at tot_boot + 192 MiB.)
reached_at() {
    if [ "$1" -le "$tot_boot" ]; then
        echo "$1"
    else
        echo $((tot_boot + ($1 - tot_boot) / 2048 * 2048))
    fi
}
# True when the guest holds exactly what target $1 KiB is reached at (cur, as ebb
# counts it), the hypervisor's tot_pages ($tot) agrees to the page, and MemTotal
# ($mem) moved from before insmod by exactly what the domain gained.
holds_exactly() {
    want=$(reached_at "$1")
    [ "$cur" = "$want" ] && [ "$tot" = "$want" ] && [ $((mem - mem_boot)) = $((want - tot_boot)) ]
}

# 1. The region above boot RAM is ebb's to grow into.
max_kb=$(cat $SYS/ebb/max_kb)
ktap_print_msg "boot: target $target0 KiB, MemTotal $mem_boot kB, $blocks_boot blocks, tot_pages $tot_boot kB; max $max_kb KiB"
region_ready() { [ "$max_kb" -ge $((target0 + 262144)) ] && [ "$(cat $SYS/ebb/hotplug_blocks)" = 0 ]; }
ktap_test_result "ebb can grow the guest to $max_kb KiB by hotplug" region_ready

# Sets the host's target to $2 KiB and waits for ebb to settle; $1 says what for.
# Reads what the guest holds then: state, cur (info/current_kb), mem (MemTotal) and tot
# (the hypervisor's tot_pages), and prints them.
set_and_read() {
    host_request mem-set $(($2 / 1024))
    state=$(wait_state "$2")
    cur=$(cat $SYS/info/current_kb)
    mem=$(mem_total_kb)
    tot=$(hv_tot_kb)
    ktap_print_msg "$1 $2 KiB: state $state, current $cur KiB, MemTotal $mem kB, tot_pages $tot kB, $(nr_blocks) blocks; $(hotplug_files)"
}

# 2. Grow by 192 MiB with blocks onlined movable as they are added: the second
# block is onlined whole but only half of it is backed; the rest stays ballooned.
echo online_movable > $MEM/auto_online_blocks
up_kb=$((target0 + 196608))
set_and_read "up to" $up_kb
grown_192() {
    [ "$state" = reached ] && holds_exactly "$up_kb" &&
        [ "$(cat $SYS/ebb/hotplug_blocks)" = 2 ] && [ "$(cat $SYS/ebb/hotplug_onlined)" = 2 ] &&
        [ "$(cat $SYS/ebb/hotplug_ballooned_pages)" = 16384 ] &&
        [ "$(nr_blocks)" = $((blocks_boot + 2)) ]
}
ktap_test_result "mem-set +192 MiB adds and onlines 2 blocks, backs 192 MiB; MemTotal and tot_pages follow" grown_192

# 3. Grow to +256 MiB: the ballooned half of the second block is backed, no new block.
up_kb=$((target0 + 262144))
set_and_read "up to" $up_kb
ktap_print_msg "xenstore: $(xenstore read data/ebb-state)"
grown_256() {
    [ "$state" = reached ] && holds_exactly "$up_kb" &&
        [ "$(cat $SYS/ebb/hotplug_blocks)" = 2 ] && [ "$(cat $SYS/ebb/hotplug_ballooned_pages)" = 0 ]
}
ktap_test_result "mem-set +256 MiB backs the rest of the second block; MemTotal and tot_pages follow" grown_256

# 4. Back down by two whole blocks: ebb offlines and removes them.
set_and_read "down to" "$target0"
# True when the guest is back at its boot target with none of ebb's blocks left.
back_at_boot() {
    [ "$state" = reached ] && holds_exactly "$target0" &&
        [ "$(cat $SYS/ebb/hotplug_blocks)" = 0 ] && [ "$(nr_blocks)" = "$blocks_boot" ]
}
ktap_test_result "mem-set back to the boot size removes both blocks: MemTotal and tot_pages return" back_at_boot

# 5. To the maximum and back, three times: blocks onlined movable, onlined by the
# kernel's `online` under the auto-movable zone policy, and left offline for a user
# to online. Every step: all of the region's blocks (or none), MemTotal, current_kb
# and tot_pages agree.
zone_policy=$(cat $ONLINE_POLICY)
echo auto-movable > $ONLINE_POLICY
region_blocks=$(((max_kb - target0) / 131072))
ok=1
for policy in online_movable online offline; do
    echo $policy > $MEM/auto_online_blocks
    host_request mem-set $((max_kb / 1024))
    state=$(wait_state "$max_kb")
    while [ "$state" = not_onlined ]; do
        for block in $(ebb_blocks); do
            [ "$(cat $MEM/$block/state)" = offline ] && echo online_movable > $MEM/$block/state
        done
        state=$(wait_state)
    done
    cur=$(cat $SYS/info/current_kb)
    mem=$(mem_total_kb)
    tot=$(hv_tot_kb)
    ktap_print_msg "$policy: up to $max_kb KiB: state $state, current $cur KiB, MemTotal $mem kB, tot_pages $tot kB, $(nr_blocks) blocks; $(hotplug_files)"
    [ "$state" = reached ] && holds_exactly "$max_kb" &&
        [ "$(cat $SYS/ebb/hotplug_blocks)" = $region_blocks ] &&
        [ "$(grep -c ' online ' $SYS/ebb/hotplug_block_list)" = $region_blocks ] &&
        [ "$(nr_blocks)" = $((blocks_boot + region_blocks)) ] || ok=0
    set_and_read "$policy: back to" "$target0"
    back_at_boot || ok=0
done
echo "$zone_policy" > $ONLINE_POLICY
ktap_test_result "to the maximum and back with blocks onlined movable, by auto-movable and by a user" [ $ok = 1 ]

# 6. With auto_online_blocks offline a new block waits for a user; onlining it grows.
echo offline > $MEM/auto_online_blocks
up_kb=$((target0 + 131072))
host_request mem-set $((up_kb / 1024))
state=$(wait_state $up_kb)
xs_state=$(xenstore read data/ebb-state)
ktap_print_msg "up to $up_kb KiB, policy offline: state $state; $(hotplug_files); xenstore: $xs_state"
waiting=$state
for block in $MEM/memory[0-9]*; do
    [ "$(cat "$block/state")" = offline ] && echo online_movable > "$block/state"
done
state=$(wait_state $up_kb)
cur=$(cat $SYS/info/current_kb)
mem=$(mem_total_kb)
tot=$(hv_tot_kb)
ktap_print_msg "after a user onlined it: state $state, current $cur KiB, MemTotal $mem kB, tot_pages $tot kB; $(hotplug_files)"
waited_for_user() {
    [ "$waiting" = not_onlined ] && [ "${xs_state#state=not_onlined }" != "$xs_state" ] &&
        [ "$(cat $SYS/ebb/hotplug_blocks)" = 1 ] &&
        [ "$state" = reached ] && holds_exactly "$up_kb"
}
ktap_test_result "an added block nobody onlines is reported not_onlined; onlining it reaches the target" waited_for_user

# 7. rmmod removes ebb's blocks and leaves the guest as it was.
rmmod ebb
mem=$(mem_total_kb)
tot=$(hv_tot_kb)
ktap_print_msg "after rmmod: MemTotal $mem kB, tot_pages $tot kB, $(nr_blocks) blocks; $(dmesg_since "$log_mark" | grep 'ebb: unload' | tr '\n' ' ')"
as_before() {
    ! ebb_loaded && [ "$mem" = "$mem_boot" ] && [ "$(nr_blocks)" = "$blocks_boot" ] &&
        [ "$tot" = "$tot_boot" ]
}
removed_all() { as_before && ! grep -q "System RAM (ebb)" /proc/iomem; }
ktap_test_result "rmmod removes the hot-added blocks: MemTotal, blocks and tot_pages as before" removed_all
# 8. rmmod with a block only half backed: ebb backs the rest, then removes it. The
# target is set before insmod, which reads it at load.
echo online_movable > $MEM/auto_online_blocks
up_kb=$((target0 + 65536))
host_request mem-set $((up_kb / 1024))
ebb_start
state=$(wait_state $up_kb)
half=$(cat $SYS/ebb/hotplug_ballooned_pages)
ktap_print_msg "up to $up_kb KiB: state $state; $(hotplug_files)"
rmmod ebb
mem=$(mem_total_kb)
tot=$(hv_tot_kb)
ktap_print_msg "after rmmod: MemTotal $mem kB, tot_pages $tot kB, $(nr_blocks) blocks"
removed_half() { [ "$state" = reached ] && [ "$half" = 16384 ] && as_before; }
ktap_test_result "rmmod with a half-backed block removes it: MemTotal, blocks and tot_pages as before" removed_half
host_request mem-set $((target0 / 1024))
echo "$online_policy" > $MEM/auto_online_blocks

# 9. No kernel warning.
ktap_test_result "no kernel warning during hotplug" kernel_quiet_since "$log_mark"
ktap_finished
