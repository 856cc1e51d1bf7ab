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
HOST_REQUEST_SEQ=0
host_request() {
    HOST_REQUEST_SEQ=$((HOST_REQUEST_SEQ + 1))
    HOST_REQUEST_ID="$$x$HOST_REQUEST_SEQ"
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

# The domain's tot_pages as the hypervisor counts them (`ebbctl info`), in KiB.
hv_tot_kb() {
    host_request info --raw >/dev/null 2>&1 || return 1
    pages=$(host_output | tr ' ' '\n' | sed -n 's/^tot_pages=//p')
    echo $((pages * 4))
}

# The guest can talk to xenstore (on Xen, with a store that answers).
have_xenstore() {
    [ -e /dev/xen/xenbus ] && timeout 10 xenstore read domid >/dev/null 2>&1
}
