#!/usr/bin/env bash
# Boots the test guest (kernel + initramfs of build/<flavour>/) under QEMU with
# software emulation (no KVM here).
#
# Usage: run-guest.sh shell            an interactive shell on this terminal
#        run-guest.sh test [C:T ...]   run the kselftests (all, or the named
#                                      collection:test entries), log to results/,
#                                      summarise; exit status 0 only if all passed
# Environment: EBB_FLAVOUR (guest), EBB_MEM (1G), EBB_TIMEOUT (900 s, test mode),
#              EBB_RESULTS (results/<time>), EBB_QEMU_EXTRA (more QEMU arguments)
set -euo pipefail
EBB_LOG_TAG=run
source "$(dirname "$0")/lib.sh"

mode=${1:-shell}
shift || true
flavour=${EBB_FLAVOUR:-guest}
kernel=$EBB_BUILD/$flavour/bzImage
initrd=$EBB_BUILD/$flavour/initramfs.cpio.gz
for f in "$kernel" "$initrd"; do
    [ -e "$f" ] || die "missing $f (make kernel initramfs)"
done

qemu=(qemu-system-x86_64 -M q35 -accel tcg -cpu max -m "${EBB_MEM:-1G}" -smp 1
    -no-reboot -kernel "$kernel" -initrd "$initrd")
# shellcheck disable=SC2206
extra=(${EBB_QEMU_EXTRA:-})
append="console=ttyS0 panic=-1 loglevel=2"

case "$mode" in
shell)
    exec "${qemu[@]}" -nographic "${extra[@]}" -append "$append ebb.mode=shell"
    ;;
test)
    results=${EBB_RESULTS:-$EBB_ROOT/results/$(date +%Y%m%d-%H%M%S)-$flavour}
    mkdir -p "$results"
    tests=$(IFS=,; echo "$*")
    log "kselftests in QEMU ($flavour kernel); console log: $results/console.log"
    status=0
    timeout --foreground "${EBB_TIMEOUT:-900}" "${qemu[@]}" "${extra[@]}" \
        -append "$append ebb.mode=test ebb.tests=$tests" -display none -monitor none -serial stdio \
        </dev/null >"$results/console.log" 2>&1 || status=$?
    [ "$status" = 124 ] && log "QEMU timed out after ${EBB_TIMEOUT:-900} s"
    python3 "$EBB_ROOT/scripts/ktap-summary.py" --name guest \
        --json "$results/summary.json" "$results/console.log"
    ;;
*)
    die "unknown mode '$mode' (shell or test)"
    ;;
esac
