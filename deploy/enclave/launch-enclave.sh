#!/bin/bash
# Parent side of the aws-nitro overlay: start the enclave, stay up while it runs, and on SIGTERM
# let running proofs finish before terminating it (the pod is already out of Envoy's endpoints:
# preStop). Progress is read from the prover's metrics, bridged to 127.0.0.1:9100 in this pod.
set -euo pipefail
EIF=${EIF:-/opt/teeprover/teeprover.eif}
CID=${ENCLAVE_CID:-16}
DRAIN_SECONDS=${DRAIN_SECONDS:-600}

nitro-cli run-enclave --eif-path "$EIF" --enclave-cid "$CID" \
  --cpu-count "${ENCLAVE_CPUS:-4}" --memory "${ENCLAVE_MEMORY_MIB:-8192}"
enclave_id=$(nitro-cli describe-enclaves | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["EnclaveID"])')

# shellcheck disable=SC2329  # busy and drain run from the TERM/INT trap
busy() {  # jobs queued or running in the enclave's prover
  curl -fsS --max-time 2 http://127.0.0.1:9100/metrics \
    | awk '/^teeprover_prover_(queue_size|active_workers) /{n+=$2} END{print n+0}'
}

# shellcheck disable=SC2329
drain() {
  local deadline=$((SECONDS + DRAIN_SECONDS))
  while ((SECONDS < deadline)) && [[ $(busy || echo 0) != 0 ]]; do sleep 2; done
  nitro-cli terminate-enclave --enclave-id "$enclave_id"
  exit 0
}
trap drain TERM INT

while nitro-cli describe-enclaves | grep -q "\"$enclave_id\""; do sleep 5 & wait $!; done
echo "enclave $enclave_id stopped" >&2
exit 1
