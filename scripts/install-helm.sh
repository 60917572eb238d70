#!/usr/bin/env bash
# Builds the `helm` CLI from its Go module (the chart test renders charts/fhir-assist with it).
# Go modules are the one registry here that carries helm; a release binary cannot be downloaded.
# The binary lands in $(go env GOPATH)/bin, where tests/test_helm_chart.py also looks.
set -euo pipefail
HELM_MODULE="helm.sh/helm/v4/cmd/helm@v4.3.2"
bin="$(go env GOPATH)/bin/helm"
if command -v helm >/dev/null 2>&1 || [ -x "$bin" ]; then
    exit 0
fi
command -v go >/dev/null 2>&1 || { echo "missing: go (needed to build helm)" >&2; exit 1; }
echo "building helm from $HELM_MODULE (a few minutes on first use)"
go install "$HELM_MODULE"
