# SPDX-License-Identifier: GPL-2.0
# Shared by ebb's kselftests: KTAP helpers from the kselftest tree, what a test needs
# to run (ebb_require), loading and unloading ebb.ko, and facts about the guest.
# Sourced from a test's own directory, as the kselftest runner starts it.

. ../kselftest/ktap_helpers.sh

# True when the kernel runs as a Xen domain (CONFIG_XEN_SYS_HYPERVISOR).
on_xen() {
    [ "$(cat /sys/hypervisor/type 2>/dev/null)" = xen ]
}

# True on a Xen PV guest, which keeps its own p2m.
on_xen_pv() {
    [ "$(cat /sys/hypervisor/guest_type 2>/dev/null)" = PV ]
}

# True when ebb removes the blocks it added as the target falls: always but on PV,
# where only a kernel with ebb's hot-remove fixes may, when loaded with pv_hot_remove=1
# (on the kernel command line, which scripts/run-xen.sh sets for the project's patched
# kernel; hotplug/mod.rs, Backing::removes_blocks). Otherwise ebb shrinks a PV guest by
# ballooning.
ebb_removes_blocks() {
    ! on_xen_pv || grep -qw "ebb.pv_hot_remove=1" /proc/cmdline
}

# The balloon's granularity: targets are reached to within one 2 MiB extent.
EXTENT_KB=2048

# True when $1 and $2 (KiB) differ by at most one extent.
within_extent() {
    d=$(($1 - $2))
    [ ${d#-} -le $EXTENT_KB ]
}

# Free memory in kB: MemFree plus the pages waiting in per-CPU free lists, which
# MemFree leaves out (after many single pages are freed they can hold tens of MiB).
# One process reads both files, which narrows the window in which a refill of a
# per-CPU list (pages leave MemFree for the list) is counted in neither.
free_kb() {
    awk '$1 == "count:" { pcp += $2 } /^MemFree:/ { free = $2 } END { print free + pcp * 4 }' \
        /proc/zoneinfo /proc/meminfo
}

# Centiseconds since boot.
uptime_cs() { tr -d . < /proc/uptime | cut -d' ' -f1; }

mem_total_kb() {
    awk '/^MemTotal:/ { print $2 }' /proc/meminfo
}

loaded_modules() {
    cut -d' ' -f1 /proc/modules | sort | tr '\n' ' '
}

ebb_loaded() {
    grep -q '^ebb ' /proc/modules
}

# Asks the host to run `ebbctl ARGS...` and waits for its exit status, which is
# returned. The request goes straight to the console, where the host's agent
# (scripts/host-agent.py) reads it; the answer comes back through xenstore.
# Off ebbhv (no agent) it fails after the wait.
# host_output prints what the last request's ebbctl printed.
host_request() {
    # A random id: a counter kept in a variable would repeat after a request made in
    # a subshell (`tot=$(hv_tot_kb)`), and the next request would read that one's
    # status at once, before the host has run it.
    HOST_REQUEST_ID=$(tr -d - < /proc/sys/kernel/random/uuid | cut -c1-20)
    echo "EBB-HOST-REQUEST $HOST_REQUEST_ID $*" > /dev/console
    # Polls for the status itself: `xenstore wait` waits for one value, so a request
    # that fails would cost the whole minute.
    local status tenths=0
    while [ $tenths -lt 600 ]; do
        status=$(xenstore read "data/ebb-host/$HOST_REQUEST_ID" 2>/dev/null) &&
            return "$status"
        sleep 0.1
        tenths=$((tenths + 1))
    done
    return 125
}

host_output() {
    xenstore read "data/ebb-host/$HOST_REQUEST_ID-output"
}

# host_request's status for a verb the host does not have: ebbhv's own (fail-next,
# raw) under a real Xen, whose dom0 serves the rest with xl and xenstore
# (scripts/xen/dom0-agent.py). host_can_fail is true unless the host says that
# ebbctl fail-next is such a verb, so that a test can skip what needs it.
HOST_UNSUPPORTED=95
host_can_fail() {
    host_request fail-next off
    [ $? != $HOST_UNSUPPORTED ]
}

# `ebbctl info` as one field per line in HV_INFO; hv NAME prints one field, 0 when
# absent (ebbhv lists a hypercall's counter only once it has been made, an injected
# fault only while it is pending). When the last hv_info failed (or none was made),
# hv says so on stderr and prints NO_HV_INFO, which is no number: a comparison with it
# fails and arithmetic on it ends the test with a syntax error, where a 0 would have
# passed for a count.
NO_HV_INFO='no-ebbctl-info!'
HV_INFO=
hv_info() {
    local status
    HV_INFO=
    host_request info --raw >/dev/null 2>&1
    status=$?
    if [ $status != 0 ]; then
        echo "hv_info: ebbctl info failed (status $status)" >&2
        return 1
    fi
    HV_INFO=$(host_output | tr ' ' '\n')
    case "$HV_INFO" in
        *tot_pages=*) ;;
        *) echo "hv_info: ebbctl info printed no tot_pages: '$HV_INFO'" >&2
           HV_INFO=
           return 1 ;;
    esac
}
hv() {
    if [ -z "$HV_INFO" ]; then
        echo "hv $1: no ebbctl info (the last hv_info failed)" >&2
        echo "$NO_HV_INFO"
        return 1
    fi
    v=$(echo "$HV_INFO" | sed -n "s/^$1=//p")
    echo "${v:-0}"
}

# The domain's tot_pages as the hypervisor counts them (`ebbctl info`), in KiB;
# NO_HV_INFO when ebbctl info failed.
hv_tot_kb() {
    if ! hv_info; then
        echo "$NO_HV_INFO"
        return 1
    fi
    echo $(($(hv tot_pages) * 4))
}

# Writes a unique mark (and $1, if given) into the kernel log and prints the mark;
# `dmesg_since MARK` prints the kernel log after it. Tests never clear the log
# (`dmesg -c`): the host reads all of it after the run and charges every warning to
# the test it happened in (tests/guest/init marks each test's start).
kmsg_mark() {
    local mark
    mark="EBB-MARK-$(tr -d - < /proc/sys/kernel/random/uuid | cut -c1-16)"
    echo "$mark ${1:-}" > /dev/kmsg
    echo "$mark"
}
# Prints the kernel log after mark $1; fails, saying so on stderr, when the log does
# not have the mark.
dmesg_since() {
    dmesg | awk -v m="$1" '
        found { print }
        !found && index($0, m) { found = 1 }
        END { if (!found) { print "dmesg_since: no mark " m " in the kernel log" > "/dev/stderr"; exit 1 } }'
}
# True when the kernel logged a warning, BUG or oops after mark $1, or when the log
# does not have the mark (then nobody can tell). Prints what it found on stderr.
#
# One report is the kernel's own and no failure: lockdep's circular dependency between
# a memory hot-remove and a user's sysfs offline, which device_hotplug_lock keeps from
# closing. The host's summariser (scripts/ktap-summary.py, KNOWN_SPLATS) knows it by
# the same lines and prints it as KNOWN; here it is named and passed over, so that a
# test in which lockdep happens to first see that pair does not fail for it.
kernel_warned_since() {
    local log
    log=$(dmesg_since "$1") || return 0
    echo "$log" | awk '
        { line[NR] = $0 }
        # The report starting at line i: up to its stack dump, at most 250 lines.
        function report_end(i,    j) {
            for (j = i + 1; j <= NR && j < i + 250; j++)
                if (line[j] ~ /Call Trace:/)
                    return j
            return j - 1
        }
        function known_hot_remove_cycle(i,    j, end, acquiring, kernfs, hotplug, offline, unregister) {
            if (line[i] !~ /WARNING: possible circular locking dependency detected/)
                return 0
            end = report_end(i)
            for (j = i + 1; j <= end; j++) {
                if (line[j] ~ /is trying to acquire lock:/) acquiring = 1
                if (line[j] ~ /\(kn->active#[0-9]+\)\{.*\}, at: __kernfs_remove/) kernfs = 1
                if (line[j] ~ /\(mem_hotplug_lock\)\{.*\}, at: try_remove_memory/) hotplug = 1
                if (line[j] ~ /memory_subsys_offline/) offline = 1
                if (line[j] ~ /remove_memory_block_devices/) unregister = 1
            }
            return acquiring && kernfs && hotplug && offline && unregister
        }
        END {
            warned = 0
            for (i = 1; i <= NR; i++) {
                if (line[i] !~ /WARNING|BUG|Oops/)
                    continue
                if (known_hot_remove_cycle(i)) {
                    print "KNOWN (lockdep: memory hot-remove vs a sysfs offline, kept apart by device_hotplug_lock): " line[i]
                    continue
                }
                print line[i]
                warned = 1
            }
            exit !warned
        }' >&2
}

# True when the kernel logged no warning, BUG or oops after mark $1 (and has the mark).
kernel_quiet_since() {
    ! kernel_warned_since "$1"
}

# Runs "$@" until it succeeds, for at most $1 seconds.
wait_for() {
    n=$(($1 * 10))
    shift
    while [ $n -gt 0 ]; do
        "$@" && return 0
        sleep 0.1
        n=$((n - 1))
    done
    "$@"
}
# state_is NAME: ebb/state reads NAME; reached_kb KIB: reached, holding KIB.
state_is() { [ "$(cat $SYS/ebb/state)" = "$1" ]; }
reached_kb() { state_is reached && [ "$(cat $SYS/info/current_kb)" = "$1" ]; }

# The guest can talk to xenstore (on Xen, with a store that answers).
have_xenstore() {
    [ -e /dev/xen/xenbus ] && timeout 10 xenstore read domid >/dev/null 2>&1
}

# ebb's sysfs device (the C driver's layout) and the kernel's memory blocks.
SYS=/sys/devices/system/xen_memory/xen_memory0
MEM=/sys/devices/system/memory

ONLINE_POLICY=/sys/module/memory_hotplug/parameters/online_policy

nr_blocks() {
    ls -d $MEM/memory[0-9]* | wc -l
}

# Waits until target_kb reads $1 (when given), then until the balloon leaves
# `working`; prints the state it settled in.
wait_state() {
    [ -z "${1:-}" ] || wait_for 30 target_is "$1"
    wait_for 60 settled
    echo "$SETTLED_STATE"
}
target_is() { [ "$(cat $SYS/target_kb)" = "$1" ]; }
# True when ebb/state is one the balloon stays in; SETTLED_STATE is what it read.
settled() {
    SETTLED_STATE=$(cat $SYS/ebb/state)
    case "$SETTLED_STATE" in
        reached|stalled|gave_up|not_onlined) return 0 ;;
    esac
    return 1
}

hotplug_files() {
    echo "blocks $(cat $SYS/ebb/hotplug_blocks) onlined $(cat $SYS/ebb/hotplug_onlined)" \
        "backed $(cat $SYS/ebb/hotplug_backed_pages) ballooned $(cat $SYS/ebb/hotplug_ballooned_pages)" \
        "unremovable $(cat $SYS/ebb/hotplug_unremovable)"
}

# The memory blocks ebb added (memoryN names), lowest first.
ebb_blocks() {
    cut -d' ' -f1 $SYS/ebb/hotplug_block_list
}

# The state ebb gives block $1 (memoryN) in hotplug_block_list.
ebb_block_state() {
    awk -v b="$1" '$1 == b { print $2 }' $SYS/ebb/hotplug_block_list
}

# The sum of the pages in field $2 (backed_pages, ballooned_pages) of the blocks that
# $1 selects: a memoryN name, or !memoryN for every other block.
ebb_block_pages() {
    awk -v sel="$1" -v key="$2=" '
        (sel ~ /^!/ ? $1 != substr(sel, 2) : $1 == sel) {
            for (i = 2; i <= NF; i++)
                if (index($i, key) == 1) sum += substr($i, length(key) + 1)
        }
        END { print sum + 0 }' $SYS/ebb/hotplug_block_list
}

# Ends the test with a single SKIP line, "$1 ($2)" (a plan of one: the host's
# allow-lists, tests/selftests/ebb/expected-skips.*, match that line).
skip_test() {
    ktap_set_plan 1
    ktap_test_skip "$1 ($2)"
    ktap_finished
}

# ebb_require WHAT NEED...: skips the whole test, one SKIP line "WHAT (why)", at the
# first NEED that this guest does not meet; checked in the order given, so that the
# reason is the most basic one missing. Each NEED:
#   xen        the kernel runs as a Xen domain (ebb.ko refuses to load elsewhere)
#   ebb.ko     ebb.ko is installed where modprobe finds it
#   memcheck   the guest-side memcheck program (tests/guest/memcheck.c)
#   vmmcall    the guest-side vmmcall program (tests/guest/vmmcall.c)
#   xenstore   the xenstore tool, and a store that answers
#   host       the host's agent answers requests (scripts/run-guest.sh under ebbhv,
#              scripts/xen/dom0-agent.py under a real Xen)
#   fail-next  the host can inject faults: ebbhv's ebbctl fail-next
#   frames     the host has ebbhv's frame verbs (ebbctl mem-query, p2m, mem-offline)
#   hotplug    the kernel can hotplug memory
ebb_require() {
    local what=$1 need why
    shift
    for need in "$@"; do
        case "$need" in
        # The case's status is its branch's last command: the check.
        xen) why="not on Xen"; on_xen ;;
        ebb.ko) why="ebb.ko not installed"; [ -n "$(ebb_ko)" ] ;;
        memcheck) why="memcheck not installed"; command -v memcheck >/dev/null ;;
        vmmcall) why="vmmcall not installed"; command -v vmmcall >/dev/null ;;
        xenstore) why="xenstore does not answer"; have_xenstore ;;
        host) why="no host agent answers (run under scripts/run-guest.sh)"; host_request ping ;;
        fail-next) why="the hypervisor has no fail-next (not ebbhv)"; host_can_fail ;;
        frames) why="the host has no page offline verbs (not ebbhv)"; host_request mem-query 0 ;;
        hotplug) why="no memory hotplug in this kernel"; [ -w $MEM/auto_online_blocks ] ;;
        *) ktap_exit_fail_msg "ebb_require: no such need '$need'" ;;
        esac || skip_test "$what" "$why"
    done
}

# Rounds that run in another process (inside memcheck, between its fill and its
# check) cannot report KTAP results themselves: each records `ok NAME` or
# `fail NAME` in the file $RESULTS, and the test reads them back with round_result.
round_pass() { echo "ok $1" >> "$RESULTS"; echo "# $1: ok"; }
round_fail() { echo "fail $1" >> "$RESULTS"; echo "# $1: FAILED: $2"; }
# Whether round NAME $1 passed and never failed.
round_result() { grep -qx "ok $1" "$RESULTS" && ! grep -qx "fail $1" "$RESULTS"; }

# Reports a test module's own KTAP results (its `ok N name` and `not ok N name`
# lines, in $1) as this test's results. A here-document, not a pipe: the counts
# must change in this shell.
ktap_relay_results() {
    local line
    while read -r line; do
        case "$line" in
        "ok "*) ktap_test_pass "${line#ok [0-9]* }" ;;
        "not ok "*) ktap_test_fail "${line#not ok [0-9]* }" ;;
        esac
    done <<END
$(echo "$1" | grep -E '^(not )?ok [0-9]+ ')
END
}

# Loads the test module ebb_hostile with parameters $2... (it runs its attacks while
# loading), unloads it, and leaves what it logged since kmsg mark $1 in HOSTILE_OUT,
# without its prefix. When it refused to load, skips the test ($WHAT) with the reason
# it gave, or fails it if it gave none.
hostile_load() {
    local mark=$1 loaded reason
    shift
    modprobe ebb_hostile "$@" 2>/dev/null
    loaded=$?
    HOSTILE_OUT=$(dmesg_since "$mark" | sed -n 's/^.*ebb_hostile: //p')
    if [ $loaded != 0 ]; then
        reason=$(echo "$HOSTILE_OUT" | sed -n 's/^skip: //p' | head -n 1)
        [ -n "$reason" ] && skip_test "$WHAT" "$reason"
        ktap_exit_fail_msg "modprobe ebb_hostile failed and the module said nothing: $HOSTILE_OUT"
    fi
    rmmod ebb_hostile
}

# ebb.ko's path as the module tools find it (modules.dep under /lib/modules/$(uname
# -r), where scripts/build-initramfs.sh installs it with depmod data, as `make
# modules_install` would); empty when it is not installed. Only the output tells:
# busybox's modinfo exits 0 for a module it does not find.
ebb_ko() {
    modinfo -n ebb 2>/dev/null
}

# Loads ebb.ko (modprobe) with module parameters "$@"; fails, with modprobe's
# message, when it does not load. Fails too when ebb is loaded already: modprobe would
# say yes without loading it, and its parameters would not apply.
ebb_load() {
    if ebb_loaded; then
        echo "ebb_load: ebb is loaded already" >&2
        return 1
    fi
    modprobe ebb "$@"
}

# Unloads ebb.ko if it is loaded; fails when rmmod does.
ebb_unload() {
    ! ebb_loaded || rmmod ebb
}

# Loads ebb.ko with parameters "$@", or ends the test (Bail out) when it does not load.
ebb_start() {
    ebb_load "$@" || ktap_exit_fail_msg "modprobe ebb $* failed ($(ebb_ko))"
}

# The start of a test of ebb against the host: ebb unloaded, what the guest holds
# without it read (online_policy: auto_online_blocks; target0: memory/target;
# mem_boot: MemTotal; blocks_boot: the memory blocks; tot_boot: the hypervisor's
# tot_pages, KiB), a mark $1 in the kernel log (log_mark, for dmesg_since), then ebb
# loaded with parameters "$2"... (or the test ends).
ebb_start_measured() {
    local name=$1
    shift
    ebb_unload
    online_policy=$(cat $MEM/auto_online_blocks)
    target0=$(xenstore read memory/target)
    mem_boot=$(mem_total_kb)
    blocks_boot=$(nr_blocks)
    tot_boot=$(hv_tot_kb)
    log_mark=$(kmsg_mark "$name")
    ebb_start "$@"
}

# Runs memcheck over all free memory but $1 KiB, once, and prints its lines; sets
# fill_mib. True when it ran to the end with every page intact (on a real Xen a page
# without memory behind it crashes the domain instead).
touch_free_memory() {
    local out status
    fill_mib=$((($(free_kb) - $1) / 1024))
    out=$(memcheck "$fill_mib" 1 true 2>&1)
    status=$?
    echo "$out" | while read -r line; do ktap_print_msg "memcheck: $line"; done
    [ $status = 0 ] && echo "$out" | grep -q ": 0 of .* pages mismatch"
}

# Raises the maximum of a domain that has less than $1 KiB of room to grow above its
# target and what it holds (a Xen domU with maxmem = memory), as `xl mem-max` does, so
# that ebb hot-adds blocks (or ends the test). ebb_restore_max [KEPT_KIB] puts the
# maximum back, raised by KEPT_KIB when blocks ebb added stayed as ordinary memory
# (below what the guest holds, the balloon could not take back what it gave out).
# Sets static_max0 and raised.
ebb_make_room() {
    local held want
    static_max0=$(xenstore read memory/static-max)
    raised=
    held=$(hv_tot_kb)
    want=$(xenstore read memory/target)
    [ "$held" -le "$want" ] || want=$held
    want=$((want + $1))
    if [ "$static_max0" -lt "$want" ]; then
        host_request mem-max "${want}k" || ktap_exit_fail_msg "mem-max failed: $(host_output)"
        raised=yes
    fi
}
ebb_restore_max() {
    local max_kb=$((static_max0 + ${1:-0}))
    [ -z "$raised" ] || host_request mem-max "${max_kb}k" ||
        ktap_print_msg "mem-max ${max_kb}k failed: $(host_output)"
}

# rmmod while the host holds ebb with fail-next, then clears the faults. Reads what
# the guest holds after: RMMOD_STATUS, mem (MemTotal), tot (the hypervisor's tot_pages,
# KiB). False when the faults could not be cleared.
rmmod_held() {
    rmmod ebb
    RMMOD_STATUS=$?
    mem=$(mem_total_kb)
    tot=$(hv_tot_kb)
    ktap_print_msg "after rmmod (status $RMMOD_STATUS): MemTotal $mem kB, tot_pages $tot kB, $(nr_blocks) memory blocks"
    host_request fail-next off
}

# rmmod in the middle of a balloon-down, from START_KB (what info/current_kb reads)
# by DOWN_KB. The host holds the worker mid-way (ebbctl fail-next): the first decrease
# is cut after CUT extents of EXTENT_KB and the next 20 do nothing, so the balloon is
# stalled with exactly CUT extents out when rmmod runs; rmmod must take every one back
# (a populate, which nothing fails). True when the balloon stalled with exactly those
# out (ebb/ballooned_pages, info/current_kb and MemTotal) and rmmod took them back:
# ebb unloaded, MemTotal and the hypervisor's tot_pages at MEM_BOOT and TOT_BOOT, what
# they were before insmod. Leaves no fault pending.
rmmod_mid_balloon() {
    local start_kb=$1 down_kb=$2 cut=$3 extent_kb=$4 mem_boot=$5 tot_boot=$6
    local ok=1 state pages cur
    { host_request fail-next decrease 1 "$cut" && host_request fail-next decrease 20 0; } || {
        ktap_print_msg "ebbctl fail-next failed: $(host_output)"
        ok=0
    }
    echo $((start_kb - down_kb)) > $SYS/target_kb
    wait_for 30 state_is stalled
    state=$(cat $SYS/ebb/state)
    pages=$(cat $SYS/ebb/ballooned_pages)
    cur=$(cat $SYS/info/current_kb)
    mem=$(mem_total_kb)
    ktap_print_msg "before rmmod: state $state ($(cat $SYS/ebb/reason)), $pages pages ballooned, current $cur KiB, MemTotal $mem kB"
    [ "$state" = stalled ] && [ "$pages" = $((cut * extent_kb / 4)) ] &&
        [ "$cur" = $((start_kb - cut * extent_kb)) ] &&
        [ "$mem" = $((mem_boot - cut * extent_kb)) ] || ok=0
    rmmod_held || ok=0
    [ $ok = 1 ] && [ $RMMOD_STATUS = 0 ] && ! ebb_loaded && [ "$mem" = "$mem_boot" ] &&
        [ "$tot" = "$tot_boot" ]
}
