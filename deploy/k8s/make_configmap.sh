#!/usr/bin/env bash
# Print a ConfigMap holding the files of one flat folder (default: the test types in config/), for the
# LocustTest in locusttest.community.yaml. Needs only kubectl, no cluster, until you apply it:
#   deploy/k8s/make_configmap.sh | kubectl apply -f -                                  # chatswarm-config
#   deploy/k8s/make_configmap.sh chatswarm-prompts datasets/mine | kubectl apply -f -  # your prompts
# A ConfigMap is one flat folder of at most about 1 MB, which is why the suite itself (users/, plugins/,
# shapes/) travels in the image and only config files and prompts travel this way. It is not for secrets:
# accounts and .env files are refused (use a Secret).
set -euo pipefail

name="${1:-chatswarm-config}"
folder="${2:-$(cd "$(dirname "$0")/../.." && pwd)/config}"
max_bytes=1000000

fail() {
    echo "chatswarm: error: $*" >&2
    exit 2
}

[ -d "$folder" ] || fail "$folder: no such folder"
subfolder="$(find "$folder" -mindepth 1 -maxdepth 1 -type d -print -quit)"
[ -z "$subfolder" ] || fail "$folder has a subfolder ($subfolder): a ConfigMap holds one flat folder"
secret="$(find "$folder" -maxdepth 1 -type f \( -iname '*accounts*.csv' -o -name '.env*' \) -print -quit)"
[ -z "$secret" ] || fail "$secret holds credentials: put it in a Secret, not a ConfigMap"
bytes="$(find "$folder" -maxdepth 1 -type f -exec cat {} + | wc -c)"
[ "$bytes" -le "$max_bytes" ] || fail "$folder holds $bytes bytes: a ConfigMap holds at most about 1 MB"
command -v kubectl > /dev/null || fail "kubectl not found: install it to make the ConfigMap"

exec kubectl create configmap "$name" --from-file="$folder" --dry-run=client -o yaml
