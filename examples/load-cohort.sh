#!/usr/bin/env bash
# Loads a FHIR transaction Bundle (by default the example cohort) into a FHIR R4 server.
#
#   examples/load-cohort.sh [BASE_URL] [BUNDLE.json]
#
# BASE_URL defaults to $FHIR_BASE_URL, then http://localhost:8080/fhir (HAPI FHIR from
# examples/docker-compose.yml). Set FHIR_TOKEN to send "Authorization: Bearer $FHIR_TOKEN".
# It waits up to FHIR_WAIT seconds (default 180: HAPI takes a minute or two to start) for
# the server to answer.
# The example Bundle writes every resource with PUT and a fixed id, so loading it again
# updates the same resources instead of adding copies.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
case "${1:-}" in
    -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
esac
base="${1:-${FHIR_BASE_URL:-http://localhost:8080/fhir}}"
bundle="${2:-$here/cohort-bundle.json}"
base="${base%/}"

command -v curl >/dev/null || { echo "error: curl is not installed" >&2; exit 2; }
[ -f "$bundle" ] || { echo "error: no such file: $bundle" >&2; exit 2; }

auth=()
[ -n "${FHIR_TOKEN:-}" ] && auth=(-H "Authorization: Bearer $FHIR_TOKEN")

reply="$(mktemp)"
trap 'rm -f "$reply"' EXIT

# Wait for a server that is still starting; fail with a clear message when nothing answers.
wait_s="${FHIR_WAIT:-180}"
deadline=$((SECONDS + wait_s))
until curl -s -f -o /dev/null --max-time 10 -H 'Accept: application/fhir+json' "${auth[@]}" "$base/metadata"; do
    if [ "$SECONDS" -ge "$deadline" ]; then
        echo "error: no FHIR server answers at $base/metadata after ${wait_s} s (start one, or pass its base URL)" >&2
        exit 1
    fi
    sleep 5
done

echo "loading $(basename "$bundle") into $base"
status="$(curl -sS -o "$reply" -w '%{http_code}' --max-time 300 -X POST \
    -H 'Content-Type: application/fhir+json' -H 'Accept: application/fhir+json' "${auth[@]}" \
    --data-binary "@$bundle" "$base")"

if [ "$status" != 200 ]; then
    echo "error: the server answered HTTP $status:" >&2
    cat "$reply" >&2; echo >&2
    exit 1
fi
count() { { grep -o "\"status\" *: *\"$1" "$reply" || true; } | wc -l | tr -d ' '; }
echo "done: $(count 201) created, $(count 200) updated or unchanged"
