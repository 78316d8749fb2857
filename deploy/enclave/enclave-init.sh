#!/bin/bash
# Init of the Nitro Enclave (deploy/enclave/Dockerfile): the enclave has no network, only vsock.
#   vsock:any:50051 -> prover   (unix:/run/teeprover/prover.sock)
#   vsock:any:50052 -> attestor (unix:/run/teeprover/attestor.sock)
#   vsock:any:9100/9102 -> their Prometheus endpoints on the enclave's loopback
# The API-key hashes come from the parent (vsock CID 3, port 50060): the operator owns the keys, so
# a parent that lies here can only lock out or let in its own callers, never read a witness.
set -euo pipefail
RUN=/run/teeprover
PARENT_CID=3

ip link set lo up
install -d -o 10001 -g 10001 -m 0750 "$RUN" "$RUN/cache"
chown 10001:10001 /dev/nsm
as_service() { setpriv --reuid=10001 --regid=10001 --clear-groups --no-new-privs "$@"; }

for _ in $(seq 1 60); do   # the parent's bridge may start after us
  if as_service python -m services.common.transport fetch "vsock:$PARENT_CID:50060" "$RUN/api_keys.sha256"; then
    break
  fi
  sleep 1
done
test -s "$RUN/api_keys.sha256" || { echo "no API-key hashes from the parent (vsock port 50060)" >&2; exit 1; }

as_service env TEEPROVER_METRICS_PORT=9100 teeprover serve prover &
as_service env TEEPROVER_METRICS_PORT=9102 teeprover serve attestor &
as_service python -m services.common.transport bridge \
  "vsock:any:50051=unix:$RUN/prover.sock" "vsock:any:50052=unix:$RUN/attestor.sock" \
  "vsock:any:9100=tcp:127.0.0.1:9100" "vsock:any:9102=tcp:127.0.0.1:9102" &
# Whichever stops first ends the enclave: the parent's launcher sees it gone and the pod restarts.
wait -n
exit 1
