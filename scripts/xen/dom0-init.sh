#!/bin/bash
# PID 1 of dom0 in a real-Xen run (scripts/run-xen.sh puts it into the run's archive,
# dom0's initramfs starts it from /ebb): starts the Xen toolstack, creates the test
# domain from /ebb/params with the guest kernel and initramfs in /ebb, and serves it
# as the host would under ebbhv (/ebb/dom0-agent.py: its console goes to dom0's
# console behind "[guest] ", its requests are carried out with xl and xenstore).
# In test and bench mode it powers the machine off once the domain is gone; in shell mode the
# console is the domain's (`xl console`; Ctrl-] leaves it for a dom0 shell).
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root TERM=${TERM:-linux}

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
mkdir -p /run/lock /var/log/xen /var/lib/xen /run/ebb/console
mount -t xenfs xenfs /proc/xen
hostname dom0

off() {
    sync
    /ebb/busybox poweroff -f
}

say() { echo "[dom0] $*"; }

# shellcheck source=/dev/null
. /ebb/params
domain=ebb-guest

say "starting the Xen toolstack"
XENCONSOLED_ARGS="--log=guest --log-dir=/run/ebb/console" /etc/init.d/xen start ||
    { say "the Xen toolstack did not start"; off; }

cat >/run/ebb/guest.cfg <<CFG
name = "$domain"
type = "$EBB_XEN_TYPE"
kernel = "/ebb/$EBB_XEN_KERNEL"
ramdisk = "/ebb/initramfs.cpio.gz"
extra = "$EBB_XEN_EXTRA"
memory = $EBB_XEN_MEMORY
maxmem = $EBB_XEN_MAXMEM
vcpus = $EBB_XEN_VCPUS
${EBB_XEN_CPUID:+cpuid = \"$EBB_XEN_CPUID\"}
${EBB_XEN_TSC_MODE:+tsc_mode = \"$EBB_XEN_TSC_MODE\"}
on_poweroff = "destroy"
on_reboot = "destroy"
on_crash = "destroy"
CFG
say "domain: $(tr '\n' ' ' </run/ebb/guest.cfg)"

start=$SECONDS
if ! xl create /run/ebb/guest.cfg; then
    say "xl create failed"
    xl dmesg | tail -n 30
    off
fi
# The agent reads the console log from its start: nothing the guest said is lost. The
# benchmark's phases read the domain's hypercall counts from it (Xen's trace buffers).
agent_args=(--domain "$domain" --log "/run/ebb/console/guest-$domain.log")
[ "$EBB_XEN_MODE" != bench ] || agent_args+=(--count-hypercalls)
python3 /ebb/dom0-agent.py "${agent_args[@]}" &
agent=$!
say "xl create took $((SECONDS - start)) s; $(xl list | tail -n +2 | tr -s ' ' | tr '\n' ';')"

if [ "$EBB_XEN_MODE" = shell ]; then
    say "the test domain's console follows (Ctrl-] leaves it for a dom0 shell: xl list, xl mem-set $domain 512, xl console $domain; poweroff with 'off')"
    echo "/ebb/busybox poweroff -f" >/run/ebb/off
    chmod +x /run/ebb/off
    ln -sf /run/ebb/off /usr/sbin/off
    # The agent's copy of the console would mix with the interactive one.
    kill "$agent"
    setsid -c bash -c "xl console $domain; echo '[dom0] left the domain console'; exec bash -i" \
        </dev/hvc0 >/dev/hvc0 2>&1
    off
fi

# Figures while it runs, for the log: the domain list every minute.
(
    while sleep 60; do
        xl list "$domain" 2>/dev/null | tail -n 1 | sed 's/^/[dom0] xl list: /'
    done
) &
lister=$!
wait "$agent"
kill "$lister" 2>/dev/null
say "the test domain is gone after $((SECONDS - start)) s"
xl list | sed 's/^/[dom0] /'
off
