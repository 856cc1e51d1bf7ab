# SPDX-License-Identifier: GPL-2.0
# Shared by ebb's kselftests: KTAP helpers from the kselftest tree and facts about
# the guest. Sourced from a test's own directory.

. ../kselftest/ktap_helpers.sh

EBB_KO=/lib/modules/$(uname -r)/updates/ebb.ko

# True when the kernel runs as a Xen domain (CONFIG_XEN_SYS_HYPERVISOR).
on_xen() {
    [ "$(cat /sys/hypervisor/type 2>/dev/null)" = xen ]
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
free_kb() {
    pcp=$(awk '$1 == "count:" { n += $2 } END { print n + 0 }' /proc/zoneinfo)
    echo $(($(awk '/^MemFree:/ { print $2 }' /proc/meminfo) + pcp * 4))
}

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
# does not have the mark (then nobody can tell).
kernel_warned_since() {
    local log
    log=$(dmesg_since "$1") || return 0
    echo "$log" | grep -E "WARNING|BUG|Oops" >&2
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

# Ends the test with a single SKIP line, "$1 ($2)".
skip_test() {
    ktap_set_plan 1
    ktap_test_skip "$1 ($2)"
    ktap_finished
}

# Skips test "$1" unless ebb.ko can run here under ebbhv with the host's agent
# answering, and, with "$2" = hotplug, unless the kernel can hotplug memory.
require_ebbhv() {
    on_xen || skip_test "$1" "not on Xen"
    [ -f "$EBB_KO" ] || skip_test "$1" "ebb.ko not installed"
    have_xenstore || skip_test "$1" "xenstore does not answer"
    host_request ping || skip_test "$1" "no host agent answers (run under scripts/run-guest.sh)"
    [ "${2:-}" != hotplug ] || [ -w $MEM/auto_online_blocks ] ||
        skip_test "$1" "no memory hotplug in this kernel"
}
