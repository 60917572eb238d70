#!/usr/bin/env bash
# Installs what the integration tests need and a fresh machine lacks:
# a Redis server (Debian), and the in-memory FHIR R4 server (npm, see tests/fhir_server/).
# The test fixtures start and stop these servers themselves, on free loopback ports.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
if [ ${#need_apt[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
        echo "installing ${need_apt[*]} from Debian's packages"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
    else
        echo "missing: ${need_apt[*]} (run as root or install them); tests needing them will be skipped" >&2
    fi
fi
