#!/usr/bin/env bash
# Boots the test guest (kernel + initramfs of build/<flavour>/) with software
# emulation (no KVM here): as a Xen PVH domain under ebbhv (QEMU → ebbhv → guest,
# the default) or directly on QEMU.
#
# Usage: run-guest.sh shell            an interactive shell on this terminal
#        run-guest.sh test [C:T ...]   run the kselftests (all, or the named
#                                      collection:test entries), log to results/,
#                                      summarise (skips allowed only as listed in
#                                      tests/selftests/ebb/expected-skips.<platform>);
#                                      exit status 0 only if all passed
#        run-guest.sh bench            run the guest side of a benchmark (EBB_BENCH:
#                                      balloon, under ebbhv or a real Xen, see
#                                      scripts/bench-balloon.sh; or offline, under
#                                      ebbhv, scripts/bench-offline.sh), log to
#                                      results/; exit status of the run
# Environment:
#   EBB_PLATFORM  ebbhv (default) or qemu; or xen, xen-pvh, xen-pod, xen-pv: a domU of
#                 a real Xen (scripts/run-xen.sh, which takes over; shell and test)
#   EBB_FLAVOUR   guest kernel flavour (guest)
#   EBB_MEM_MIB   guest memory at boot (1024); EBB_MAXMEM_MIB its maximum (1536, ebbhv)
#   EBB_TIMEOUT   seconds before a test run is killed (900; bench: 1800)
#   EBB_RESULTS   where a test or bench run's logs go (results/<time>-[bench-]<flavour>)
#   EBB_QEMU_EXTRA  more QEMU arguments
#   EBB_GUEST_CMDLINE  more guest kernel command line (scripts/expect-crash.sh)
#   EBB_LOG_BUF_LEN  the guest kernel's log buffer (log_buf_len, 2M): the whole run's
#                 kernel log must fit, from the boot banner on
#   EBB_BENCH_HOLD_S  bench: seconds the idle and unreachable phases last (30)
#   EBB_BENCH_ROUNDS  bench: how many times each move is measured (3)
#   EBB_BENCH     bench: which benchmark's guest side runs (balloon; offline)
# Under ebbhv, QEMU's second serial line is ebbhv's control channel (a Unix socket:
# <results>/ctl.sock in test mode, build/hv/ctl.sock in shell mode) for ebbctl, and
# the kselftests may ask the host to run ebbctl verbs (scripts/host-agent.py).
set -euo pipefail
EBB_LOG_TAG=run
source "$(dirname "$0")/lib.sh"

mode=${1:-shell}
shift || true
platform=${EBB_PLATFORM:-ebbhv}
case "$platform" in
xen | xen-*)
    guest=${platform#xen}
    [ -z "$guest" ] || export EBB_XEN_GUEST=${guest#-}
    exec "$EBB_ROOT/scripts/run-xen.sh" "$mode" "$@"
    ;;
esac
flavour=${EBB_FLAVOUR:-guest}
mem=${EBB_MEM_MIB:-1024}
maxmem=${EBB_MAXMEM_MIB:-1536}
EBB_LOG_BUF_LEN=${EBB_LOG_BUF_LEN:-2M}
kernel=$EBB_BUILD/$flavour/bzImage
vmlinux=$EBB_BUILD/$flavour/vmlinux
initrd=$EBB_BUILD/$flavour/initramfs.cpio.gz
ebbctl=$EBB_ROOT/hypervisor/target/release/ebbctl
for f in "$kernel" "$initrd"; do
    [ -e "$f" ] || die "missing $f (make kernel initramfs)"
done
# shellcheck disable=SC2206
extra=(${EBB_QEMU_EXTRA:-})

# The guest's console: hvc0 through console_io under ebbhv, the 8250 UART on QEMU.
# loglevel=2 keeps the console to emergencies; /init prints the whole log at the end,
# which log_buf_len makes room for (the host fails a run whose log lost its start).
case "$platform" in
ebbhv) append="console=hvc0 xen_console_io=1 panic=-1 loglevel=2 log_buf_len=$EBB_LOG_BUF_LEN" ;;
qemu) append="console=ttyS0 panic=-1 loglevel=2 log_buf_len=$EBB_LOG_BUF_LEN" ;;
*) die "unknown EBB_PLATFORM '$platform' (ebbhv or qemu)" ;;
esac
append+="${EBB_GUEST_CMDLINE:+ $EBB_GUEST_CMDLINE}"

run_ebbhv() {
    local socket=$1 timeout_s=$2 cmdline=$3
    shift 3
    [ -e "$EBB_BUILD/hv/ebbhv.elf" ] || die "missing $EBB_BUILD/hv/ebbhv.elf (make hv)"
    "$EBB_ROOT/scripts/run-hv.sh" --kernel "$vmlinux" --initramfs "$initrd" \
        --memory "$mem" --maxmem "$maxmem" --host-mem 2048 --timeout "$timeout_s" \
        --control-socket "$socket" --cmdline "$cmdline" "$@" -- "${extra[@]}"
}

qemu=(qemu-system-x86_64 -M q35 -accel tcg -cpu max -m "${mem}M" -smp 1
    -no-reboot -kernel "$kernel" -initrd "$initrd")

case "$mode" in
shell)
    if [ "$platform" = ebbhv ]; then
        log "guest under ebbhv; ebbctl: EBBCTL_SOCKET=$EBB_BUILD/hv/ctl.sock $ebbctl info"
        run_ebbhv "$EBB_BUILD/hv/ctl.sock" 86400 "$append ebb.mode=shell"
    else
        exec "${qemu[@]}" -nographic "${extra[@]}" -append "$append ebb.mode=shell"
    fi
    ;;
test)
    results=${EBB_RESULTS:-$EBB_ROOT/results/$(date +%Y%m%d-%H%M%S)-$flavour}
    mkdir -p "$results"
    tests=$(IFS=,; echo "$*")
    cmdline="$append ebb.mode=test ebb.tests=$tests"
    log "kselftests on $platform ($flavour kernel); console log: $results/console.log"
    # The run's own status counts even when the guest printed its end marker: a
    # hypervisor fault, a guest crash or reboot after the tests still fails it.
    status=0 note=
    if [ "$platform" = ebbhv ]; then
        set +e
        run_ebbhv "$results/ctl.sock" "${EBB_TIMEOUT:-900}" "$cmdline" </dev/null 2>&1 \
            | python3 "$EBB_ROOT/scripts/host-agent.py" --log "$results/console.log" \
                --ebbctl "$ebbctl" --socket "$results/ctl.sock"
        pipe=("${PIPESTATUS[@]}")
        set -e
        status=${pipe[0]}
        case $status in
            0) ;;
            1) note="ebbhv stopped on a hypervisor fault (run-hv.sh status 1)" ;;
            2) note="ebbhv stopped the guest: crash or fatal guest state (run-hv.sh status 2)" ;;
            3) note="the guest rebooted (run-hv.sh status 3)" ;;
            124) note="timed out after ${EBB_TIMEOUT:-900} s" ;;
            *) note="run-hv.sh exited with status $status" ;;
        esac
        if [ "${pipe[1]}" != 0 ]; then
            note="${note:+$note; }the host agent exited with status ${pipe[1]}"
            [ "$status" != 0 ] || status=${pipe[1]}
        fi
    else
        timeout --foreground "${EBB_TIMEOUT:-900}" "${qemu[@]}" "${extra[@]}" \
            -append "$cmdline" -display none -monitor none -serial stdio \
            </dev/null >"$results/console.log" 2>&1 || status=$?
        case $status in
            0) ;;
            124) note="timed out after ${EBB_TIMEOUT:-900} s" ;;
            *) note="qemu exited with status $status" ;;
        esac
    fi
    [ -z "$note" ] || log "$note"
    python3 "$EBB_ROOT/scripts/ktap-summary.py" --name "guest ($platform)" \
        --allowed-skips "$EBB_ROOT/tests/selftests/ebb/expected-skips.$platform" \
        --run-status "$status" --run-note "$note" \
        --json "$results/summary.json" "$results/console.log"
    ;;
bench)
    [ "$platform" = ebbhv ] || die "the balloon benchmark runs under ebbhv or a real Xen (EBB_PLATFORM=xen-pvh), not on plain QEMU"
    results=${EBB_RESULTS:-$EBB_ROOT/results/$(date +%Y%m%d-%H%M%S)-bench-$flavour}
    mkdir -p "$results"
    log "${EBB_BENCH:-balloon} benchmark ($flavour kernel); console log: $results/console.log"
    run_ebbhv "$results/ctl.sock" "${EBB_TIMEOUT:-1800}" "$append ebb.mode=bench ebb.bench=${EBB_BENCH:-balloon} ebb.bench_hold=${EBB_BENCH_HOLD_S:-30} ebb.bench_rounds=${EBB_BENCH_ROUNDS:-3}" </dev/null 2>&1 \
        | python3 "$EBB_ROOT/scripts/host-agent.py" --log "$results/console.log" \
            --ebbctl "$ebbctl" --socket "$results/ctl.sock"
    ;;
*)
    die "unknown mode '$mode' (shell, test or bench)"
    ;;
esac
