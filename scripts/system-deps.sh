#!/usr/bin/env bash
# Installs what the integration tests need and a fresh machine lacks, and fails (exit 1)
# when something stays missing:
# - Redis and Chromium (Debian), Node/npm and the in-memory FHIR R4 server (npm, tests/fhir_server/);
# - Java 17 and Maven (Debian), then the HAPI FHIR JPA test server (Maven, tests/hapi_server/).
# The test fixtures start and stop these servers themselves, on free loopback ports.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
need_apt=()
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
# headless browser for the coder-worklist browser tests (driven by Playwright, never its own download)
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || need_apt+=(nodejs npm)
command -v javac >/dev/null 2>&1 || need_apt+=(openjdk-17-jdk-headless)
command -v mvn >/dev/null 2>&1 || need_apt+=(maven)
if [ ${#need_apt[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
        echo "installing ${need_apt[*]} from Debian's packages"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
    else
        echo "cannot install ${need_apt[*]}: run as root or install them" >&2
    fi
fi
for program in redis-server chromium node npm java javac mvn; do
    command -v "$program" >/dev/null 2>&1 || missing+=("$program")
done

# The in-memory FHIR R4 server used by the integration tests: exact versions from the
# committed package-lock.json (npm ci), only when node_modules is missing. A link there that
# leads nowhere (a checkout's link to another checkout's packages) is replaced.
if [ -L tests/fhir_server/node_modules ] && [ ! -d tests/fhir_server/node_modules/@medplum/fhir-router ]; then
    rm -f tests/fhir_server/node_modules
fi
if [ ! -d tests/fhir_server/node_modules/@medplum/fhir-router ] && command -v npm >/dev/null 2>&1; then
    echo "installing the test FHIR server's npm packages (tests/fhir_server)"
    npm ci --prefix tests/fhir_server --no-audit --no-fund --loglevel=error || true
fi
[ -d tests/fhir_server/node_modules/@medplum/fhir-router ] || missing+=("tests/fhir_server/node_modules")

# The HAPI FHIR JPA test server: built once (Maven Central), offline from ~/.m2 afterwards.
if command -v mvn >/dev/null 2>&1 && command -v java >/dev/null 2>&1; then
    bash scripts/hapi-server.sh --build-only || missing+=("the HAPI FHIR test server build (tests/hapi_server)")
fi

if [ ${#missing[@]} -gt 0 ]; then
    printf 'missing after install: %s\n' "${missing[@]}" >&2
    exit 1
fi

# helm, for the chart test (built from its Go module on first use)
bash scripts/install-helm.sh
