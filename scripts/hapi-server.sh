#!/usr/bin/env bash
# The HAPI FHIR JPA test server (R4, in-memory H2) of tests/hapi_server/.
#
#   scripts/hapi-server.sh PORT          build if needed, then run in the foreground on
#                                        127.0.0.1:PORT; prints http://127.0.0.1:PORT/fhir
#                                        on a line of its own once GET /fhir/metadata is 200
#   scripts/hapi-server.sh --build-only  build if needed and exit
#
# The first build resolves HAPI FHIR and its dependencies from Maven Central into the local
# Maven repository (~/.m2, or MAVEN_REPO_LOCAL); later builds run offline from it. Logs go
# to stderr; the data lives in memory and is gone when the server stops.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
project="$here/tests/hapi_server"
target="$project/target"
classpath_file="$target/classpath.txt"
stamp="$target/.built-from"

usage() { echo "usage: $0 PORT | --build-only" >&2; exit 2; }
[ $# -eq 1 ] || usage
case "$1" in
    --build-only) ;;
    *[!0-9]*|'') usage ;;
esac

maven_args=(-B -q -f "$project/pom.xml")
[ -n "${MAVEN_REPO_LOCAL:-}" ] && maven_args+=("-Dmaven.repo.local=$MAVEN_REPO_LOCAL")

# What the build depends on: the POM and the sources. Rebuild only when they change.
sources_digest() {
    (cd "$project" && find pom.xml src -type f -print0 | sort -z | xargs -0 sha256sum) | sha256sum | cut -d' ' -f1
}

build() {
    local digest
    digest="$(sources_digest)"
    if [ -f "$stamp" ] && [ -f "$classpath_file" ] && [ "$(cat "$stamp")" = "$digest" ]; then
        return 0
    fi
    command -v mvn >/dev/null || { echo "mvn is not installed (run scripts/system-deps.sh)" >&2; exit 1; }
    echo "building the HAPI FHIR test server (tests/hapi_server)" >&2
    # Offline first: after the first build everything is in the local repository.
    if ! mvn "${maven_args[@]}" -o compile dependency:build-classpath \
            -Dmdep.outputFile="$classpath_file" >"$target/offline.log" 2>&1; then
        mvn "${maven_args[@]}" compile dependency:build-classpath -Dmdep.outputFile="$classpath_file" >&2
    fi
    rm -f "$target/offline.log"
    echo "$digest" >"$stamp"
}

mkdir -p "$target"
build
[ "$1" = --build-only ] && exit 0

command -v java >/dev/null || { echo "java is not installed (run scripts/system-deps.sh)" >&2; exit 1; }
# Small heap, serial GC and the quick JIT tier: the server starts sooner on a 2-core machine.
exec java ${HAPI_JAVA_OPTS:--Xmx1g -XX:+UseSerialGC -XX:TieredStopAtLevel=1} \
    -cp "$target/classes:$(cat "$classpath_file")" org.fhirassist.hapi.HapiTestServer "$1"
