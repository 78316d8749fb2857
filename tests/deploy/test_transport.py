"""The enclave transport seam (services/common/transport.py).

This machine has no vsock loopback (a connect to VMADDR_CID_LOCAL times out), so the vsock hop
between the parent and the enclave is stood in for by a Unix socket: the same two bridges carry the
same bytes, only the socket family of the middle hop differs.
"""

from __future__ import annotations

import asyncio
import os
import random
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.attestor import server as attestor_server
from services.common import config as cfgmod
from services.common import transport
from services.common.transport import Address, parse
from teeprover.v1 import attestor_pb2, attestor_pb2_grpc

REPO = Path(__file__).resolve().parents[2]


# ------------------------------------------------------------------------------------------ addresses
@pytest.mark.parametrize(("spec", "expected"), [
    ("127.0.0.1:50051", Address("tcp", host="127.0.0.1", port=50051)),
    ("tcp:0.0.0.0:9100", Address("tcp", host="0.0.0.0", port=9100)),
    ("[::1]:80", Address("tcp", host="::1", port=80)),
    ("unix:/run/teeprover/prover.sock", Address("unix", path="/run/teeprover/prover.sock")),
    ("vsock:16:50051", Address("vsock", cid=16, port=50051)),
    ("vsock:any:50051", Address("vsock", cid=transport.VMADDR_CID_ANY, port=50051)),
    ("file:/etc/teeprover/keys/api_keys.sha256", Address("file", path="/etc/teeprover/keys/api_keys.sha256")),
])
def test_parse_accepts_every_documented_form(spec: str, expected: Address) -> None:
    assert parse(spec) == expected


@pytest.mark.parametrize("spec", ["", "localhost", "unix:relative.sock", "vsock:16", "vsock:x:1", "vsock:-1:5",
                                  "tcp:host:99999", "host:port", ":50051", "file:etc/x"])
def test_parse_rejects_malformed_addresses_with_a_value_error(spec: str) -> None:
    with pytest.raises(ValueError, match=repr(spec).strip("'") if spec else "expected"):
        parse(spec)


def test_services_bind_a_socket_per_service_under_a_unix_bind_host() -> None:
    assert transport.grpc_listen_target("unix:/run/teeprover", 50051, "prover") == "unix:/run/teeprover/prover.sock"
    assert transport.grpc_listen_target("0.0.0.0", 50051, "prover") == "0.0.0.0:50051"
    assert transport.metrics_host("unix:/run/teeprover") == "127.0.0.1"
    assert transport.metrics_host("0.0.0.0") == "0.0.0.0"
    with pytest.raises(ValueError, match="bridge vsock"):
        transport.grpc_listen_target("vsock:any", 50051, "prover")


def test_grpcio_still_lacks_vsock_so_the_bridge_is_needed() -> None:
    """If a grpcio upgrade brings gRPC core's vsock scheme, the bridge inside the enclave can go."""
    from concurrent import futures

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    with pytest.raises(RuntimeError, match="Failed to bind"):
        server.add_insecure_port("vsock:4294967295:50999")


# ------------------------------------------------------------------------------------------- bridges
class Bridge:
    """serve_bridge on its own event loop thread (the way the enclave and the parent each run it)."""

    def __init__(self, *routes: str) -> None:
        self._routes = [transport.parse_route(r) for r in routes]
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            self._loop.call_soon(self._ready.set)
            await transport.serve_bridge(self._routes, self._stop)

        try:
            asyncio.run(main())
        except BaseException as exc:  # surfaced by start()
            self._error = exc
            self._ready.set()

    def start(self) -> Bridge:
        self._thread.start()
        assert self._ready.wait(10)
        time.sleep(0.1)  # listeners bound (start_server runs before stop.wait)
        if self._error is not None:
            raise self._error
        return self

    def close(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture()
def rundir() -> Iterator[Path]:
    # Unix socket paths are limited to 107 bytes: pytest's tmp_path can be longer.
    import tempfile

    with tempfile.TemporaryDirectory(prefix="tp-", dir="/tmp") as d:
        yield Path(d)


def test_grpc_crosses_parent_and_enclave_bridges_to_a_unix_socket_service(rundir: Path) -> None:
    """Envoy's side (TCP) -> parent bridge -> [vsock stand-in] -> enclave bridge -> attestor on unix:."""
    config = cfgmod.AttestorConfig(bind_host=f"unix:{rundir}", platform="simulated", metrics_port=0)
    server, _, _, core = attestor_server.create(config)
    server.start()
    port = _free_port()
    hop = rundir / "vsock-standin.sock"
    enclave = Bridge(f"unix:{hop}=unix:{rundir}/attestor.sock").start()
    parent = Bridge(f"tcp:127.0.0.1:{port}=unix:{hop}").start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            health = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service="teeprover.v1.Attestor"), timeout=10)
            assert health.status == health_pb2.HealthCheckResponse.SERVING
            nonce = os.urandom(32).hex()
            reply = attestor_pb2_grpc.AttestorStub(channel).GetAttestation(
                attestor_pb2.AttestationRequest(nonce=nonce), timeout=30)
            assert reply.platform == "simulated" and reply.nonce == nonce and len(reply.attestation) > 100
            # Concurrent streams on one HTTP/2 connection through both relays: each gets its own nonce back.
            nonces = [os.urandom(8).hex() for _ in range(8)]
            stub = attestor_pb2_grpc.AttestorStub(channel)
            futures = [stub.GetAttestation.future(attestor_pb2.AttestationRequest(nonce=n), timeout=30) for n in nonces]
            assert [f.result().nonce for f in futures] == nonces
    finally:
        parent.close()
        enclave.close()
        server.stop(0)
        core.close()


def _echo_server(path: Path) -> socket.socket:
    """Echo everything, then half-close back after the client's EOF (what a relay must pass through)."""
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(path))
    listener.listen()

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            while data := conn.recv(65536):
                conn.sendall(data)
            conn.shutdown(socket.SHUT_WR)

    threading.Thread(target=serve, daemon=True).start()
    return listener


def test_bridge_carries_every_byte_both_ways_and_passes_half_close_on(rundir: Path) -> None:
    listener = _echo_server(rundir / "echo.sock")
    bridge = Bridge(f"unix:{rundir}/in.sock=unix:{rundir}/echo.sock").start()
    payload = os.urandom(3 * 1024 * 1024 + 17)
    try:
        with socket.socket(socket.AF_UNIX) as client:
            client.settimeout(20)
            client.connect(str(rundir / "in.sock"))
            received = bytearray()

            def reader() -> None:
                while data := client.recv(65536):
                    received.extend(data)

            t = threading.Thread(target=reader)
            t.start()
            client.sendall(payload)
            client.shutdown(socket.SHUT_WR)  # our EOF reaches the echo server, its EOF comes back
            t.join(30)
            assert not t.is_alive()
            assert bytes(received) == payload
    finally:
        bridge.close()
        listener.close()


def test_unreachable_target_closes_the_client_at_once(rundir: Path) -> None:
    """A dead enclave must not hold Envoy's connection open: EOF comes back, no hang."""
    bridge = Bridge(f"unix:{rundir}/in.sock=unix:{rundir}/nobody.sock").start()
    try:
        with socket.socket(socket.AF_UNIX) as client:
            client.settimeout(5)
            client.connect(str(rundir / "in.sock"))
            client.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
            assert client.recv(100) == b""
    finally:
        bridge.close()


def test_file_route_serves_the_api_key_hashes_and_fetch_writes_them(rundir: Path) -> None:
    keys = rundir / "api_keys.sha256"
    keys.write_text("a" * 64 + "\n" + "b" * 64 + "\n")
    bridge = Bridge(f"unix:{rundir}/keys.sock=file:{keys}").start()
    try:
        out = rundir / "fetched"
        done = subprocess.run([sys.executable, "-m", "services.common.transport", "fetch", f"unix:{rundir}/keys.sock",
                               str(out)], cwd=REPO, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert out.read_bytes() == keys.read_bytes()
        missing = subprocess.run([sys.executable, "-m", "services.common.transport", "fetch",
                                  f"unix:{rundir}/absent.sock", str(out)], cwd=REPO, capture_output=True, text=True,
                                 timeout=60)
        assert missing.returncode == 2 and "error:" in missing.stderr
        keys.write_bytes(b"0" * (transport.MAX_FETCH_BYTES + 1))  # never served cut short
        too_big = subprocess.run([sys.executable, "-m", "services.common.transport", "fetch",
                                  f"unix:{rundir}/keys.sock", str(out)], cwd=REPO, capture_output=True, text=True,
                                 timeout=60)
        assert too_big.returncode == 2 and "served nothing" in too_big.stderr
        assert out.read_bytes() == b"a" * 64 + b"\n" + b"b" * 64 + b"\n"  # the earlier copy is left as it was
    finally:
        bridge.close()


def test_bridge_command_refuses_a_bad_route_with_exit_2() -> None:
    done = subprocess.run([sys.executable, "-m", "services.common.transport", "bridge", "vsock:any:1"],
                          cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "LISTEN=TARGET" in done.stderr


def test_bridge_listens_on_vsock_where_the_kernel_has_it() -> None:
    """Listening needs only the vsock module (present here); connecting needs a peer VM, which this machine lacks."""
    try:
        probe = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
    except (AttributeError, OSError) as exc:
        pytest.skip(f"no AF_VSOCK on this kernel: {exc}")
    probe.close()
    port = random.randint(40000, 60000)  # vsock has no "port 0 = pick one" for bind
    sock = transport.listen_socket(parse(f"vsock:any:{port}"))
    try:
        assert sock.getsockname() == (transport.VMADDR_CID_ANY, port)
    finally:
        sock.close()


@pytest.mark.parametrize(("cls", "bind_host", "message"), [
    (cfgmod.AttestorConfig, "unix:relative", "absolute path"),
    (cfgmod.ProverConfig, "vsock:any", "bridge vsock"),
    (cfgmod.GatewayConfig, "unix:/run/teeprover", "Envoy's listeners are TCP"),
    (cfgmod.SupervisorConfig, "unix:/run/teeprover", "Envoy's listeners are TCP"),
])
def test_a_bind_host_the_services_cannot_use_is_a_config_error(cls: type, bind_host: str, message: str) -> None:
    with pytest.raises(cfgmod.ConfigError, match=message):
        cfgmod.load(cls, {"TEEPROVER_BIND_HOST": bind_host})


def test_unix_bind_host_loads_for_the_enclave_services() -> None:
    for cls in (cfgmod.ProverConfig, cfgmod.AttestorConfig):
        assert cfgmod.load(cls, {"TEEPROVER_BIND_HOST": "unix:/run/teeprover"}).bind_host == "unix:/run/teeprover"
