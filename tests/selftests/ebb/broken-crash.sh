#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# A frame backing guest memory breaks while no driver in the guest handles lost
# frames (ebb.ko unloaded): ebbhv must crash the domain at once rather than let it
# read the lost page as if nothing happened. The run ends in that crash, so only
# scripts/expect-crash.sh runs this test (it passes ebb.expect_crash=1 and checks
# ebbhv's crash report); in any other run it skips.
cd "$(dirname "$0")" || exit 1
. ./lib.sh

WHAT="a broken frame crashes a guest that cannot be told"
ktap_print_header
grep -qw ebb.expect_crash=1 /proc/cmdline ||
    skip_test "$WHAT" "a run that ends in a crash: scripts/expect-crash.sh runs it"
ebb_require "$WHAT" xen xenstore host frames
command -v lostpage >/dev/null || skip_test "$WHAT" "lostpage not installed"
ktap_set_plan 2

ebb_unload
unhandled() { [ "$(xenstore read control/feature-broken-frames 2>/dev/null)" != 1 ]; }
ktap_test_result "without ebb.ko no driver says it handles lost frames" unhandled

GO=/tmp/ebb-lostpage-go
rm -f $GO
mkfifo $GO
lostpage < $GO > /tmp/ebb-lostpage-out 2>&1 &
exec 3> $GO
wait_for 10 [ -s /tmp/ebb-lostpage-out ]
gfn=$(printf '%#x' "$(head -n 1 /tmp/ebb-lostpage-out)")
host_request p2m "$gfn" >/dev/null 2>&1
mfn=$(host_output | sed -n 's/^gfn [^:]*: mfn \(0x[0-9a-f]*\), .*/\1/p')
ktap_print_msg "breaking mfn $mfn (gfn $gfn, lostpage's page): ebbhv must crash the domain now"
host_request mem-offline --broken "$mfn"
ktap_test_fail "the domain still runs after a frame it cannot be told about broke (status $?: $(host_output))"
ktap_finished
