#!/usr/bin/env bash
# Load the example patient into a FHIR server, then call every example hook with curl.
#
#   examples/hooks/call-service.sh [SERVICE_URL] [FHIR_BASE_URL]
#
# SERVICE_URL   the fhir-assist service (default http://127.0.0.1:8080), started e.g. with
#               fhir-assist serve --no-auth --fhir-base-url "$FHIR_BASE_URL"
# FHIR_BASE_URL a FHIR R4 server that accepts a batch Bundle (default http://127.0.0.1:8081/fhir;
#               e.g. HAPI FHIR, or `node tests/fhir_server/server.mjs --port 8081`)
#
# The *.no-prefetch.json requests make the service fetch the data from FHIR_BASE_URL;
# the others carry everything in prefetch. Authentication: export CDS_JWT to send
# "Authorization: Bearer $CDS_JWT" (a token signed by an issuer given to --trust).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
service="${1:-http://127.0.0.1:8080}"
fhir="${2:-http://127.0.0.1:8081/fhir}"
auth=()
if [ -n "${CDS_JWT:-}" ]; then auth=(-H "Authorization: Bearer $CDS_JWT"); fi

echo "loading the example patient into $fhir"
curl -fsS -X POST "$fhir" -H 'Content-Type: application/fhir+json' \
     --data @"$here/patient-bundle.json" -o /dev/null

echo "discovery:"
curl -fsS "${auth[@]}" "$service/cds-services" | python3 -m json.tool | grep '"id"'

for request in "$here"/*.json; do
  name="$(basename "$request" .json)"
  case "$name" in patient-bundle) continue ;; esac
  id="${name%.no-prefetch}"
  echo
  echo "== POST $service/cds-services/$id  ($name.json)"
  # Point the no-prefetch requests at the FHIR server given on the command line.
  sed "s#\"fhirServer\": *\"[^\"]*\"#\"fhirServer\": \"$fhir\"#" "$request" |
    curl -sS "${auth[@]}" -X POST "$service/cds-services/$id" -H 'Content-Type: application/json' \
         --data @- -w '\nHTTP %{http_code}\n' |
    python3 -c 'import json,sys
text=sys.stdin.read().rstrip("\n"); body,_,status=text.rpartition("\n")
status=status.strip()
try:
    answer=json.loads(body)
except ValueError:
    print(status, body[:300]); sys.exit()
print(status)
for card in answer.get("cards", []):
    print(" ", card["indicator"].upper(), "-", card["summary"])
    for s in card.get("suggestions", []):
        print("     *" if s.get("isRecommended") else "     -", s["label"])
for issue in answer.get("issue", []):
    print("  ", issue.get("details", {}).get("text"))'
done
