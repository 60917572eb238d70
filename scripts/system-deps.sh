#!/usr/bin/env bash
# Installs what the integration tests need and a fresh machine lacks:
# a Redis server (Debian), and the in-memory FHIR R4 server (npm, see tests/fhir_server/).
# The test fixtures start and stop these servers themselves, on free loopback ports.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
# headless browser for the coder-worklist browser tests (driven by Playwright, never its own download)
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
if [ ${#need_apt[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
        echo "installing ${need_apt[*]} from Debian's packages"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
    else
        echo "missing: ${need_apt[*]} (run as root or install them); tests needing them will be skipped" >&2
    fi
fi

# The in-memory FHIR R4 server used by the integration tests: exact versions from the
# committed package-lock.json (npm ci), only when node_modules is missing.
if [ ! -d tests/fhir_server/node_modules/@medplum/fhir-router ]; then
    if command -v npm >/dev/null 2>&1; then
        echo "installing the test FHIR server's npm packages (tests/fhir_server)"
        npm ci --prefix tests/fhir_server --no-audit --no-fund --loglevel=error
    else
        echo "missing: node/npm; tests needing the FHIR server will be skipped unless FHIR_BASE_URL is set" >&2
    fi
fi

# helm, for the chart test (built from its Go module on first use)
bash scripts/install-helm.sh
