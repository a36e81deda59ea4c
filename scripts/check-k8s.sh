#!/usr/bin/env bash
# Offline checks of the Kubernetes deliverables: the Helm chart (helm/citaflow) and the
# infrastructure manifests (k8s/).
#
#   scripts/check-k8s.sh
#
#  1. Helm v3.22.0 (built with `go install` into .cache/bin, once) lints the chart strictly
#     and renders it with its defaults and with every helm/citaflow/ci/*.yaml;
#  2. the values schema refuses an unknown key and a wrong type;
#  3. tools/k8svalidate checks every rendered manifest and every k8s/ manifest against the
#     Kubernetes API types (strict decoding) and the vendored CRD schemas, plus references;
#  4. `citaflow settings check` checks every CITAFLOW__ variable the chart renders (extracted by
#     scripts/chart_containers.py) against the services' own Settings type: names, values
#     parsed by the services' loader, settings a service cannot start without, ports; and it
#     must refuse a chart that names a setting that does not exist or gives one a wrong type;
#  5. every value of values.yaml is documented (`## @param`) and the chart README's
#     parameters table is up to date.
#
# Everything it downloads or builds stays under .cache/ (git-ignored). Needs go (PATH or
# /usr/local/go/bin) and python3; the first run needs the Go module proxy.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

HELM_VERSION=v3.22.0
KUBE_VERSION=${KUBE_VERSION:-1.33.0} # the API version charts are rendered for
CHART=helm/citaflow
TOOLS=$ROOT/.cache/k8s-tools
BIN=$ROOT/.cache/bin
HELM=$BIN/helm
VALIDATE=$TOOLS/bin/k8svalidate
RENDERED=$TOOLS/rendered

export GOPATH=$TOOLS/go GOMODCACHE=$TOOLS/go/mod GOCACHE=$TOOLS/go/build GOBIN=$BIN
export GOFLAGS="-modcacherw -buildvcs=false" GOTOOLCHAIN=local CGO_ENABLED=0
export HELM_CACHE_HOME=$TOOLS/helm/cache HELM_CONFIG_HOME=$TOOLS/helm/config HELM_DATA_HOME=$TOOLS/helm/data
export PATH=$PATH:/usr/local/go/bin

failures=()
started=$(date +%s)
say() { printf '\n== %s\n' "$*"; }
fail() {
  failures+=("$1")
  printf 'FAILED: %s\n' "$1"
}
die() {
  printf 'check-k8s: %s\n' "$*" >&2
  exit 2
}

command -v go >/dev/null || die "go is required (install Go 1.26 or put it on PATH)"
command -v python3 >/dev/null || die "python3 is required"
mkdir -p "$BIN" "$TOOLS/bin"

# -- tools --------------------------------------------------------------------------------------
if ! go version -m "$HELM" 2>/dev/null | grep -q "helm.sh/helm/v3[[:space:]]*$HELM_VERSION"; then
  say "installing Helm $HELM_VERSION with go install (first run only)"
  go install "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" || die "go install helm failed"
fi

# Rebuild the validator only when its sources change.
stamp=$(cat tools/k8svalidate/go.mod tools/k8svalidate/go.sum tools/k8svalidate/*.go tools/k8svalidate/crds/*.json | sha256sum | cut -c1-16)
if [[ ! -x $VALIDATE || $(cat "$VALIDATE.stamp" 2>/dev/null) != "$stamp" ]]; then
  say "building and testing tools/k8svalidate"
  (cd tools/k8svalidate && go vet . && go test . && go build -trimpath -o "$VALIDATE" .) ||
    die "building tools/k8svalidate failed"
  echo "$stamp" >"$VALIDATE.stamp"
fi

# -- 1. lint and render -------------------------------------------------------------------------
rm -rf "$RENDERED" && mkdir -p "$RENDERED"
variants=(default)
for f in "$CHART"/ci/*.yaml; do variants+=("$f"); done

say "helm lint --strict and helm template ($((${#variants[@]})) variants, Kubernetes $KUBE_VERSION)"
rendered=()
for v in "${variants[@]}"; do
  args=()
  name=defaults
  if [[ $v != default ]]; then
    args=(-f "$v")
    name=$(basename "$v" .yaml)
  fi
  if ! out=$("$HELM" lint --strict --kube-version "$KUBE_VERSION" "$CHART" "${args[@]}" 2>&1); then
    printf '%s\n' "$out"
    fail "helm lint --strict ($name)"
  fi
  if "$HELM" template citaflow "$CHART" --namespace citaflow --kube-version "$KUBE_VERSION" "${args[@]}" \
    >"$RENDERED/$name.yaml" 2>"$RENDERED/$name.err"; then
    echo "rendered $name: $(grep -c '^kind:' "$RENDERED/$name.yaml") objects"
    rendered+=("$RENDERED/$name.yaml")
  else
    cat "$RENDERED/$name.err"
    fail "helm template ($name)"
  fi
done

# -- 2. the schema bites ------------------------------------------------------------------------
say "values.schema.json refuses unknown keys and wrong types"
for bad in "replicaCount=3" "ingestApi.replicaCount=two" "config.log.format=xml" "topics.requests.partitions=0"; do
  if "$HELM" template citaflow "$CHART" --kube-version "$KUBE_VERSION" --set "$bad" >/dev/null 2>&1; then
    fail "values.schema.json accepts --set $bad"
  else
    echo "refused: --set $bad"
  fi
done

# -- 3. Kubernetes API types --------------------------------------------------------------------
say "k8svalidate: rendered chart variants and k8s/"
"$VALIDATE" "${rendered[@]}" k8s || fail "k8svalidate"

# -- 4. configuration contract ------------------------------------------------------------------
say "settings contract: CITAFLOW__ variables vs the services' Settings (citaflow settings check)"
python3 -c 'import yaml' 2>/dev/null || {
  python3 -m pip install -q --disable-pip-version-check --target "$TOOLS/python" pyyaml || die "pip install pyyaml failed"
  export PYTHONPATH=$TOOLS/python${PYTHONPATH:+:$PYTHONPATH}
}
CITAFLOW=(cargo run -q -p citaflow-cli --)
contract() { # manifests... -> the check's exit status
  python3 scripts/chart_containers.py "$@" >"$TOOLS/containers.json" &&
    "${CITAFLOW[@]}" settings check --containers "$TOOLS/containers.json"
}
contract "${rendered[@]}" || fail "settings contract"
for bad in "CITAFLOW__HTTP__PROT=8080" "CITAFLOW__API__MAX_WAIT_SECS=soon"; do
  "$HELM" template citaflow "$CHART" --kube-version "$KUBE_VERSION" \
    --set "ingestApi.extraEnvVars[0].name=${bad%%=*}" --set-string "ingestApi.extraEnvVars[0].value=${bad#*=}" \
    >"$TOOLS/bad.yaml" || fail "helm template with $bad"
  if contract "$TOOLS/bad.yaml" >"$TOOLS/bad.out"; then
    fail "the settings contract accepts $bad"
  else
    echo "refused: $bad ($(grep -m1 "${bad%%=*}" "$TOOLS/bad.out" | sed 's/.*container [^:]*: //'))"
  fi
done

# -- 5. values documentation --------------------------------------------------------------------
say "values.yaml documentation (## @param) and README parameters table"
"$VALIDATE" values-doc "$CHART/values.yaml" "$CHART/README.md" || fail "values documentation"

echo
if ((${#failures[@]})); then
  printf 'check-k8s: FAILED (%ss): %s\n' "$(($(date +%s) - started))" "$(IFS=';'; echo "${failures[*]}")"
  exit 1
fi
printf 'check-k8s: all checks passed (%ss)\n' "$(($(date +%s) - started))"
