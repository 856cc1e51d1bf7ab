#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# The guest's own XENMEM_exchange, and a frame offline pending until the guest gives
# its page back (issue 15), while memcheck holds checksummed pages. The test module
# ebb_xenmem (tests/guest/xenmem/xenmem_main.rs) makes the hypercalls and checks what
# the guest sees; this script checks from the host (ebbctl through the host agent)
# what ebbhv did in between:
#   round 1: loading the module exchanges a 2 MiB block's 512 4 KiB extents for one
#   2 MiB extent at the same gfns (the host sees one 2M leaf), and tries exchanges
#   that must be refused; unloading exchanges it back (the 2 MiB block's frames
#   leave the guest) and frees the block. The domain's and the heap's counts are
#   what they were.
#   round 2: the module holds a page; the host offlines its frame with no frame
#   free for the copy (ebbctl fail-next offline-copy): offline pending; unloading
#   gives the gfn back (decrease_reservation), so the frame goes offline, and
#   populates it again; the host onlines the frame, and the counts are what they were.
# Runs only under ebbhv: Xen refuses exchange for translated guests and has none of
# these control verbs.
cd "$(dirname "$0")" || exit 1
. ./lib.sh

WHAT="the guest's own exchange and a pending offline"

ktap_print_header
ebb_require "$WHAT" xen xenstore host memcheck frames fail-next
[ -n "$(modinfo -n ebb_xenmem 2>/dev/null)" ] || skip_test "$WHAT" "ebb_xenmem.ko not installed"
ebb_unload || ktap_exit_fail_msg "rmmod ebb failed"
last_ram=$(sed -n 's/^\([0-9a-f]*\)-\([0-9a-f]*\) : System RAM$/\2/p' /proc/iomem | tail -n 1)
[ -n "$last_ram" ] || ktap_exit_fail_msg "no System RAM in /proc/iomem"

RESULTS=/tmp/ebb-exchange-results
MODULE_LINES=/tmp/ebb-exchange-module
: > $RESULTS
: > $MODULE_LINES
# The rounds run inside memcheck (it calls them between its checks); each writes
# `ok NAME` or `fail NAME` to $RESULTS, and what the module logged to $MODULE_LINES.
cat > /tmp/ebb-exchange-round.sh <<ROUND
RAM_END=$(printf '0x%x' $((0x$last_ram + 1)))
ROUND
cat >> /tmp/ebb-exchange-round.sh <<'ROUND'
. ./lib.sh
RESULTS=/tmp/ebb-exchange-results
MODULE_LINES=/tmp/ebb-exchange-module

# Loads ebb_xenmem with parameters "$@"; MODULE_OUT is what it logged since mark
# $MARK (appended to $MODULE_LINES too). False when it did not load.
xenmem_load() {
    modprobe ebb_xenmem "$@"
    local loaded=$?
    xenmem_log
    return $loaded
}
# Unloads it (its unload half runs); its lines are in MODULE_OUT.
xenmem_unload() {
    rmmod ebb_xenmem
    local status=$?
    xenmem_log
    return $status
}
xenmem_log() {
    MODULE_OUT=$(dmesg_since "$MARK" | sed -n 's/^.*ebb_xenmem: //p')
    MARK=$(kmsg_mark)
    echo "$MODULE_OUT" >> $MODULE_LINES
}

# The counts that an exchange, or an offline undone, leaves as they were.
counts() {
    hv_info || return 1
    echo "tot_pages=$(hv tot_pages) heap_free=$(hv heap_free) heap_domain=$(hv heap_domain)" \
        "heap_offlined=$(hv heap_offlined) heap_offline_pending=$(hv heap_offline_pending)"
}

# host_request's status, then its output's first line must be exactly $2.
says() {
    [ "$1" = 0 ] && [ "$(host_output | head -n 1)" = "$2" ]
}

# `ebbctl p2m GFN` as "MFN LEAF" (e.g. 0x1234 2M).
backing() {
    host_request p2m "$1" >/dev/null 2>&1 || return 1
    host_output | sed -n 's/^gfn [^:]*: mfn \(0x[0-9a-f]*\), \([0-9][KMG]\) leaf, .*/\1 \2/p'
}

# True when every guest frame $1..$2 is RAM on a machine frame outside $3..$3+511
# (`ebbctl p2m`, one line per leaf; asked 64 gfns at a time, so that the answer fits
# the 4 KiB the host agent passes back). A 2M leaf on that block counts as outside
# when ebbhv re-merged a leaf after the exchange back (ram_remerged_2m above $4): its
# re-merge pass copies the 512 frames into a free 2 MiB block, which may be the one
# the exchange back freed.
ram_outside() {
    local first=$(($1)) last=$(($2)) block=$(($3)) remerged=$4 from to line g0 g1 m0 covered=0
    from=$first
    while [ $from -le $last ]; do
        to=$((from + 63 > last ? last : from + 63))
        host_request p2m "$from-$to" || return 1
        while read -r line; do
            case "$line" in
            *", ram") ;;
            *) echo "# not RAM: $line"; return 1 ;;
            esac
            set -- $(echo "$line" | sed 's/^gfn \([^:]*\): mfn \([^,]*\),.*/\1 \2/')
            g0=${1%-*}; g1=${1#*-}; m0=${2%-*}
            covered=$((covered + g1 - g0 + 1))
            if [ $((m0 + g1 - g0)) -ge $block ] && [ $((m0)) -le $((block + 511)) ]; then
                case "$line" in
                *", 2M leaf, ram")
                    if hv_info && [ "$(hv ram_remerged_2m)" -gt "$remerged" ]; then
                        echo "# re-merged by ebbhv onto the old block: $line"
                        continue
                    fi
                    ;;
                esac
                echo "# on the old block: $line"
                return 1
            fi
        done <<END
$(host_output)
END
        from=$((to + 1))
    done
    [ $covered = $((last - first + 1)) ]
}

exchange_round() {
    local before after gfn last mfn want
    before=$(counts) || { round_fail exchange-leaf "ebbctl info failed"; return 1; }
    MARK=$(kmsg_mark exchange.sh-exchange)
    xenmem_load ram_end="$RAM_END" || { round_fail exchange-leaf "modprobe ebb_xenmem failed"; return 1; }
    gfn=$(echo "$MODULE_OUT" | sed -n 's/^block gfn \(0x[0-9a-f]*\)$/\1/p')
    [ -n "$gfn" ] || { round_fail exchange-leaf "the module logged no gfn"; return 1; }
    last=$(printf '%#x' $((gfn + 511)))
    host_request p2m "$gfn-$last"
    local status=$?
    echo "# ebbctl p2m $gfn-$last: status $status: $(host_output)"
    mfn=$(host_output | sed -n "s/^gfn $gfn-$last: mfn \(0x[0-9a-f]*\)-0x[0-9a-f]*, 2M leaf, ram$/\1/p")
    want="gfn $gfn-$last: mfn $mfn-$(printf '%#x' $((mfn + 511))), 2M leaf, ram"
    if [ -n "$mfn" ] && says $status "$want" && [ "$(host_output | wc -l)" = 1 ]; then
        round_pass exchange-leaf
    else
        round_fail exchange-leaf "not one 2M leaf"
    fi
    # The exchange back comes at unload: ebbhv's re-merges counted before it.
    hv_info
    remerged=$(hv ram_remerged_2m)
    xenmem_unload || round_fail exchange-back "rmmod ebb_xenmem failed"
    # The first gfn was exchanged once more after that (and may have got a frame of
    # the old block, free by then): the other 511 are as the exchange back left them.
    if [ -n "$mfn" ] && ram_outside $((gfn + 1)) "$last" "$mfn" "$remerged"; then
        round_pass exchange-back
    else
        round_fail exchange-back "$(host_output)"
    fi
    after=$(counts)
    echo "# before: $before"
    echo "# after:  $after"
    if [ "$after" = "$before" ]; then
        round_pass exchange-counts
    else
        round_fail exchange-counts "the counts moved"
    fi
}

pending_round() {
    local before gfn mfn status out
    before=$(counts) || { round_fail pending "ebbctl info failed"; return 1; }
    MARK=$(kmsg_mark exchange.sh-pending)
    xenmem_load pending=1 || { round_fail pending "modprobe ebb_xenmem pending=1 failed"; return 1; }
    gfn=$(echo "$MODULE_OUT" | sed -n 's/^page gfn \(0x[0-9a-f]*\)$/\1/p')
    set -- $(backing "$gfn")
    mfn=${1:-}
    echo "# the module's page: gfn $gfn on mfn $mfn"
    host_request fail-next offline-copy 1 -ENOMEM
    says $? "fail_offline_copy=1:-ENOMEM" || round_fail pending "fail-next: $(host_output)"
    host_request mem-offline "$mfn"
    status=$?
    out=$(host_output)
    echo "# mem-offline $mfn: status $status: $out"
    local still query
    still=$(backing "$gfn" | cut -d' ' -f1)
    host_request mem-query "$mfn"
    query=$?
    if [ -n "$mfn" ] && [ $status = 5 ] &&
        [ "$(echo "$out" | head -n 1)" = "mfn $mfn: offline pending, domain 1 gfn $gfn" ] &&
        says $query "mfn $mfn: offline pending, domain 1 gfn $gfn" && [ "$still" = "$mfn" ]; then
        round_pass pending
    else
        round_fail pending "mem-query: $(host_output)"
    fi
    hv_info
    echo "# while pending: offlined $(hv heap_offlined), pending $(hv heap_offline_pending), fault left '$(hv fail_offline_copy)'"
    set -- $before
    if [ "heap_offline_pending=$(hv heap_offline_pending)" = "heap_offline_pending=$((${5#*=} + 1))" ] &&
        [ "heap_offlined=$(hv heap_offlined)" = "$4" ] && [ "$(hv fail_offline_copy)" = 0 ]; then
        round_pass pending-counted
    else
        round_fail pending-counted "info: $(hv heap_offlined) offlined, $(hv heap_offline_pending) pending"
    fi
    xenmem_unload || round_fail pending-offlined "rmmod ebb_xenmem failed"
    host_request mem-query "$mfn"
    status=$?
    out=$(host_output)
    local now
    now=$(backing "$gfn" | cut -d' ' -f1)
    hv_info
    echo "# after the guest gave it back: $out; gfn $gfn now on $now; offlined $(hv heap_offlined), pending $(hv heap_offline_pending)"
    if [ $status = 0 ] && [ "$out" = "mfn $mfn: offlined" ] && [ -n "$now" ] && [ "$now" != "$mfn" ] &&
        [ "heap_offlined=$(hv heap_offlined)" = "heap_offlined=$((${4#*=} + 1))" ] &&
        [ "heap_offline_pending=$(hv heap_offline_pending)" = "$5" ] &&
        [ "tot_pages=$(hv tot_pages)" = "$1" ]; then
        round_pass pending-offlined
    else
        round_fail pending-offlined "$out"
    fi
    host_request mem-online "$mfn"
    says $? "mfn $mfn: online, free" || round_fail pending-counts "mem-online: $(host_output)"
    local after
    after=$(counts)
    echo "# before: $before"
    echo "# after:  $after"
    if [ "$after" = "$before" ]; then
        round_pass pending-counts
    else
        round_fail pending-counts "the counts moved"
    fi
}

case $1 in
1) exchange_round ;;
2) pending_round ;;
esac
ROUND

mark=$(kmsg_mark exchange.sh)
free_kb=$(free_kb)
fill_mib=$((free_kb / 2 / 1024))
ktap_print_msg "memcheck fills $fill_mib MiB; round 1 exchanges, round 2 a pending offline"
out=$(memcheck "$fill_mib" 2 "sh /tmp/ebb-exchange-round.sh \$1" 2>&1)
status=$?
echo "$out" | sed 's/^/# /'

reason=$(sed -n 's/^skip: //p' $MODULE_LINES | head -n 1)
[ -z "$reason" ] || skip_test "$WHAT" "$reason"
plans=$(sed -n 's/^plan \([0-9]*\)$/\1/p' $MODULE_LINES)
[ "$(echo "$plans" | wc -w)" = 2 ] ||
    ktap_exit_fail_msg "ebb_xenmem did not run twice: $(cat $MODULE_LINES)"
ktap_set_plan $(($(echo "$plans" | tr '\n' '+')0 + 9))

ktap_relay_results "$(cat $MODULE_LINES)"

ktap_test_result "host: after the exchange up, the block's 512 gfns are one 2M leaf" round_result exchange-leaf
ktap_test_result "host: after the exchange back, the gfns are RAM on frames outside the 2 MiB block" round_result exchange-back
ktap_test_result "host: tot_pages and the heap's free, domain, offlined and pending counts are what they were" round_result exchange-counts
ktap_test_result "host: the module's page's frame, offlined with no frame for the copy, is offline pending (ebbctl exit status 5), still backing the gfn" round_result pending
ktap_test_result "host: info counts it pending, not offlined, and the injected fault is used up" round_result pending-counted
ktap_test_result "host: once the guest gave the gfn back it is offlined, the gfn repopulated on another frame" round_result pending-offlined
ktap_test_result "host: after mem-online the counts are what they were" round_result pending-counts
intact() { [ $status -eq 0 ] && [ "$(echo "$out" | grep -c ': 0 of ')" = 2 ]; }
ktap_test_result "memcheck: every page intact across both rounds" intact
ktap_test_result "the guest's kernel logged no warning" kernel_quiet_since "$mark"
ktap_finished
