#!/usr/bin/env bash
# Installs everything ebb needs to build the guest kernel, ebb.ko, ebbhv and to run
# the test bed. Idempotent: each step checks first and says what it skips.
#
# Environment:
#   EBB_CACHE   cache directory (default ~/.cache/ebb); tools go to $EBB_CACHE/tools,
#               apt's output to $EBB_CACHE/apt.log
set -euo pipefail

EBB_CACHE=${EBB_CACHE:-$HOME/.cache/ebb}
TOOLS=$EBB_CACHE/tools
BINDGEN_VERSION=0.72.1
MIRROR=http://deb.debian.org/debian

APT_LOG=$EBB_CACHE/apt.log
mkdir -p "$EBB_CACHE"

say() { printf '[setup] %s\n' "$*"; }
die() { printf '[setup] error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || SUDO=sudo
SUDO=${SUDO:-}

# bookworm-backports (QEMU 10) and trixie-backports (linux-source-7.3). Both are
# NotAutomatic, so nothing is pulled from them unless asked by name with -t.
add_backports() {
    local list=/etc/apt/sources.list.d/ebb-backports.sources
    if [ -f "$list" ]; then
        say "apt sources: $list present"
        return 1
    fi
    say "apt sources: adding bookworm-backports and trixie-backports ($list)"
    $SUDO tee "$list" >/dev/null <<SRC
Types: deb
URIs: $MIRROR
Suites: bookworm-backports trixie-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
}

# Packages from the default suites (rustc-web comes from bookworm-security).
PKGS=(
    rustc-web rust-web-src cargo-web rust-web-clippy rustfmt-web
    libclang-19-dev llvm-19 lld-19 clang-19
    flex bison bc libelf-dev libssl-dev cpio dwarves xz-utils kmod
    busybox-static bash-static build-essential python3
    rsync
)
BPO_PKGS=(qemu-system-x86)

missing_pkgs() {
    local p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || echo "$p"
    done
}

updated=0
apt_update() {
    [ "$updated" = 1 ] && return
    say "apt-get update"
    $SUDO apt-get update -qq >>"$APT_LOG" 2>&1 || { tail -n 20 "$APT_LOG" >&2; die "apt-get update failed"; }
    updated=1
}

if add_backports; then apt_update; fi

mapfile -t need < <(missing_pkgs "${PKGS[@]}")
if [ "${#need[@]}" -gt 0 ]; then
    apt_update
    say "installing: ${need[*]}"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" \
        >>"$APT_LOG" 2>&1 || { tail -n 20 "$APT_LOG" >&2; die "apt-get install failed for: ${need[*]} (log: $APT_LOG)"; }
else
    say "packages: all present"
fi

mapfile -t need < <(missing_pkgs "${BPO_PKGS[@]}")
if [ "${#need[@]}" -gt 0 ]; then
    apt_update
    say "installing from bookworm-backports: ${need[*]}"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
        -t bookworm-backports "${need[@]}" >>"$APT_LOG" 2>&1 \
        || { tail -n 20 "$APT_LOG" >&2; die "apt-get install -t bookworm-backports failed (log: $APT_LOG)"; }
else
    say "qemu-system-x86: present ($(qemu-system-x86_64 --version | head -n1))"
fi

# The kernel build needs bindgen >= 0.71.1; pin it so builds are reproducible.
if [ -x "$TOOLS/bin/bindgen" ] && "$TOOLS/bin/bindgen" --version | grep -q " $BINDGEN_VERSION\$"; then
    say "bindgen $BINDGEN_VERSION: present in $TOOLS/bin"
else
    say "bindgen $BINDGEN_VERSION: cargo install into $TOOLS (takes a few minutes)"
    mkdir -p "$TOOLS"
    LIBCLANG_PATH=/usr/lib/llvm-19/lib cargo install --quiet --locked --root "$TOOLS" \
        bindgen-cli --version "$BINDGEN_VERSION" || die "cargo install bindgen-cli $BINDGEN_VERSION failed"
fi

say "done"
