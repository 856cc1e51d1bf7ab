#!/usr/bin/env bash
# Sets up the real-Xen test bed (QEMU → Xen 4.17 → PV dom0 → the guest as a domU),
# everything cached under $EBB_CACHE/xen/ and keyed by version or content, so that a
# second run does nothing:
#   xen-<version>/xen.elf   Debian's Xen 4.17 (bookworm-security), gunzipped
#   dom0-<kver>-<key>/      Debian bookworm's kernel for dom0 and a busybox initramfs
#                           that loads the virtio, ext4 and Xen modules and switches to
#                           the root file system (scripts/xen/dom0-initramfs-init)
#   rootfs-<key>.ext4       dom0's root: debootstrap --variant=minbase bookworm plus
#                           xen-utils-4.17 and xenstore-utils from bookworm-security
#   qemu-<version>-<key>/   QEMU built from Debian's source tarball (bookworm-backports)
#                           with ebb's fixes to its emulation (scripts/xen/qemu-*.patch,
#                           README "On a real Xen"), only x86_64-softmmu; the build
#                           takes /tmp/ebb-heavy.lock (waits while another one runs)
# and links them into build/xen/. scripts/run-xen.sh boots them.
#
# Environment: EBB_CACHE (default ~/.cache/ebb). Needs root (debootstrap, chroot).
set -euo pipefail
EBB_LOG_TAG=xen-setup
source "$(dirname "$0")/lib.sh"

XEN_CACHE=$EBB_CACHE/xen
MIRROR=http://deb.debian.org/debian
SECURITY_MIRROR=http://deb.debian.org/debian-security
QEMU_UPSTREAM=10.0.2
MESON_VERSION=1.5.0
PYCOTAP_VERSION=1.3.1
XEN_PKG=xen-hypervisor-4.17-amd64
ROOTFS_PKGS=(xen-utils-4.17 xenstore-utils)
# Modules dom0's initramfs loads (with what they depend on): its disks, its root file
# system and the devices the Xen toolstack opens.
DOM0_MODULES=(virtio_pci virtio_blk ext4 xenfs xen-evtchn xen-privcmd xen-gntdev xen-gntalloc)
APT_LOG=$EBB_CACHE/apt.log
# Bump when a change to this script changes what a step builds.
QEMU_RECIPE=2
DOM0_RECIPE=1
ROOTFS_RECIPE=1

[ "$(id -u)" = 0 ] || die "needs root (debootstrap and chroot build dom0's root file system)"
mkdir -p "$XEN_CACHE"
start=$SECONDS
# One set-up at a time per cache: another one waits, then finds everything built.
exec 9>"$XEN_CACHE/.setup.lock"
if ! flock -n 9; then
    log "waiting for another scripts/setup-xen.sh on $XEN_CACHE"
    flock 9
fi

# --- Host packages and apt sources -------------------------------------------------

HOST_PKGS=(debootstrap e2fsprogs busybox-static cpio kmod xz-utils patch build-essential
    pkg-config ninja-build python3-venv libglib2.0-dev libpixman-1-dev zlib1g-dev flex bison
    seabios qemu-system-data)

updated=0
apt_update() {
    [ "$updated" = 1 ] && return
    log "apt-get update"
    apt-get update -qq >>"$APT_LOG" 2>&1 || { tail -n 20 "$APT_LOG" >&2; die "apt-get update failed"; }
    updated=1
}

# QEMU's source comes from bookworm-backports, whose deb-src the default sources lack.
src_list=/etc/apt/sources.list.d/ebb-xen-src.sources
if [ ! -f "$src_list" ]; then
    log "apt sources: adding deb-src for bookworm-backports ($src_list)"
    cat >"$src_list" <<SRC
Types: deb-src
URIs: $MIRROR
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
    apt_update
fi

mapfile -t need < <(for p in "${HOST_PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || echo "$p"
done)
if [ "${#need[@]}" -gt 0 ]; then
    apt_update
    log "installing: ${need[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" \
        >>"$APT_LOG" 2>&1 || { tail -n 20 "$APT_LOG" >&2; die "apt-get install failed (log: $APT_LOG)"; }
fi

candidate() {
    apt-cache policy "$1" | awk '/Candidate:/ { print $2 }'
}

# Removes the other versions of a cached artifact ($2... globs; not a build in
# progress, *.work) that no run has used for a week: checkouts of other commits may
# share the cache, each with its own version. $1 is the version in use, whose time
# stamp this refreshes.
drop_stale() {
    local keep=$1 old
    shift
    [ ! -e "$keep" ] || touch -c "$keep"
    for old in "$@"; do
        if [ ! -e "$old" ] || [ "$old" = "$keep" ] || [ "${old%.work}" != "$old" ]; then
            continue
        fi
        [ -z "$(find "$old" -maxdepth 0 -mtime -7)" ] || continue
        log "removing $old (unused for a week)"
        rm -rf "$old"
    done
}

# --- Xen -----------------------------------------------------------------------------

debs=$XEN_CACHE/debs
mkdir -p "$debs"
# Sets deb to package $1 at version $2 in $debs, downloading it when missing.
fetch_deb() {
    deb=$debs/$1_${2//:/%3a}_amd64.deb
    if [ ! -f "$deb" ]; then
        log "downloading $1 $2"
        (cd "$debs" && apt-get download -q "$1=$2" >>"$APT_LOG" 2>&1) \
            || die "apt-get download $1=$2 failed (log: $APT_LOG)"
        [ -f "$deb" ] || die "apt-get download $1=$2 made no $deb"
    fi
}

xen_version=$(candidate "$XEN_PKG")
case "$xen_version" in ""|"(none)") die "no $XEN_PKG in the apt sources" ;; esac
xen_dir=$XEN_CACHE/xen-$xen_version
drop_stale "$xen_dir" "$XEN_CACHE"/xen-*
if [ -f "$xen_dir/xen.elf" ]; then
    log "Xen $xen_version is cached ($xen_dir)"
else
    fetch_deb "$XEN_PKG" "$xen_version"
    mkdir -p "$xen_dir"
    # A 32-bit multiboot ELF, which QEMU's -kernel takes as it is.
    dpkg-deb --fsys-tarfile "$deb" | tar -xO ./boot/xen-4.17-amd64.gz | gunzip >"$xen_dir/xen.elf.tmp"
    mv "$xen_dir/xen.elf.tmp" "$xen_dir/xen.elf"
    rm -f "$deb"
    log "Xen $xen_version ready: $xen_dir/xen.elf"
fi

# --- dom0's kernel and initramfs -----------------------------------------------------

kpkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
[ -n "$kpkg" ] || die "cannot tell which kernel linux-image-amd64 stands for"
kver=${kpkg#linux-image-}
kpkg_version=$(candidate "$kpkg")
initramfs_init=$EBB_ROOT/scripts/xen/dom0-initramfs-init
dom0_key=$( { echo "$kpkg_version recipe $DOM0_RECIPE ${DOM0_MODULES[*]}"; cat "$initramfs_init";
    dpkg-query -W -f='${Version}' busybox-static; } | sha256sum | cut -c1-12)
dom0_dir=$XEN_CACHE/dom0-$kver-$dom0_key

build_dom0() {
    local work=$dom0_dir.work m
    fetch_deb "$kpkg" "$kpkg_version"
    rm -rf "$work" "$dom0_dir"
    mkdir -p "$work/pkg"
    dpkg -x "$deb" "$work/pkg"
    depmod -b "$work/pkg" "$kver"
    # The modules in load order, each once, from the package's own dependency data.
    mapfile -t mods < <(modprobe -d "$work/pkg" -S "$kver" --show-depends -a "${DOM0_MODULES[@]}" \
        | awk '$1 == "insmod" && !seen[$2]++ { print $2 }')
    [ "${#mods[@]}" -gt 0 ] || die "no modules found for ${DOM0_MODULES[*]} in $kpkg"
    local root=$work/initramfs
    mkdir -p "$root"/{bin,dev,proc,sys,newroot,modules}
    cp /bin/busybox "$root/bin/busybox"
    for applet in sh mount umount mkdir insmod sleep cat tar switch_root echo ls poweroff; do
        ln -s busybox "$root/bin/$applet"
    done
    install -m 0755 "$initramfs_init" "$root/init"
    : >"$root/modules/order"
    for m in "${mods[@]}"; do
        cp "$m" "$root/modules/"
        basename "$m" >>"$root/modules/order"
    done
    find "$root" -exec touch -h -d @0 {} +
    (cd "$root" && find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc --reproducible -R 0:0) \
        | gzip -9 -n >"$work/initrd.cpio.gz"
    mkdir -p "$dom0_dir"
    cp "$work/pkg/boot/vmlinuz-$kver" "$dom0_dir/vmlinuz"
    mv "$work/initrd.cpio.gz" "$dom0_dir/initrd.cpio.gz"
    rm -rf "$work"
    rm -f "$deb"
    touch "$dom0_dir/.ebb-built"
}

drop_stale "$dom0_dir" "$XEN_CACHE"/dom0-*
if [ -f "$dom0_dir/.ebb-built" ]; then
    log "dom0 kernel $kver ($kpkg_version) is cached ($dom0_dir)"
else
    log "dom0 kernel $kver ($kpkg_version) and its initramfs"
    build_dom0
    log "dom0 kernel ready: $dom0_dir"
fi

# --- dom0's root file system ---------------------------------------------------------

tools_versions=$(for p in "${ROOTFS_PKGS[@]}"; do echo "$p=$(candidate "$p")"; done)
rootfs_key=$( { echo "$tools_versions recipe $ROOTFS_RECIPE"; } | sha256sum | cut -c1-12)
rootfs=$XEN_CACHE/rootfs-$rootfs_key.ext4

build_rootfs() {
    local dir=$XEN_CACHE/rootfs.work status=0
    umount_chroot() {
        local m
        for m in dev/pts dev sys proc; do
            mountpoint -q "$dir/$m" && umount "$dir/$m"
        done
        return 0
    }
    [ -d "$dir" ] && { umount_chroot; rm -rf "$dir"; }
    log "debootstrap --variant=minbase bookworm (log: $XEN_CACHE/debootstrap.log)"
    run_with_progress '^I: (Retrieving|Extracting|Unpacking|Configuring)' "$XEN_CACHE/debootstrap.log" \
        "debootstrap" debootstrap --variant=minbase bookworm "$dir" "$MIRROR"
    cat >"$dir/etc/apt/sources.list" <<SRC
deb $MIRROR bookworm main
deb $SECURITY_MIRROR bookworm-security main
SRC
    cp /etc/resolv.conf "$dir/etc/resolv.conf"
    # Nothing starts services inside the chroot.
    printf '#!/bin/sh\nexit 101\n' >"$dir/usr/sbin/policy-rc.d"
    chmod 0755 "$dir/usr/sbin/policy-rc.d"
    mount -t proc proc "$dir/proc"
    mount -t sysfs sysfs "$dir/sys"
    mount --bind /dev "$dir/dev"
    mount --bind /dev/pts "$dir/dev/pts"
    log "installing ${ROOTFS_PKGS[*]} (bookworm-security) into dom0's root (log: $XEN_CACHE/rootfs-apt.log)"
    run_with_progress '^(Get|Setting up)' "$XEN_CACHE/rootfs-apt.log" "dom0 packages" \
        chroot "$dir" /bin/sh -c "apt-get update -q && DEBIAN_FRONTEND=noninteractive \
            apt-get install -y -q --no-install-recommends ${ROOTFS_PKGS[*]} && apt-get clean" \
        || status=$?
    umount_chroot
    [ "$status" = 0 ] || die "installing the Xen tools into dom0's root failed"
    rm -f "$dir/usr/sbin/policy-rc.d"
    rm -rf "$dir"/var/lib/apt/lists/* "$dir"/usr/share/doc/* "$dir"/usr/share/man/* \
        "$dir"/usr/share/locale/*
    echo dom0 >"$dir/etc/hostname"
    local size_mib
    size_mib=$(( $(du -sm "$dir" | cut -f1) + 256 ))
    log "mke2fs -d: ${size_mib} MiB ext4 image"
    rm -f "$rootfs.tmp"
    truncate -s "${size_mib}M" "$rootfs.tmp"
    mke2fs -q -t ext4 -L ebb-dom0 -d "$dir" "$rootfs.tmp" || die "mke2fs failed"
    mv "$rootfs.tmp" "$rootfs"
    rm -rf "$dir"
}

drop_stale "$rootfs" "$XEN_CACHE"/rootfs-*.ext4
if [ -f "$rootfs" ]; then
    log "dom0 root file system is cached ($rootfs)"
else
    build_rootfs
    log "dom0 root file system ready: $rootfs ($(echo "$tools_versions" | tr '\n' ' '))"
fi

# --- QEMU with the SVM fixes -------------------------------------------------------

# The orig tarball of the first qemu source version with upstream $QEMU_UPSTREAM:
# prints its file name and sha256.
qemu_orig() {
    apt-cache showsrc qemu | awk -v up="$QEMU_UPSTREAM" '
        /^Package:/ { ver = ""; insum = 0 }
        /^Version:/ { ver = $2 }
        /^Checksums-Sha256:/ { insum = 1; next }
        /^[^ ]/ { insum = 0 }
        insum && $3 ~ ("^qemu_" up "(\\+ds)?\\.orig\\.tar\\.xz$") { print $3, $1; exit }'
}

read -r orig orig_sha < <(qemu_orig) || true
if [ -z "${orig:-}" ]; then
    apt_update
    read -r orig orig_sha < <(qemu_orig) || true
fi
[ -n "${orig:-}" ] || die "no qemu $QEMU_UPSTREAM source in the apt sources (apt-cache showsrc qemu; $src_list)"
patches=("$EBB_ROOT"/scripts/xen/qemu-*.patch)
qemu_key=$( { echo "$orig_sha recipe $QEMU_RECIPE meson $MESON_VERSION"; cat "${patches[@]}"; } \
    | sha256sum | cut -c1-12)
qemu_dir=$XEN_CACHE/qemu-$QEMU_UPSTREAM-$qemu_key
qemu_bin=$qemu_dir/bin/qemu-system-x86_64

# Sets qemu_tarball to the checked orig tarball, downloading it when missing.
fetch_qemu_source() {
    local src=$XEN_CACHE/src/$orig
    mkdir -p "$XEN_CACHE/src"
    if ! echo "$orig_sha  $src" | sha256sum -c --status 2>/dev/null; then
        log "downloading $orig"
        # apt-get source fetches the orig tarball even where the mirror no longer has
        # this upload's .dsc (and then fails): the tarball's checksum is what counts.
        (cd "$XEN_CACHE/src" && apt-get source -q --download-only qemu >>"$APT_LOG" 2>&1) || true
        if ! echo "$orig_sha  $src" | sha256sum -c --status 2>/dev/null; then
            wget -q -O "$src.part" "$MIRROR/pool/main/q/qemu/$orig" \
                || die "cannot download $orig (apt-get source qemu, $MIRROR/pool/main/q/qemu/)"
            mv "$src.part" "$src"
        fi
        echo "$orig_sha  $src" | sha256sum -c --status || die "$src: sha256 mismatch"
        rm -f "$XEN_CACHE"/src/qemu_*.dsc "$XEN_CACHE"/src/qemu_*.debian.tar.xz
    fi
    drop_stale "$src" "$XEN_CACHE"/src/qemu_*.orig.tar.xz
    qemu_tarball=$src
}

build_qemu() {
    local work tools=$XEN_CACHE/tools
    fetch_qemu_source
    work=$qemu_dir.work
    rm -rf "$work" "$qemu_dir"
    mkdir -p "$work"
    log "unpacking $orig"
    tar -xJf "$qemu_tarball" -C "$work" --strip-components=1
    for p in "${patches[@]}"; do
        log "applying $(basename "$p")"
        patch -s -p1 -d "$work" <"$p" || die "$(basename "$p") does not apply to $orig"
    done
    # Debian's tarball leaves out the firmware blobs, which meson still wants to see
    # (the EDK2 images even when none is installed): empty stand-ins, never built.
    sed -n "s/^ *'\(edk2-[^']*\.fd\)',\$/\1/p" "$work/pc-bios/meson.build" | while read -r fd; do
        [ -e "$work/pc-bios/$fd.bz2" ] || : >"$work/pc-bios/$fd.bz2"
    done
    # The machine run-xen.sh needs and nothing else (a fifth less to build): pc (i440FX,
    # which brings the serial port, ACPI power-off and fw_cfg for multiboot) and virtio
    # disks.
    printf '%s\n' CONFIG_I440FX=y CONFIG_VIRTIO_PCI=y CONFIG_VIRTIO_BLK=y \
        >"$work/configs/devices/x86_64-softmmu/ebb.mak"
    # It also leaves out QEMU's bundled Python wheels: meson comes from PyPI.
    if ! "$tools/venv/bin/python3" -c "import importlib.metadata as m; assert m.version('meson') == '$MESON_VERSION'" 2>/dev/null; then
        log "meson $MESON_VERSION and pycotap $PYCOTAP_VERSION from PyPI into $tools/venv"
        rm -rf "$tools/venv"
        /usr/bin/python3 -m venv "$tools/venv"
        "$tools/venv/bin/pip" install -q "meson==$MESON_VERSION" "pycotap==$PYCOTAP_VERSION" \
            >>"$work/pip.log" 2>&1 || { tail -n 20 "$work/pip.log" >&2; die "pip install meson failed"; }
    fi
    log "configuring QEMU $QEMU_UPSTREAM (x86_64-softmmu only)"
    # Firmware (SeaBIOS, the multiboot option ROM) is Debian's: the tarball has none.
    (cd "$work" && mkdir -p build && cd build && ../configure --python="$tools/venv/bin/python3" \
        --prefix="$qemu_dir" --target-list=x86_64-softmmu \
        --firmwarepath=/usr/share/qemu:/usr/share/seabios \
        --disable-docs --disable-werror --disable-download --disable-user --disable-install-blobs \
        --disable-gtk --disable-sdl --disable-vnc --disable-opengl --disable-spice \
        --disable-curses --disable-slirp --disable-libusb --disable-tools \
        --disable-guest-agent --disable-debug-info --without-default-devices \
        --with-devices-x86_64=ebb --disable-xen --disable-kvm --disable-vhost-user \
        --disable-libvduse --disable-vduse-blk-export) >"$work/configure.log" 2>&1 \
        || { tail -n 30 "$work/configure.log" >&2; die "QEMU configure failed (log: $work/configure.log)"; }
    log "building QEMU (waits for /tmp/ebb-heavy.lock while another heavy build runs)"
    run_with_progress '^\[[0-9]+/[0-9]+\]' "$work/build.log" "QEMU build" \
        flock /tmp/ebb-heavy.lock ninja -C "$work/build" -j"$(nproc)" qemu-system-x86_64
    mkdir -p "$qemu_dir/bin"
    cp "$work/build/qemu-system-x86_64" "$qemu_bin.tmp"
    mv "$qemu_bin.tmp" "$qemu_bin"
    rm -rf "$work"
    touch "$qemu_dir/.ebb-built"
}

drop_stale "$qemu_dir" "$XEN_CACHE"/qemu-*
if [ -f "$qemu_dir/.ebb-built" ]; then
    log "QEMU $QEMU_UPSTREAM with ebb's patches is cached ($qemu_dir)"
else
    build_qemu
    log "QEMU ready: $qemu_bin"
fi

# --- Links for scripts/run-xen.sh ----------------------------------------------------

out=$EBB_BUILD/xen
mkdir -p "$out"
ln -sfn "$qemu_bin" "$out/qemu-system-x86_64"
ln -sfn "$xen_dir/xen.elf" "$out/xen.elf"
ln -sfn "$dom0_dir/vmlinuz" "$out/dom0-vmlinuz"
ln -sfn "$dom0_dir/initrd.cpio.gz" "$out/dom0-initrd.cpio.gz"
ln -sfn "$rootfs" "$out/dom0-rootfs.ext4"
log "done in $((SECONDS - start)) s: $out"
