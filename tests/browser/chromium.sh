#!/usr/bin/env bash
# Headless Chromium for depthlab's report test (tests/test_report.py).
#
#   tests/browser/chromium.sh install   install Debian's `chromium` and `chromium-driver` if
#                                       either is missing (idempotent: nothing to do when both
#                                       are there), then print the two paths:
#                                         chromium=/usr/bin/chromium
#                                         chromedriver=/usr/bin/chromedriver
#
# Nothing is downloaded outside the Debian archive (the browser is Debian's package, driven
# through Debian's chromedriver). Exit status 77 means "this machine cannot provide headless
# Chromium" (not root, no apt-get, packages not installable): the test suite turns it into
# a skip with the reason printed on the last line of stderr.
set -euo pipefail

STATE=${DEPTHLAB_BROWSER_STATE:-/tmp/depthlab-browser}

log() { echo "chromium.sh: $*" >&2; }
cannot() { log "cannot provide headless Chromium here: $*"; exit 77; }

find_bins() {
    CHROMIUM=$(command -v chromium || true)
    DRIVER=$(command -v chromedriver || true)
    [[ -z $DRIVER && -x /usr/lib/chromium/chromedriver ]] && DRIVER=/usr/lib/chromium/chromedriver
    return 0
}

install() {
    find_bins
    if [[ -n $CHROMIUM && -n $DRIVER ]]; then
        report_paths
        return 0
    fi
    local need=()
    [[ -n $CHROMIUM ]] || need+=(chromium)
    [[ -n $DRIVER ]] || need+=(chromium-driver)
    [[ $(id -u) == 0 ]] || cannot "${need[*]} not installed and installing needs root (running as $(id -un))"
    command -v apt-get >/dev/null || cannot "no apt-get to install ${need[*]}"
    mkdir -p "$STATE"
    log "installing ${need[*]} (apt log: $STATE/apt.log)"
    export DEBIAN_FRONTEND=noninteractive
    local ok=1
    # A stale package list is the usual reason an install fails on a fresh machine.
    if ! apt-get install -y -q --no-install-recommends "${need[@]}" >"$STATE/apt.log" 2>&1; then
        apt-get update -q >>"$STATE/apt.log" 2>&1 || true
        apt-get install -y -q --no-install-recommends "${need[@]}" >>"$STATE/apt.log" 2>&1 \
            || ok=
    fi
    [[ -n $ok ]] || { tail -20 "$STATE/apt.log" >&2; cannot "apt-get install ${need[*]} failed"; }
    find_bins
    [[ -n $CHROMIUM ]] || cannot "chromium is still missing after apt-get install"
    [[ -n $DRIVER ]] || cannot "chromedriver is still missing after apt-get install"
    report_paths
}

report_paths() {
    echo "chromium=$CHROMIUM"
    echo "chromedriver=$DRIVER"
}

case ${1:-} in
    install) install ;;
    *) echo "usage: $0 install" >&2; exit 2 ;;
esac
