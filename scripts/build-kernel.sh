#!/usr/bin/env bash
# Builds the Rust-enabled Linux 7.3 guest kernel from Debian's linux-source-7.3 with
# the fixes in scripts/kernel-patches/ applied, configured from tinyconfig plus the
# fragments in scripts/kconfig/<flavour>.list. The source lives in
# $EBB_CACHE/src/linux-<version>-<hash of the patches>, the build in
# $EBB_CACHE/kernel/<flavour>-<version>-<hash of fragments, patches and flags>, reused
# while none of them changes. Links the result into build/<flavour>/.
#
# Usage: build-kernel.sh [flavour]      (default: guest)
set -euo pipefail
EBB_LOG_TAG=kernel
source "$(dirname "$0")/lib.sh"

flavour=${1:-guest}
fragment_list=$EBB_ROOT/scripts/kconfig/$flavour.list
[ -f "$fragment_list" ] || die "no fragment list $fragment_list"
mapfile -t fragments < <(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$fragment_list" \
    | sed "s|^|$EBB_ROOT/scripts/kconfig/|")

debs=$EBB_CACHE/debs
mkdir -p "$debs"
deb=$(ls "$debs"/linux-source-7.3_*.deb 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "$deb" ]; then
    log "downloading linux-source-7.3 (apt-get download)"
    (cd "$debs" && apt-get download -q linux-source-7.3 >/dev/null 2>&1) || die \
        "apt-get download linux-source-7.3 failed: is trixie-backports in the apt sources (run scripts/setup-deps.sh), and does the mirror still carry linux-source-7.3? (apt-cache policy linux-source-7.3)"
    deb=$(ls "$debs"/linux-source-7.3_*.deb | sort -V | tail -n 1)
fi
version=$(dpkg-deb -f "$deb" Version)

patches=("$EBB_ROOT"/scripts/kernel-patches/*.patch)
patches_key=$(cat "${patches[@]}" | sha256sum | cut -c1-8)
src=$EBB_CACHE/src/linux-$version-$patches_key
if [ ! -f "$src/.ebb-unpacked" ]; then
    for stale in "$EBB_CACHE"/src/linux-*; do
        [ ! -d "$stale" ] || { log "removing stale source $stale"; rm -rf "$stale"; }
    done
    log "unpacking linux-source $version into $src"
    mkdir -p "$src.deb" "$src"
    dpkg -x "$deb" "$src.deb"
    tarball=$(ls "$src.deb"/usr/src/linux-source-7.3*.tar.xz)
    tar -xJf "$tarball" -C "$src" --strip-components=1
    rm -rf "$src.deb"
    for patch in "${patches[@]}"; do
        log "applying ${patch#"$EBB_ROOT"/}"
        patch -d "$src" -p1 --forward --quiet < "$patch" || die "${patch#"$EBB_ROOT"/} does not apply to linux-source $version"
    done
    touch "$src/.ebb-unpacked"
fi

# Bump when a change to this script changes what it builds.
recipe=1
key=$( { cat "${fragments[@]}" "${patches[@]}"; echo "recipe $recipe ${KERNEL_MAKE_FLAGS[*]}"; } | sha256sum | cut -c1-12)
out=$EBB_CACHE/kernel/$flavour-$version-$key
link() {
    mkdir -p "$EBB_BUILD/$flavour"
    ln -sfn "$out" "$EBB_BUILD/$flavour/kbuild"
    ln -sfn "$out/vmlinux" "$EBB_BUILD/$flavour/vmlinux"
    ln -sfn "$out/arch/x86/boot/bzImage" "$EBB_BUILD/$flavour/bzImage"
}
if [ -f "$out/.ebb-built" ]; then
    log "$flavour kernel $version is cached ($out)"
    link
    exit 0
fi

# A build for other fragments or another source version is not used again.
for stale in "$EBB_CACHE/kernel/$flavour"-*; do
    [ "$stale" = "$out" ] || [ ! -d "$stale" ] || { log "removing stale build $stale"; rm -rf "$stale"; }
done
log "configuring $flavour kernel $version in $out"
mkdir -p "$out"
kmake() { make -C "$src" O="$out" "${KERNEL_MAKE_FLAGS[@]}" "$@"; }
kmake -s tinyconfig >/dev/null
(cd "$out" && "$src/scripts/kconfig/merge_config.sh" -m -O "$out" .config "${fragments[@]}" >/dev/null)
kmake -s olddefconfig >/dev/null

# merge_config.sh only warns when Kconfig drops a requested option (a missing
# dependency); a guest kernel without one of them would fail much later and obscurely.
# A later fragment may override an earlier one (c-balloon turns XEN_BALLOON back on), so
# only the last request for each option counts, as in merge_config.sh.
mismatch=0
declare -A checked=()
while IFS= read -r line; do
    case "$line" in
        CONFIG_*=*) opt=${line%%=*}; want=$line ;;
        "# CONFIG_"*" is not set") opt=${line#\# }; opt=${opt%% *}; want=$line ;;
        *) continue ;;
    esac
    [ -z "${checked[$opt]:-}" ] || continue
    checked[$opt]=1
    got=$(grep -E "^($opt=|# $opt is not set)" "$out/.config" || echo "# $opt is not set")
    if [ "$got" != "$want" ]; then
        printf '[kernel] config: asked for "%s", got "%s"\n' "$want" "$got" >&2
        mismatch=1
    fi
done < <(cat "${fragments[@]}" | tac)
[ "$mismatch" = 0 ] || die "the config fragments cannot be satisfied (see above)"

kmake -s rustavailable >/dev/null || die "Rust is not available to the kernel build (run scripts/setup-deps.sh)"

jobs=$(( $(nproc) + 1 ))
log "building bzImage, vmlinux and modules with -j$jobs (a few minutes; log: $out/build.log)"
# Without the caller's MAKEFLAGS: `make -s` would silence the kernel's build log, whose
# lines are the progress count.
run_with_progress '^  (CC|RUSTC|LD|AR|AS)' "$out/build.log" "kernel build" \
    env -u MAKEFLAGS -u MFLAGS make -C "$src" O="$out" "${KERNEL_MAKE_FLAGS[@]}" -j"$jobs" \
    bzImage vmlinux modules
touch "$out/.ebb-built"
link
log "$flavour kernel ready: $EBB_BUILD/$flavour/bzImage"
