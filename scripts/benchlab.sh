# Sourced by bench-flanneld.sh and bench-overlay.sh: the clean-up of the lab their Python body
# builds (benchlab.py). The caller sets TAG (its name, for messages), prefix (of every namespace
# it makes) and LOGS (a directory to keep the logs in, or empty), then calls lab_trap; lab_tmp
# makes the temp dir and lab_body runs the Python body.
# shellcheck shell=bash disable=SC2154 # prefix, TAG and LOGS are the caller's

tmp=""
py=""

lab_ours() { ip netns list 2>/dev/null | awk '{print $1}' | grep -- "^$prefix" || true; }

lab_cleanup() {
    local rc=$? pids left ns
    trap - EXIT INT TERM
    # The Python body first (a signal got us out of `wait`): it stops what it started and exits.
    if [ -n "$py" ] && kill -0 "$py" 2>/dev/null; then
        kill -TERM "$py" 2>/dev/null || true
        for _ in $(seq 100); do kill -0 "$py" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$py" 2>/dev/null || true
    fi
    # Then whatever still runs in our namespaces (deleting a namespace does not stop what runs in
    # it), by pid: TERM, and KILL what is still there after 5 s.
    pids=$(for ns in $(lab_ours); do ip netns pids "$ns" 2>/dev/null; done | grep -vx "$$" | sort -u || true)
    left=""
    if [ -n "$pids" ]; then
        # shellcheck disable=SC2086 # a list of pids
        kill -TERM $pids 2>/dev/null || true
        for _ in $(seq 50); do
            left=$(for p in $pids; do [ -d "/proc/$p" ] && echo "$p"; done || true)
            [ -z "$left" ] && break
            sleep 0.1
        done
        if [ -n "$left" ]; then
            # shellcheck disable=SC2086
            kill -KILL $left 2>/dev/null || true
        fi
    fi
    lab_ours | sed 's/^/netns del /' | ip -force -batch - >/dev/null 2>&1 || true
    for ns in $(lab_ours); do
        ip netns del "$ns" 2>/dev/null || echo "$TAG: could not delete netns $ns" >&2
    done
    if [ -n "$tmp" ]; then
        if [ -n "${LOGS:-}" ]; then
            mkdir -p "$LOGS" &&
                (cd "$tmp" && find . -name '*.log' -exec cp --parents {} "$LOGS" \;) ||
                echo "$TAG: could not copy the logs to $LOGS" >&2
        fi
        rm -rf "$tmp"
    fi
    exit "$rc"
}

lab_trap() {
    trap lab_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

# lab_tmp NAME: the temp dir, on /dev/shm when there is one.
lab_tmp() {
    local base=/tmp
    [ -d /dev/shm ] && [ -w /dev/shm ] && base=/dev/shm
    tmp=$(mktemp -d "$base/weft-$1.XXXXXX")
}

# lab_body SCRIPT ARG...: in the background and waited for, so that a signal runs the trap at
# once, not when the body is done.
lab_body() {
    python3 "$@" &
    py=$!
    wait "$py"
}
