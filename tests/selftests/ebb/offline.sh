#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Page offline and exchange on the running guest, from the host (ebbctl through the
# host agent), while memcheck holds checksummed pages: a frame backing one of
# memcheck's pages goes offline (its contents move to a new frame, the 2 MiB leaf
# around it is split, the guest keeps running), mem-exchange gives that page yet
# another frame, the frame it left (free now) goes offline and online again, and the
# xenstore ring's frame (the hypervisor's, lent to the guest) is refused. After the
# offline and after the exchange ebbhv merges the split 2 MiB leaf again (copying
# its 512 frames into a fresh 2 MiB block): `info`'s leaf counts are back where they
# were. memcheck verifies every page after each of these rounds: zero mismatches.
cd "$(dirname "$0")" || exit 1
. ./lib.sh

ktap_print_header
ebb_require "page offline from the host" xen xenstore host memcheck frames
ktap_set_plan 7

RESULTS=/tmp/ebb-offline-results
: > $RESULTS
# The rounds run inside memcheck (it calls them between its checks); each writes
# `ok NAME` or `fail NAME` to $RESULTS.
cat > /tmp/ebb-offline-round.sh <<'ROUND'
. ./lib.sh
RESULTS=/tmp/ebb-offline-results
GFN_FILE=/tmp/ebb-offline-gfn

# The guest frame behind memcheck's page $1, from its pagemap (as root); in a PVH
# guest the pfn is the gfn.
memcheck_gfn() {
    local pid range best=0 base=0 s e entry
    pid=$(pidof memcheck) || return 1
    while read -r range _; do
        s=$((0x${range%-*}))
        e=$((0x${range#*-}))
        [ $((e - s)) -gt $best ] && best=$((e - s)) && base=$s
    done < /proc/$pid/maps
    entry=$(dd if=/proc/$pid/pagemap bs=8 skip=$((base / 4096 + $1)) count=1 2>/dev/null |
        od -An -tx8 | tr -d ' ')
    [ -n "$entry" ] || return 1
    entry=$((0x$entry))
    [ $((entry >> 63 & 1)) = 1 ] || return 1
    echo $((entry & ((1 << 55) - 1)))
}

# `ebbctl p2m GFN` as "MFN LEAF" (e.g. 0x1234 2M).
backing() {
    host_request p2m "$1" >/dev/null 2>&1 || return 1
    host_output | sed -n 's/^gfn [^:]*: mfn \(0x[0-9a-f]*\), \([0-9][KMG]\) leaf, .*/\1 \2/p'
}

# The gfn of one of memcheck's pages that a superpage backs, so that the offline
# splits a leaf ebbhv must merge again. Which pages sit on 4 KiB leaves depends on
# what the tests before this one ballooned or offlined: try pages 1000, 1000 + 512,
# ... (one per 2 MiB of memcheck's memory) until one is on a 2M or 1G leaf.
memcheck_gfn_on_superpage() {
    local page=1000 tries=0 gfn leaf
    while [ $tries -lt 64 ]; do
        gfn=$(memcheck_gfn $page) || return 1
        set -- $(backing "$gfn"); leaf=$2
        [ "$leaf" = 2M ] || [ "$leaf" = 1G ] && { echo "$gfn"; return 0; }
        page=$((page + 512)); tries=$((tries + 1))
    done
    return 1
}

# host_request's status, then its output must be exactly $2.
says() {
    [ "$1" = 0 ] && [ "$(host_output)" = "$2" ]
}

# After an offline or exchange split the superpage around a gfn, ebbhv merges it
# again: the 4K and 2M leaf counts are back to $2 and $3 (taken before, with the
# gfn on a $1 leaf), and ram_remerged_2m is one more than $4. A 1 GiB leaf comes
# back as 512 2 MiB ones (re-forming it would copy 1 GiB).
merged_again() {
    local l4=$2 l2=$3
    [ "$1" = 1G ] && l2=$((l2 + 512))
    hv_info || return 1
    echo "# leaves now 4K $(hv ram_leaves_4k) 2M $(hv ram_leaves_2m), merged $(hv ram_remerged_2m), waiting $(hv ram_split_waiting); remerge passes $(hv remerge_passes), $(hv remerge_passes_us_total) us"
    [ "$1" != 4K ] && [ "$(hv ram_leaves_4k)" = "$l4" ] && [ "$(hv ram_leaves_2m)" = "$l2" ] &&
        [ "$(hv ram_remerged_2m)" = $(($4 + 1)) ] && [ "$(hv ram_split_waiting)" = 0 ]
}

in_use() {
    local gfn m0 leaf0 m1 leaf1 off0 l4 l2 merged status out query
    gfn=$(memcheck_gfn_on_superpage) ||
        { round_fail in-use "no page of memcheck's on a superpage (64 tried)"; return; }
    echo "$gfn" > $GFN_FILE
    set -- $(backing "$gfn"); m0=$1; leaf0=$2
    hv_info; off0=$(hv heap_offlined); l4=$(hv ram_leaves_4k); l2=$(hv ram_leaves_2m)
    merged=$(hv ram_remerged_2m)
    echo "# gfn $gfn on mfn $m0 ($leaf0 leaf); offlined $off0, leaves 4K $l4 2M $l2, merged $merged"
    host_request mem-offline "$m0"; status=$?
    out=$(host_output)
    set -- $(backing "$gfn"); m1=$1; leaf1=$2
    echo "# mem-offline $m0: status $status: $out; gfn $gfn now on $m1 ($leaf1 leaf)"
    host_request mem-query "$m0"
    query=$?
    if [ $status = 0 ] && [ "$out" = "mfn $m0: offlined" ] && [ -n "$m1" ] &&
        [ "$m1" != "$m0" ] && [ "$leaf1" = 2M ] && says $query "mfn $m0: offlined"; then
        round_pass in-use
    else
        round_fail in-use "mem-query: $(host_output)"
    fi
    if merged_again "$leaf0" "$l4" "$l2" "$merged" && [ "$(hv heap_offlined)" = $((off0 + 1)) ]; then
        round_pass leaves
    else
        round_fail leaves "info does not count the offlined frame, or the split leaf was not merged again"
    fi
    host_request mem-online "$m0"
    says $? "mfn $m0: online, free" || round_fail in-use "mem-online $m0: $(host_output)"
}

exchange_then_free() {
    local gfn m1 leaf1 new leaf exchanged off0 l4 l2 merged status out
    gfn=$(cat $GFN_FILE)
    set -- $(backing "$gfn"); m1=$1; leaf1=$2
    hv_info; l4=$(hv ram_leaves_4k); l2=$(hv ram_leaves_2m); merged=$(hv ram_remerged_2m)
    host_request mem-exchange "$gfn"
    status=$?
    out=$(host_output)
    set -- $(backing "$gfn"); new=$1; leaf=$2
    exchanged=${out##* -> }
    echo "# mem-exchange $gfn: status $status: $out; gfn $gfn now on $new ($leaf leaf)"
    # The exchange's frame splits the leaf; the merge then moves the gfn once more.
    if [ $status = 0 ] && [ -n "$new" ] && [ "$new" != "$m1" ] && [ "$exchanged" != "$m1" ] &&
        [ "$out" = "gfn $(printf '%#x' "$gfn"): mfn $m1 -> $exchanged" ] && [ "$leaf" = 2M ]; then
        round_pass exchange
    else
        round_fail exchange "$out"
    fi
    if merged_again "$leaf1" "$l4" "$l2" "$merged"; then
        round_pass exchange-leaves
    else
        round_fail exchange-leaves "the leaf mem-exchange split was not merged again"
    fi
    # The frame the page left is free now: offline and online again.
    hv_info; off0=$(hv heap_offlined)
    host_request mem-offline "$m1"
    if says $? "mfn $m1: offlined" && hv_info && [ "$(hv heap_offlined)" = $((off0 + 1)) ] &&
        host_request mem-online "$m1" && says 0 "mfn $m1: online, free" &&
        hv_info && [ "$(hv heap_offlined)" = "$off0" ]; then
        round_pass free
    else
        round_fail free "$(host_output)"
    fi
}

refusals() {
    local ring off0 status out
    set -- $(backing 0xfe); ring=$1
    hv_info; off0=$(hv heap_offlined)
    host_request mem-offline "$ring"; status=$?
    out=$(host_output)
    echo "# mem-offline $ring (the xenstore ring): status $status: $out"
    host_request mem-offline --broken "$ring"
    local broken_status=$?
    host_request mem-query "$ring"
    local query=$?
    if [ $status = 1 ] && [ $broken_status = 1 ] && [ "$out" = "ebbctl: hypervisor error EPERM: mfn $ring belongs to the hypervisor, lent to d1 at gfn 0xfe (shared_info, grant table or xenstore ring)" ] &&
        says $query "mfn $ring: online, hypervisor (lent to domain 1 gfn 0xfe)" &&
        hv_info && [ "$(hv heap_offlined)" = "$off0" ]; then
        round_pass refused
    else
        round_fail refused "mem-query: $(host_output)"
    fi
}

case $1 in
1) in_use ;;
2) exchange_then_free ;;
3) refusals ;;
esac
ROUND

free_kb=$(free_kb)
fill_mib=$((free_kb / 2 / 1024))
ktap_print_msg "memcheck fills $fill_mib MiB; 3 rounds of page offline and exchange"
out=$(memcheck "$fill_mib" 3 "sh /tmp/ebb-offline-round.sh \$1" 2>&1)
status=$?
echo "$out" | sed 's/^/# /'

ktap_test_result "offline of a frame in use: data kept, mem-query says offlined, the gfn on a new frame in a 2M leaf again" round_result in-use
ktap_test_result "info counts the offlined frame; the split 2 MiB leaf is merged again (4K and 2M leaf counts as before)" round_result leaves
ktap_test_result "mem-exchange gives the guest frame a new machine frame" round_result exchange
ktap_test_result "the 2 MiB leaf mem-exchange split is merged again (4K and 2M leaf counts as before)" round_result exchange-leaves
ktap_test_result "offline of a free frame and online again" round_result free
ktap_test_result "the xenstore ring's frame (lent by the hypervisor) is refused, nothing changes" round_result refused
intact() { [ $status -eq 0 ] && [ "$(echo "$out" | grep -c ': 0 of ')" = 3 ]; }
ktap_test_result "memcheck: every page intact across the offline, exchange and refusal rounds" intact
ktap_finished
