#!/usr/bin/env bash
# Installs what kvsupervisor needs to build and test on Debian, only what is missing.
# Idempotent: a second run installs nothing. Needs root (or sudo) for apt.
set -euo pipefail

need_apt=()
# chromium: the counterexample page and the experiment report are rendered headless by tests, as a person sees them.
for pkg in libsystemd-dev pkg-config util-linux procps curl python3-venv chromium; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need_apt+=("$pkg")
done
if [[ "${KV_SYSTEM_TIER:-0}" == 1 ]]; then
    for pkg in systemd-container debootstrap; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need_apt+=("$pkg")
    done
fi
if ((${#need_apt[@]})); then
    SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
    echo "setup: installing apt packages: ${need_apt[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
else
    echo "setup: apt packages present"
fi

if ! command -v swift >/dev/null; then
    if [[ -x /opt/swift/usr/bin/swift ]]; then
        echo "setup: swift is at /opt/swift/usr/bin; add it to PATH"
    else
        echo "setup: no Swift toolchain found; install Swift 6 from swift.org and rerun" >&2
        exit 1
    fi
fi
