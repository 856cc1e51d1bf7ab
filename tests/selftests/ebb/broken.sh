#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# A frame backing guest memory breaks (`ebbctl mem-offline --broken`, as a machine
# check would report it) while two processes run: lostpage, which has the page on
# that frame mapped and waits, and memcheck, which holds checksummed pages. ebbhv
# does not copy the lost contents: it unmaps the gfn and names it in xenstore
# (control/broken-frames/<gfn>); ebb.ko hands the page to memory_failure() and gives
# the gfn back, the frame goes offline for good, and the balloon takes a fresh frame
# to stay at its target. lostpage gets SIGBUS when it touches its page again;
# memcheck finds every other page intact; the guest stays up and its kernel quiet.
cd "$(dirname "$0")" || exit 1
. ./lib.sh

WHAT="broken frames handed to memory_failure()"
ktap_print_header
ebb_require "$WHAT" xen ebb.ko xenstore host memcheck frames
command -v lostpage >/dev/null || skip_test "$WHAT" "lostpage not installed"
ktap_set_plan 8
log_mark=$(kmsg_mark broken.sh)

ebb_unload
ebb_start
announced() { [ "$(xenstore read control/feature-broken-frames 2>/dev/null)" = 1 ]; }
wait_for 10 announced
ktap_test_result "ebb.ko says it handles lost frames (control/feature-broken-frames = 1)" announced
announced || ktap_exit_fail_msg "no control/feature-broken-frames: ebbhv would crash the guest"

# Names that are no guest page: refused with a clear error, removed, nothing lost.
lost_before=$(cat $SYS/ebb/lost_pages)
bad_mark=$(kmsg_mark "broken.sh: bad names")
host_request xenstore-write control/broken-frames/twelve x >/dev/null
host_request xenstore-write control/broken-frames/99999999999 x >/dev/null
no_node() { [ -z "$(xenstore list control/broken-frames 2>/dev/null)" ]; }
wait_for 10 no_node
refusals=$(dmesg_since "$bad_mark" | grep -c "names no guest RAM page: ignored")
ktap_print_msg "bad names: $refusals refusals logged, lost_pages $(cat $SYS/ebb/lost_pages)"
bad_names_refused() {
    no_node && [ "$refusals" = 2 ] && [ "$(cat $SYS/ebb/lost_pages)" = "$lost_before" ]
}
ktap_test_result "names that are no guest page are refused with an error and removed; nothing lost" \
    bad_names_refused

# Ballooned pages, so that the worker can take a fresh frame for the one lost.
target_kb=$(($(cat $SYS/info/current_kb) - 65536))
echo $target_kb > $SYS/target_kb
wait_for 60 reached_kb $target_kb || ktap_exit_fail_msg "the balloon did not reach $target_kb KiB"
lost0=$(cat $SYS/ebb/lost_pages)

GO=/tmp/ebb-lostpage-go
OUT=/tmp/ebb-lostpage-out
rm -f $GO $OUT
mkfifo $GO
lostpage < $GO > $OUT 2>&1 &
victim=$!
exec 3> $GO
wait_for 10 [ -s $OUT ]
pfn=$(head -n 1 $OUT)
case $pfn in
''|*[!0-9]*) ktap_exit_fail_msg "lostpage printed no pfn: $(cat $OUT)" ;;
esac
echo "$pfn" > /tmp/ebb-broken-pfn
echo "$lost0" > /tmp/ebb-broken-lost0
ktap_print_msg "lostpage (pid $victim) has pfn $pfn mapped"

RESULTS=/tmp/ebb-broken-results
: > $RESULTS
# The breakage runs inside memcheck, between its fill and its check.
cat > /tmp/ebb-broken-round.sh <<'ROUND'
. ./lib.sh
RESULTS=/tmp/ebb-broken-results
pfn=$(cat /tmp/ebb-broken-pfn)
lost0=$(cat /tmp/ebb-broken-lost0)
gfn=$(printf '%#x' "$pfn")

host_request p2m "$gfn" >/dev/null 2>&1
mfn=$(host_output | sed -n 's/^gfn [^:]*: mfn \(0x[0-9a-f]*\), .*/\1/p')
[ -n "$mfn" ] || { round_fail offline "no mfn behind gfn $gfn: $(host_output)"; exit 1; }
host_request mem-offline --broken "$mfn"
status=$?
out=$(host_output)
echo "# mem-offline --broken $mfn: status $status: $out"
# Exit status 5: the frame is still the guest's (pending) when the reply is sent;
# ebbctl says so on a second line.
if [ $status = 5 ] && [ "$(echo "$out" | head -n 1)" = "mfn $mfn: offline pending (broken), domain 1 gfn $gfn" ]; then
    round_pass offline
else
    round_fail offline "$out"
fi

lost() { [ "$(cat $SYS/ebb/lost_pages)" = $((lost0 + 1)) ]; }
no_node() { [ -z "$(xenstore list control/broken-frames 2>/dev/null)" ]; }
wait_for 20 lost && wait_for 10 no_node
host_request mem-query "$mfn"
query=$?
query_out=$(host_output)
host_request p2m "$gfn"
p2m_out=$(host_output)
echo "# lost_pages $(cat $SYS/ebb/lost_pages); mem-query: $query_out; p2m: $p2m_out"
if lost && no_node && [ $query = 0 ] && [ "$query_out" = "mfn $mfn: offlined (broken)" ] &&
    [ "$p2m_out" = "gfn $gfn: not mapped" ]; then
    round_pass handled
else
    round_fail handled "lost_pages $(cat $SYS/ebb/lost_pages), node $(xenstore list control/broken-frames 2>&1)"
fi
ROUND

fill_mib=$(($(free_kb) / 2 / 1024))
ktap_print_msg "memcheck fills $fill_mib MiB; the host breaks lostpage's frame meanwhile"
out=$(memcheck "$fill_mib" 1 "sh /tmp/ebb-broken-round.sh" 2>&1)
status=$?
echo "$out" | sed 's/^/# /'

echo go >&3
exec 3>&-
wait $victim
victim_status=$?
victim_out=$(tail -n 1 $OUT)
ktap_print_msg "lostpage: status $victim_status: $victim_out"
rm -f $GO

ktap_test_result "mem-offline --broken of its frame: offline pending (broken), the guest's, not copied" round_result offline
ktap_test_result "ebb.ko took the page out of use and gave the gfn back: lost_pages +1, frame offlined (broken), gfn unmapped, node removed" round_result handled
# si_code 4 is BUS_MCEERR_AR: memory-failure handling, not some other bus error.
killed() { [ $victim_status = 3 ] && [ "$victim_out" = "sigbus code=4 addr=ok" ]; }
ktap_test_result "the process that mapped the page gets SIGBUS (BUS_MCEERR_AR, at its page) when it touches it" \
    killed
intact() { [ $status -eq 0 ] && [ "$(echo "$out" | grep -c ': 0 of ')" = 1 ]; }
ktap_test_result "memcheck (another process): every page intact, still running" intact

back_at_target() {
    reached_kb $target_kb && [ "$(hv_tot_kb)" = $target_kb ]
}
wait_for 30 back_at_target
ktap_print_msg "current $(cat $SYS/info/current_kb) KiB, tot_pages $(hv_tot_kb) KiB, target $target_kb KiB"
ktap_test_result "the balloon took a fresh frame: the guest and the hypervisor back at the target" back_at_target

# The guest lost one page for good: the balloon holds what it had less that page.
echo $((target_kb + 65536 - 4)) > $SYS/target_kb
wait_for 60 reached_kb $((target_kb + 65536 - 4))
ebb_unload
withdrawn() { [ "$(xenstore read control/feature-broken-frames 2>/dev/null)" = 0 ]; }
ktap_test_result "rmmod withdraws control/feature-broken-frames (0)" withdrawn
ktap_print_msg "kernel log: $(dmesg_since "$log_mark" | grep -iE 'memory failure|lost its contents' | tr '\n' '|')"
kernel_quiet_since "$log_mark" || ktap_print_msg "the kernel warned (the host charges it to this test)"
ebb_start
ktap_finished
