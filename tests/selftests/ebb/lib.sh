# SPDX-License-Identifier: GPL-2.0
# Shared by ebb's kselftests: KTAP helpers from the kselftest tree and facts about
# the guest. Sourced from a test's own directory.

. ../kselftest/ktap_helpers.sh

EBB_KO=/lib/modules/$(uname -r)/updates/ebb.ko

# True when the kernel runs as a Xen domain (CONFIG_XEN_SYS_HYPERVISOR).
on_xen() {
    [ "$(cat /sys/hypervisor/type 2>/dev/null)" = xen ]
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
