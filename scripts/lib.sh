# Shared settings for ebb's scripts: cache locations and the toolchain that builds
# the Rust-enabled guest kernel and ebb.ko. Sourced, not run.

EBB_ROOT=${EBB_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
EBB_CACHE=${EBB_CACHE:-$HOME/.cache/ebb}
EBB_TOOLS=$EBB_CACHE/tools
EBB_BUILD=$EBB_ROOT/build

# The rustup toolchain that may come first on PATH has no rust-src, so the kernel's
# `core` must be built by Debian's rustc-web.
KERNEL_MAKE_FLAGS=(
    RUSTC=/usr/bin/rustc
    RUSTDOC=/usr/bin/rustdoc
    BINDGEN="$EBB_TOOLS/bin/bindgen"
)
export LIBCLANG_PATH=/usr/lib/llvm-19/lib

log() { printf '[%s] %s\n' "${EBB_LOG_TAG:-ebb}" "$*"; }
die() { printf '[%s] error: %s\n' "${EBB_LOG_TAG:-ebb}" "$*" >&2; exit 1; }

# Runs a long command with its output in a log file, printing one progress line
# every $EBB_PROGRESS_SECONDS (default 30) seconds with the number of log lines
# matching $1 so far. On failure prints the log's tail and returns the status.
run_with_progress() {
    local pattern=$1 logfile=$2 what=$3
    shift 3
    local start=$SECONDS status=0 every=${EBB_PROGRESS_SECONDS:-30}
    local next=$((start + every))
    "$@" >"$logfile" 2>&1 &
    local pid=$!
    while kill -0 "$pid" 2>/dev/null; do
        sleep 1
        if (( SECONDS >= next )); then
            log "$what: $((SECONDS - start)) s, $(grep -c -E "$pattern" "$logfile") steps"
            next=$((next + every))
        fi
    done
    wait "$pid" || status=$?
    if [ "$status" != 0 ]; then
        log "$what failed (exit $status); last lines of $logfile:"
        tail -n 40 "$logfile" >&2
        return "$status"
    fi
    log "$what: done in $((SECONDS - start)) s"
}
