#!/usr/bin/env bash
# Builds the test guest's initramfs: busybox and bash (static), ebb's guest-side
# programs (tests/guest/*.c, static), the kernel's modules and ebb.ko (in updates/)
# with modules.dep, the kselftest runner from the kernel tree, the upstream
# memory-hotplug selftest, ebb's own kselftests (installed by their Makefile, the
# kselftest way) and the balloon benchmark's guest side
# (tests/bench/, in /bench). The archive is reproducible: same
# inputs, same bytes.
#
# Usage: build-initramfs.sh [flavour]   (default: guest; reads build/<flavour>/kbuild)
set -euo pipefail
EBB_LOG_TAG=initramfs
source "$(dirname "$0")/lib.sh"

flavour=${1:-guest}
kbuild=$EBB_BUILD/$flavour/kbuild
[ -d "$kbuild" ] || die "no kernel build at $kbuild (run scripts/build-kernel.sh $flavour)"
src=$(readlink -f "$kbuild/source")
kver=$(cat "$kbuild/include/config/kernel.release")
out=$EBB_BUILD/$flavour/initramfs.cpio.gz
root=$EBB_BUILD/$flavour/initramfs-root

rm -rf "$root"
mkdir -p "$root"/{bin,dev,proc,sys,tmp,root,etc,kselftest,bench}
ln -s bin "$root/sbin"
mkdir -p "$root/usr"
ln -s ../bin "$root/usr/bin"
ln -s ../bin "$root/usr/sbin"

cp /bin/busybox "$root/bin/busybox"
for applet in $(/bin/busybox --list); do
    [ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
done
cp /bin/bash-static "$root/bin/bash"
install -m 0755 "$EBB_ROOT/tests/guest/timeout" "$root/bin/timeout"
install -m 0755 "$EBB_ROOT/tests/guest/init" "$root/init"
install -m 0755 "$EBB_ROOT"/tests/bench/*.sh "$root/bench/"
# Guest-side helper programs: every tests/guest/*.c becomes /bin/<name>.
for prog in "$EBB_ROOT"/tests/guest/*.c; do
    gcc -static -O2 -Wall -Wextra -Werror -o "$root/bin/$(basename "$prog" .c)" "$prog" \
        || die "building $prog failed"
done
echo "root:x:0:0:root:/root:/bin/sh" > "$root/etc/passwd"

make -s -C "$kbuild" INSTALL_MOD_PATH="$root" DEPMOD=/bin/true modules_install >/dev/null
# A kernel with the C balloon driver built in (the bench's c-balloon flavour) gets no
# ebb.ko: the two cannot both hold the online-page callback, and building the module
# against a second kernel would overwrite the objects of the guest kernel's build.
if grep -q '^CONFIG_XEN_BALLOON=y' "$kbuild/.config"; then
    log "$flavour kernel has the C balloon driver built in: no ebb.ko"
else
    # Each kernel's ebb.ko is built apart, in build/<flavour>/module (MO=): the guest
    # kernel's by `make module` (linted), any other's here.
    modout=$EBB_BUILD/$flavour/module
    if [ "$flavour" != guest ]; then
        mkdir -p "$modout"
        make -s -C "$kbuild" M="$EBB_ROOT" MO="$modout" "${KERNEL_MAKE_FLAGS[@]}" \
            >"$EBB_BUILD/$flavour/module-build.log" 2>&1 ||
            { tail -n 40 "$EBB_BUILD/$flavour/module-build.log" >&2; die "ebb.ko for the $flavour kernel does not build"; }
    fi
    make -s -C "$kbuild" M="$EBB_ROOT" MO="$modout" "${KERNEL_MAKE_FLAGS[@]}" INSTALL_MOD_PATH="$root" \
        INSTALL_MOD_DIR=updates DEPMOD=/bin/true modules_install >/dev/null
fi
# The hostile-kernel.sh kselftest's test module (a test artefact, not part of ebb).
hostile_src=$EBB_ROOT/tests/guest/hostile
hostile_out=$EBB_BUILD/$flavour/hostile
mkdir -p "$hostile_out"
make -s -C "$kbuild" M="$hostile_src" MO="$hostile_out" "${KERNEL_MAKE_FLAGS[@]}" \
    >"$EBB_BUILD/$flavour/hostile-build.log" 2>&1 ||
    { tail -n 40 "$EBB_BUILD/$flavour/hostile-build.log" >&2; die "ebb_hostile.ko for the $flavour kernel does not build"; }
make -s -C "$kbuild" M="$hostile_src" MO="$hostile_out" "${KERNEL_MAKE_FLAGS[@]}" INSTALL_MOD_PATH="$root" \
    INSTALL_MOD_DIR=extra DEPMOD=/bin/true modules_install >/dev/null
# The exchange.sh kselftest's test module, built and installed the same way.
xenmem_src=$EBB_ROOT/tests/guest/xenmem
xenmem_out=$EBB_BUILD/$flavour/xenmem
mkdir -p "$xenmem_out"
make -s -C "$kbuild" M="$xenmem_src" MO="$xenmem_out" "${KERNEL_MAKE_FLAGS[@]}" \
    >"$EBB_BUILD/$flavour/xenmem-build.log" 2>&1 ||
    { tail -n 40 "$EBB_BUILD/$flavour/xenmem-build.log" >&2; die "ebb_xenmem.ko for the $flavour kernel does not build"; }
make -s -C "$kbuild" M="$xenmem_src" MO="$xenmem_out" "${KERNEL_MAKE_FLAGS[@]}" INSTALL_MOD_PATH="$root" \
    INSTALL_MOD_DIR=extra DEPMOD=/bin/true modules_install >/dev/null
rm -f "$root/lib/modules/$kver/build" "$root/lib/modules/$kver/source"
depmod -b "$root" "$kver"

# The kselftest layout as `make -C tools/testing/selftests install` makes it: the
# runner and its helpers from the kernel tree, then each collection through its own
# Makefile's lib.mk targets, `install` and `emit_tests` (what the kernel's
# kselftest_install runs per target). ebb's Makefile names the kernel's selftests
# folder with KSELFTEST=, as it lives outside the kernel tree. The tests find ebb.ko
# with modprobe, through the depmod data above.
ks=$root/kselftest
selftests=$src/tools/testing/selftests
install -m 0755 "$selftests/run_kselftest.sh" "$ks/"
mkdir -p "$ks/kselftest"
install -m 0644 "$selftests/kselftest/runner.sh" "$selftests/kselftest/ktap_helpers.sh" "$ks/kselftest/"
install -m 0755 "$selftests/kselftest/prefix.pl" "$ks/kselftest/"
# Only the upstream memory-hotplug test of its collection runs here (its Makefile's
# own targets would write into the shared kernel source).
mkdir -p "$ks/memory-hotplug"
install -m 0755 "$selftests/memory-hotplug/mem-on-off-test.sh" "$ks/memory-hotplug/"
echo "memory-hotplug:mem-on-off-test.sh" > "$ks/kselftest-list.txt"
ebb_tests=(make -s --no-print-directory -C "$EBB_ROOT/tests/selftests/ebb" KSELFTEST="$selftests"
    OUTPUT="$EBB_BUILD/$flavour/kselftest-ebb")
mkdir -p "$EBB_BUILD/$flavour/kselftest-ebb"
"${ebb_tests[@]}" INSTALL_PATH="$ks/ebb" install >/dev/null || die "installing ebb's kselftests failed"
"${ebb_tests[@]}" COLLECTION=ebb emit_tests >> "$ks/kselftest-list.txt" ||
    die "listing ebb's kselftests failed"
# Fixed timestamps and ordering make the archive reproducible.
find "$root" -exec touch -h -d @0 {} +
(cd "$root" && find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc --reproducible -R 0:0) \
    | gzip -9 -n > "$out.tmp"
mv "$out.tmp" "$out"
log "$out ($(du -h "$out" | cut -f1), $(wc -l < "$ks/kselftest-list.txt") kselftests)"
