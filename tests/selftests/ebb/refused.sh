#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# The balloon when the hypervisor handles only part of a reservation call, or fails
# it with an errno (issue 6): the host injects the fault (`ebbctl fail-next`, ebbhv
# only) and ebb must keep exactly what the hypervisor did, give the guest back what it
# did not take, report hypervisor_refused, back off
# instead of spinning, and reach the target once the faults are used up.
# - a balloon-down whose first decrease is cut after 100 of its 256 extents and whose
#   next three do nothing;
# - a balloon-in whose populates fail with -EBUSY: the attempts' times show the
#   backoff doubling up to max_schedule_delay, and max_retry_count 0 never giving up;
# - the same with max_retry_count 3: gave_up after exactly 3 attempts;
# - a balloon-in whose first populate is cut after 100 extents and the next four fail;
# - hotplug growth whose first populate is cut and the next four fail;
# - rmmod while the populates fail: it retries and gives everything back;
# - a user offlining one of ebb's blocks while the decrease fails: the frames stay
#   the domain's, and removing the block later must account for them;
# - rmmod gives everything back.
# Each step checks the guest's books (info/current_kb, ebb/pages_out, ebb/pages_in,
# MemTotal) against the hypervisor's tot_pages to the page, at the point where the
# faults hold the balloon still.
cd "$(dirname "$0")" || exit 1
. ./lib.sh

# The worker's longest backoff, so that the faults are used up quickly.
MAX_DELAY_S=4
# Balloon steps: 512 MiB, 256 extents of 2 MiB (one decrease or populate each).
STEP_KB=524288
# Extents the cut calls do.
CUT=100
CUT_KB=$((CUT * 2048))
# Hotplug growth: two 128 MiB blocks.
GROW_KB=262144
# Failing calls that hold the balloon still until the test has read the books and
# clears them (`fail-next off`): far more than the worker makes meanwhile.
HOLD_CALLS=1000
DRAIN_WARN="unload: the hypervisor backs none"

ktap_print_header
ebb_require "balloon against a hypervisor that refuses calls" xen ebb.ko xenstore host fail-next hotplug
ktap_set_plan 10

# Calls the pending faults of op $1 still affect, from the last hv_info.
pending_calls() {
    hv "fail_$1" | tr ',' '\n' | awk -F: '{ n += $1 } END { print n + 0 }'
}
inject() {
    host_request fail-next "$@" || ktap_exit_fail_msg "ebbctl fail-next $* failed: $(host_output)"
}

counter() { cat $SYS/ebb/"$1"; }

# Watches the worker's attempts for at most $1 s, until ebb/state says reached: one
# line "CS RETRY DELAY STATE" each time ebb/failures moves from $2 (read before the
# target was set, so that an attempt made before the watch began counts) or from what
# it read last: centiseconds since boot, then retry_count, schedule_delay and
# ebb/state as they read right after; a last line "CS 0 0 reached". Polls with the
# shell's own `read`, often and cheaply.
watch_attempts() {
    local up last f st rc sd end
    read -r up _ < /proc/uptime
    end=$((${up%.*} + $1))
    last=$2
    while [ "${up%.*}" -lt $end ]; do
        read -r up _ < /proc/uptime
        read -r f < $SYS/ebb/failures
        read -r st < $SYS/ebb/state
        if [ "$f" != "$last" ]; then
            read -r rc < $SYS/retry_count
            read -r sd < $SYS/schedule_delay
            echo "${up%.*}${up#*.} $rc $sd $st"
            last=$f
        fi
        if [ "$st" = reached ]; then
            echo "${up%.*}${up#*.} 0 0 reached"
            return 0
        fi
        sleep 0.05
    done
    return 1
}

# The guest's and the hypervisor's books at one moment, in KiB and pages:
# CUR MEMT TOT OUT IN CALLS FAILS STATE REASON. Read twice around `ebbctl info`, and
# only accepted when the guest's side did not move in between.
snapshot() {
    i=0
    while [ $i -lt 20 ]; do
        a="$(cat $SYS/info/current_kb) $(mem_total_kb) $(counter pages_out) $(counter pages_in) $(counter hypercalls)"
        hv_info || return 1
        b="$(cat $SYS/info/current_kb) $(mem_total_kb) $(counter pages_out) $(counter pages_in) $(counter hypercalls)"
        if [ "$a" = "$b" ]; then
            set -- $a
            CUR=$1 MEMT=$2 OUT=$3 IN=$4 CALLS=$5
            TOT=$(($(hv tot_pages) * 4))
            FAILS=$(counter failures)
            STATE=$(cat $SYS/ebb/state)
            REASON=$(cat $SYS/ebb/reason)
            return 0
        fi
        i=$((i + 1))
    done
    return 1
}
show() {
    ktap_print_msg "$1: state $STATE, reason $REASON, current $CUR kB, MemTotal $MEMT kB, tot_pages $TOT kB, pages_out $OUT, pages_in $IN, hypercalls $CALLS, failures $FAILS; pending: decrease $(pending_calls decrease), populate $(pending_calls populate)"
}
# Keeps the last snapshot as the baseline B_*.
baseline() {
    snapshot || ktap_exit_fail_msg "no consistent snapshot"
    B_CUR=$CUR B_MEMT=$MEMT B_TOT=$TOT B_OUT=$OUT B_IN=$IN B_CALLS=$CALLS B_FAILS=$FAILS
    B_DEC=$(hv hc_memory_op_1) B_POP=$(hv hc_memory_op_6)
}
# The guest's books moved by exactly $1 KiB from the baseline, as the hypervisor's did.
moved_exactly() {
    [ $((CUR - B_CUR)) = "$1" ] && [ $((TOT - B_TOT)) = "$1" ] &&
        [ $((MEMT - B_MEMT)) = "$1" ] && [ "$CUR" = "$TOT" ]
}

# Sets target $1 KiB with faults of op $2 (decrease or populate) injected, the first
# call cut after $CUT extents: true when the balloon stalls there on
# hypervisor_refused with a fault still pending and exactly those extents moved, by
# $3 KiB (negative: out), in both books and in ebb/pages_out or pages_in. With $4
# `release`, the faults that hold the balloon still are then cleared (they are
# injected to hold it for as long as reading the books takes, which in the debug
# kernel is longer than any fixed backoff). Then waits up to 60 s for the target
# and takes the books again.
stalls_after_cut() {
    local target=$1 op=$2 moved_kb=$3 release=${4:-} moved ok=1
    echo "$target" > $SYS/target_kb
    wait_for 30 state_is stalled
    snapshot
    show "stalled after the cut"
    case "$op" in
    decrease) moved=$((OUT - B_OUT)) ;;
    *) moved=$((IN - B_IN)) ;;
    esac
    [ "$STATE" = stalled ] && [ "$REASON" = hypervisor_refused ] &&
        [ "$(pending_calls "$op")" -ge 1 ] && moved_exactly "$moved_kb" &&
        [ "$moved" = $((CUT_KB / 4)) ] && ok=0
    [ "$release" = release ] && inject off
    wait_for 60 reached_kb "$target"
    snapshot
    show "after the faults"
    return $ok
}

ebb_unload
online_policy=$(cat $MEM/auto_online_blocks)
mem_boot=$(mem_total_kb)
tot_boot=$(hv_tot_kb)
target0=$(xenstore read memory/target)
log_mark=$(kmsg_mark refused.sh)
ktap_print_msg "before insmod: MemTotal $mem_boot kB, tot_pages $tot_boot kB, memory/target $target0 kB"

# Leaves no fault pending and ebb unloaded. Frames the domain keeps beyond what the
# guest holds (a failure above) stay counted in memory/target, so that the next
# test's balloon does not take them out of the guest's boot memory.
RESTORED=
restore() {
    [ -n "$RESTORED" ] && return
    RESTORED=1
    host_request fail-next off
    ebb_unload
    echo "$online_policy" > $MEM/auto_online_blocks
    tot_end=$(hv_tot_kb)
    if [ "$tot_end" != "$tot_boot" ]; then
        ktap_print_msg "the domain holds $((tot_end - tot_boot)) kB more than before insmod: memory/target follows"
        host_request mem-set "$((target0 + tot_end - tot_boot))k"
    fi
}
trap restore EXIT

# --- 1. Bad fail-next arguments are refused and inject nothing: ebbctl's own
# checks, and through `raw` the hypervisor's.
bad=0
for req in "2:fail-next populate 0 1" "2:fail-next populate 1 EBUSY" "2:fail-next grow 1 1" \
    "1:raw fail-next populate 1 -ENOPE" "1:raw fail-next populate 1 1 1"; do
    want=${req%%:*}
    host_request ${req#*:}
    status=$?
    ktap_print_msg "ebbctl ${req#*:}: status $status: $(host_output)"
    [ $status = "$want" ] || bad=1
done
hv_info
bad_requests_refused() {
    [ $bad = 0 ] && [ "$(hv fail_populate)" = 0 ] && [ "$(hv fail_decrease)" = 0 ]
}
ktap_test_result "malformed fail-next requests are refused and inject nothing" bad_requests_refused

ebb_start
echo $MAX_DELAY_S > $SYS/max_schedule_delay
wait_for 30 state_is reached || ktap_exit_fail_msg "the balloon did not settle after insmod"
start_kb=$(cat $SYS/info/current_kb)

# --- 2. Balloon-down, the first decrease cut after $CUT of its 256 extents, the next
# three doing nothing: while stalled, exactly the extents done are out and everything
# else is the guest's again; once the faults are used up, the target is reached.
baseline
show "baseline"
down_kb=$((start_kb - STEP_KB))
inject decrease 1 $CUT
inject decrease 3 0
stalls_after_cut $down_kb decrease -$CUT_KB
stalled_ok=$?
decreases=$(($(hv hc_memory_op_1) - B_DEC))
ktap_print_msg "decrease calls seen by ebbhv: $decreases, by ebb: $((CALLS - B_CALLS)); failures $((FAILS - B_FAILS))"
decrease_cut_accounted() {
    [ $stalled_ok = 0 ] && [ "$STATE" = reached ] && moved_exactly -$STEP_KB &&
        [ $((OUT - B_OUT)) = $((STEP_KB / 4)) ] && [ "$(pending_calls decrease)" = 0 ] &&
        [ $((CALLS - B_CALLS)) = "$decreases" ] && [ $((FAILS - B_FAILS)) = 4 ]
}
ktap_test_result "a decrease cut after $CUT of 256 extents: exactly those are out, the rest back in the guest; hypervisor_refused while backing off; target reached after" decrease_cut_accounted

# --- 3. Backoff, measured. Balloon-in with the next 5 populates failing (-EBUSY)
# and max_retry_count 0 (the default: never give up): each attempt is one populate the
# hypervisor fails; the attempts come 1, 2, 4 and 4 s apart (the delay doubles up to
# max_schedule_delay, $MAX_DELAY_S s), schedule_delay reads 2, 4, 4, 4, 4 after
# them and retry_count 1 to 5; the state stays stalled through all five (never
# gave_up), nothing moves; the sixth attempt, one more delay later, reaches the target
# (reached reads at least 4 s after the fifth attempt: that attempt's start cannot be
# seen, because the populate of 512 MiB and freeing the pages hold the balloon's lock).
# A fixed delay (1, 1, 1, 1 or 4, 4, 4, 4 s) or a doubling without the cap (... 8 s)
# fails; the times are the guest's clock, read every 50 ms or so: each gap may read
# 0.2 s short (polling) or up to 1 s long (a busy host delays the guest's timers).
BACKOFF_EXPECT="100 200 400 400"
baseline
max_retry0=$(cat $SYS/max_retry_count)
inject populate 5 -EBUSY
echo $start_kb > $SYS/target_kb
watch_attempts 40 "$B_FAILS" > /tmp/ebb-attempts
snapshot
show "after the faults"
pops=$(($(hv hc_memory_op_6) - B_POP))
ktap_print_msg "attempts (centiseconds since boot, retry_count, schedule_delay, state): $(tr '\n' ';' < /tmp/ebb-attempts)"
ktap_print_msg "populates seen by ebbhv: $pops, ebb failures: $((FAILS - B_FAILS))"
backoff=$(awk -v want="$BACKOFF_EXPECT" '
    BEGIN { n = split(want, w, " ") }
    { t[NR] = $1; r[NR] = $2; d[NR] = $3; s[NR] = $4 }
    END {
        ok = NR == 6 && s[6] == "reached"
        for (i = 1; i <= 5; i++) {
            if (r[i] != i || d[i] != (i == 1 ? 2 : 4) || s[i] != "stalled") ok = 0
            gap = t[i + 1] - t[i]
            gaps = gaps " " gap
            if (i <= n && (gap < w[i] - 20 || gap >= w[i] + 100)) ok = 0
            if (i > n && gap < 380) ok = 0
        }
        print (ok ? "ok" : "bad") gaps
    }' /tmp/ebb-attempts)
ktap_print_msg "gaps between attempts, then to reached (cs): ${backoff#* } (want $BACKOFF_EXPECT -20/+100, then at least 380)"
backoff_doubles() {
    [ "$max_retry0" = 0 ] && [ "${backoff%% *}" = ok ] && [ "$STATE" = reached ] &&
        moved_exactly $STEP_KB && [ $((IN - B_IN)) = $((STEP_KB / 4)) ] &&
        [ "$pops" = 6 ] && [ $((FAILS - B_FAILS)) = 5 ] && [ "$(pending_calls populate)" = 0 ]
}
ktap_test_result "populates failing with -EBUSY: one populate per attempt, 1, 2, 4, 4 s apart (doubling, capped at max_schedule_delay); max_retry_count 0 never gives up; reached after" backoff_doubles

# --- 3b. max_retry_count 3: the third failed attempt gives up (gave_up, retry_count
# 3, exactly 3 populates), and no attempt follows in 10 s (more than twice the
# longest delay); a new target tries again.
echo $down_kb > $SYS/target_kb
wait_for 60 reached_kb $down_kb || ktap_exit_fail_msg "the balloon did not reach $down_kb kB"
echo 3 > $SYS/max_retry_count
baseline
inject populate 5 -EBUSY
echo $start_kb > $SYS/target_kb
wait_for 30 state_is gave_up
gave_up_fails=$(counter failures)
sleep 10
snapshot
show "10 s after giving up"
pops=$(($(hv hc_memory_op_6) - B_POP))
ktap_print_msg "retry_count $(cat $SYS/retry_count), populates seen by ebbhv: $pops, ebb failures: $((FAILS - B_FAILS)) ($((gave_up_fails - B_FAILS)) when it gave up), faults pending $(pending_calls populate)"
gave_up_ok=1
[ "$STATE" = gave_up ] && [ "$REASON" = hypervisor_refused ] && [ "$(cat $SYS/retry_count)" = 3 ] &&
    [ "$pops" = 3 ] && [ $((gave_up_fails - B_FAILS)) = 3 ] && [ $((FAILS - B_FAILS)) = 3 ] &&
    [ "$(pending_calls populate)" = 2 ] && moved_exactly 0 && gave_up_ok=0
host_request fail-next off
echo $start_kb > $SYS/target_kb
wait_for 30 reached_kb $start_kb
snapshot
echo 0 > $SYS/max_retry_count
gave_up_after_3() {
    [ $gave_up_ok = 0 ] && [ "$STATE" = reached ] && moved_exactly $STEP_KB
}
ktap_test_result "max_retry_count 3: gave_up after exactly 3 failed attempts, none after; a new target reaches it" gave_up_after_3

# --- 4. Balloon-in whose first populate is cut after $CUT extents and the next ones
# fail until the books are read: exactly those extents are back, then everything is.
echo $down_kb > $SYS/target_kb
wait_for 60 reached_kb $down_kb || ktap_exit_fail_msg "the balloon did not reach $down_kb kB"
baseline
inject populate 1 $CUT
inject populate $HOLD_CALLS -EBUSY
stalls_after_cut $start_kb populate $CUT_KB release
cut_ok=$?
populate_cut_accounted() {
    [ $cut_ok = 0 ] && [ "$STATE" = reached ] && moved_exactly $STEP_KB &&
        [ $((IN - B_IN)) = $((STEP_KB / 4)) ] && [ "$(pending_calls populate)" = 0 ]
}
ktap_test_result "a populate cut after $CUT extents during balloon-in: exactly those are back, then the rest" populate_cut_accounted

# --- 5. Hotplug growth: the first populate of the onlined blocks is cut after 10
# extents, the next ones fail until the books are read (as in 4): ebb holds exactly
# what was backed, says why it waits, and grows to the target after.
echo online_movable > $MEM/auto_online_blocks
baseline
inject populate 1 10
inject populate $HOLD_CALLS -EBUSY
up_kb=$((start_kb + GROW_KB))
echo $up_kb > $SYS/target_kb
wait_for 60 state_is stalled
snapshot
backed=$(cat $SYS/ebb/hotplug_backed_pages)
show "stalled while growing"
ktap_print_msg "$(hotplug_files)"
grow_ok=1
if [ "$STATE" = stalled ] && [ "$REASON" = hypervisor_refused ] &&
    [ "$(pending_calls populate)" -ge 1 ] && moved_exactly 20480 && [ "$backed" = 5120 ]; then
    grow_ok=0
fi
inject off
wait_for 60 reached_kb $up_kb
snapshot
show "after the faults"
ktap_print_msg "$(hotplug_files)"
growth_cut_accounted() {
    [ $grow_ok = 0 ] && [ "$STATE" = reached ] && moved_exactly $GROW_KB &&
        [ "$(cat $SYS/ebb/hotplug_backed_pages)" = $((GROW_KB / 4)) ] &&
        [ "$(pending_calls populate)" = 0 ]
}
ktap_test_result "hotplug growth with a populate cut after 10 extents, then failing: exactly those backed while stalled; the target reached after" growth_cut_accounted

# --- 6. rmmod with 512 MiB ballooned while the populates fail (-EBUSY) twice: it
# warns, waits and retries, then gives every page back.
down_kb=$((start_kb - STEP_KB))
echo $down_kb > $SYS/target_kb
wait_for 90 reached_kb $down_kb || ktap_exit_fail_msg "the balloon did not reach $down_kb kB"
ktap_print_msg "down at $down_kb kB: $(hotplug_files)"
inject populate 2 -EBUSY
warns0=$(dmesg_since "$log_mark" | grep -c "$DRAIN_WARN")
rmmod ebb
status=$?
warns=$(($(dmesg_since "$log_mark" | grep -c "$DRAIN_WARN") - warns0))
mem=$(mem_total_kb)
hv_info
tot=$(($(hv tot_pages) * 4))
ktap_print_msg "rmmod status $status after $warns warnings: MemTotal $mem kB (before insmod $mem_boot), tot_pages $tot kB (before $tot_boot); populate faults pending $(pending_calls populate)"
rmmod_retries() {
    [ $status = 0 ] && ! ebb_loaded && [ $warns = 2 ] && [ "$(pending_calls populate)" = 0 ] &&
        [ "$mem" = "$mem_boot" ] && [ "$tot" = "$tot_boot" ]
}
ktap_test_result "rmmod while populates fail with -EBUSY: it retries after backing off and gives every page back (MemTotal and tot_pages as before insmod)" rmmod_retries

# --- 7. A user offlines one of ebb's blocks while the decrease fails: the block's
# frames stay the domain's, and the books say so; removing the block (the target back
# at the boot size) must not lose them.
ebb_start
echo $MAX_DELAY_S > $SYS/max_schedule_delay
echo $up_kb > $SYS/target_kb
wait_for 90 reached_kb $up_kb || {
    # What ebb waits for: a run once stopped here with both blocks added, nothing
    # backed and no populate made.
    ktap_print_msg "not grown: state $(cat $SYS/ebb/state) ($(cat $SYS/ebb/reason)), current $(cat $SYS/info/current_kb) KiB; $(hotplug_files)"
    ktap_print_msg "blocks: $(tr '\n' ';' < $SYS/ebb/hotplug_block_list)"
    for b in $(ebb_blocks); do ktap_print_msg "$b: $(cat $MEM/$b/state) $(cat $MEM/$b/valid_zones)"; done
    ktap_exit_fail_msg "the guest did not grow to $up_kb kB"
}
block=$(ebb_blocks | sed -n 2p)
baseline
inject decrease 1 -EBUSY
if echo offline > "$MEM/$block/state"; then status=0; else status=1; fi
sleep 1
snapshot
show "after offlining $block"
warning=$(dmesg_since "$log_mark" | grep "hypervisor took back 0 of" | tail -n 1)
ktap_print_msg "offline status $status; ${warning:-no warning}; $(grep "^$block " $SYS/ebb/hotplug_block_list)"
kept_ok=1
if [ $status = 0 ] && [ -n "$warning" ] && [ "$CUR" = "$TOT" ] && [ "$TOT" = "$B_TOT" ] &&
    [ $((B_MEMT - MEMT)) = 131072 ] &&
    grep -q "^$block offline zone=none backed_pages=32768 " $SYS/ebb/hotplug_block_list; then
    kept_ok=0
fi
echo $start_kb > $SYS/target_kb
wait_for 60 reached_kb $start_kb
sleep 1
snapshot
show "back at $start_kb kB"
ktap_print_msg "$(hotplug_files); $(dmesg_since "$log_mark" | grep "still backs" | tail -n 1)"
# What the guest has (MemTotal) and what the hypervisor gives it (tot_pages) moved
# together since insmod, whatever the hypervisor kept.
offline_keeps_frames() {
    [ $kept_ok = 0 ] && [ "$STATE" = reached ] && [ "$CUR" = "$TOT" ] &&
        [ $((MEMT - mem_boot)) = $((TOT - tot_boot)) ] && [ "$(cat $SYS/ebb/hotplug_blocks)" = 0 ]
}
ktap_test_result "a failed decrease while a user offlines $block keeps its frames the domain's; removing it later keeps MemTotal and tot_pages in step" offline_keeps_frames

# --- 8. rmmod gives everything back.
rmmod ebb
status=$?
mem=$(mem_total_kb)
tot=$(hv_tot_kb)
ktap_print_msg "rmmod status $status: MemTotal $mem kB (before insmod $mem_boot), tot_pages $tot kB (before $tot_boot)"
rmmod_gives_back() {
    [ $status = 0 ] && ! ebb_loaded && [ "$mem" = "$mem_boot" ] && [ "$tot" = "$tot_boot" ]
}
ktap_test_result "rmmod after refused calls: MemTotal and tot_pages as before insmod" rmmod_gives_back

# --- 9. No kernel warning, and no fault left pending.
restore
hv_info
quiet_and_clean() {
    kernel_quiet_since "$log_mark" && [ "$(hv fail_populate)" = 0 ] &&
        [ "$(hv fail_decrease)" = 0 ]
}
ktap_test_result "no kernel warning; no fault left pending" quiet_and_clean
ktap_finished
