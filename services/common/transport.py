"""Where a gRPC service listens and how its bytes cross into a Nitro Enclave: TCP, a Unix socket or vsock.

Addresses (one syntax for the services' bind setting and for the bridge)::

    HOST:PORT or tcp:HOST:PORT   a TCP socket
    unix:/PATH                   a Unix stream socket
    vsock:CID:PORT               AF_VSOCK; CID "any" (VMADDR_CID_ANY) to listen, 3 = the parent instance,
                                 the enclave's CID (nitro-cli run-enclave --enclave-cid) from the parent
    file:/PATH                   bridge target only: each connection receives the file's bytes, then EOF

**The seam.** A service binds ``grpc_listen_target(bind_host, port, service)``: with
``TEEPROVER_BIND_HOST=unix:/run/teeprover`` the prover listens on ``unix:/run/teeprover/prover.sock``
and the attestor on ``.../attestor.sock``; otherwise on ``HOST:PORT`` as before.  Nothing else in
a service knows which wire it is on.

**Why a bridge and not gRPC's own vsock.**  gRPC core has a ``vsock:CID:PORT`` scheme, but the
grpcio wheels on PyPI are built without it: ``add_insecure_port("vsock:...")`` fails with
"VSOCK is not supported" (checked with grpcio 1.85; tests/deploy/test_transport.py keeps checking).
Envoy has no vsock upstream either.  So each side of the enclave boundary runs :func:`serve_bridge`,
a byte relay written here (asyncio streams; about 100 lines, no package does exactly this): in the
enclave ``vsock:any:50051 -> unix:/run/teeprover/prover.sock``, on the parent
``tcp:0.0.0.0:50051 -> vsock:16:50051``.  It copies bytes both ways and passes half-closes on, so
HTTP/2 runs through unchanged.  Run it with ``python -m services.common.transport bridge ROUTE...``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("teeprover.transport")

CHUNK = 64 * 1024
MAX_FETCH_BYTES = 1 << 20  # `fetch` carries small files (the API-key hashes), never more than this
CONNECT_TIMEOUT_S = 5.0
VMADDR_CID_ANY = 0xFFFFFFFF


@dataclass(frozen=True)
class Address:
    scheme: str  # "tcp" | "unix" | "vsock" | "file"
    host: str = ""  # tcp host
    port: int = 0  # tcp / vsock port
    path: str = ""  # unix socket or file path
    cid: int = 0  # vsock context id

    def __str__(self) -> str:
        if self.scheme == "tcp":
            return f"tcp:{self.host}:{self.port}"
        if self.scheme == "vsock":
            return f"vsock:{'any' if self.cid == VMADDR_CID_ANY else self.cid}:{self.port}"
        return f"{self.scheme}:{self.path}"


def _port(text: str, spec: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise ValueError(f"{spec!r}: port must be a number 0..65535")
    return int(text)


def parse(spec: str) -> Address:
    """Parse one address; a ValueError names what is wrong with it."""
    scheme, sep, rest = spec.partition(":")
    if scheme in ("unix", "file"):
        if not rest.startswith("/"):
            raise ValueError(f"{spec!r}: {scheme}: needs an absolute path")
        return Address(scheme, path=rest)
    if scheme == "vsock":
        cid_text, sep2, port_text = rest.partition(":")
        if not sep2:
            raise ValueError(f"{spec!r}: expected vsock:CID:PORT")
        if cid_text == "any":
            cid = VMADDR_CID_ANY
        elif cid_text.isdigit() and int(cid_text) < VMADDR_CID_ANY:
            cid = int(cid_text)
        else:
            raise ValueError(f"{spec!r}: vsock CID must be a number or 'any'")
        return Address("vsock", cid=cid, port=_port(port_text, spec))
    if scheme == "tcp":
        spec_tcp = rest
    else:
        spec_tcp = spec
    host, sep3, port_text = spec_tcp.rpartition(":")
    host = host.strip("[]")
    if not sep3 or not host or not sep:
        raise ValueError(f"{spec!r}: expected HOST:PORT, tcp:HOST:PORT, unix:/PATH, vsock:CID:PORT or file:/PATH")
    return Address("tcp", host=host, port=_port(port_text, spec))


def grpc_listen_target(bind_host: str, port: int, service: str) -> str:
    """The address a gRPC server of ``service`` binds for the configured ``bind_host``."""
    if bind_host.startswith("unix:"):
        directory = parse(bind_host).path
        return f"unix:{directory.rstrip('/')}/{service}.sock"
    if bind_host.startswith("vsock:"):
        raise ValueError(f"TEEPROVER_BIND_HOST={bind_host!r}: grpcio cannot listen on vsock; listen on "
                         "unix:/DIR and bridge vsock to it (python -m services.common.transport bridge)")
    return f"{bind_host}:{port}"


def metrics_host(bind_host: str) -> str:
    """Prometheus' HTTP server speaks TCP only: with a Unix-socket bind it stays on loopback (bridged out)."""
    return "127.0.0.1" if bind_host.startswith("unix:") else bind_host


def _family_and_address(addr: Address) -> tuple[int, Any]:
    if addr.scheme == "unix":
        return socket.AF_UNIX, addr.path
    if addr.scheme == "vsock":
        return socket.AF_VSOCK, (addr.cid, addr.port)
    infos = socket.getaddrinfo(addr.host, addr.port, type=socket.SOCK_STREAM)
    family, _, _, _, sockaddr = infos[0]
    return family, sockaddr


def listen_socket(addr: Address) -> socket.socket:
    """A bound, listening, non-blocking stream socket for ``addr`` (a stale Unix socket file is replaced)."""
    if addr.scheme == "file":
        raise ValueError(f"{addr}: a file can only be a bridge target")
    family, sockaddr = _family_and_address(addr)
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        if family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_UNIX:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(addr.path)
        sock.bind(sockaddr)
        sock.listen(128)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


async def open_stream(addr: Address, timeout: float = CONNECT_TIMEOUT_S) -> tuple[asyncio.StreamReader,
                                                                                  asyncio.StreamWriter]:
    family, sockaddr = _family_and_address(addr)
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        await asyncio.wait_for(asyncio.get_running_loop().sock_connect(sock, sockaddr), timeout)
    except BaseException:
        sock.close()
        raise
    return await asyncio.open_connection(sock=sock, limit=CHUNK)


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy until EOF, then pass the half-close on (HTTP/2 and grpc need the other direction to stay open)."""
    try:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        writer.transport.abort()


async def _relay(target: Address, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
    try:
        if target.scheme == "file":
            body = Path(target.path).read_bytes()
            if len(body) > MAX_FETCH_BYTES:  # fetch would refuse it: send nothing rather than a cut file
                log.error("bridge: %s is over %d bytes, not served", target, MAX_FETCH_BYTES)
                return
            client_writer.write(body)
            await client_writer.drain()
            return
        try:
            upstream_reader, upstream_writer = await open_stream(target)
        except (TimeoutError, OSError) as exc:
            # Closing at once (never holding the client) is what lets the caller fail over quickly.
            log.warning("bridge: cannot reach %s: %s", target, exc)
            return
        try:
            await asyncio.gather(_pump(client_reader, upstream_writer), _pump(upstream_reader, client_writer))
        finally:
            upstream_writer.close()
    except OSError as exc:
        log.warning("bridge to %s: %s", target, exc)
    finally:
        client_writer.close()


def parse_route(route: str) -> tuple[Address, Address]:
    """``LISTEN=TARGET`` (e.g. ``vsock:any:50051=unix:/run/teeprover/prover.sock``)."""
    listen, sep, target = route.partition("=")
    if not sep:
        raise ValueError(f"{route!r}: expected LISTEN=TARGET")
    return parse(listen), parse(target)


async def serve_bridge(routes: Sequence[tuple[Address, Address]], stop: asyncio.Event) -> None:
    """Relay every connection accepted on each listen address to its target, until ``stop`` is set."""
    servers = []
    try:
        for listen, target in routes:
            async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                             target: Address = target) -> None:
                await _relay(target, reader, writer)

            servers.append(await asyncio.start_server(handle, sock=listen_socket(listen), limit=CHUNK))
            log.info("bridge %s -> %s", listen, target)
        await stop.wait()
    finally:
        for server in servers:
            server.close()
        for server in servers:
            await server.wait_closed()


async def fetch(addr: Address, timeout: float = CONNECT_TIMEOUT_S) -> bytes:
    """Read what a ``file:`` bridge route serves (bounded by MAX_FETCH_BYTES)."""
    reader, writer = await open_stream(addr, timeout)
    try:
        body = b""
        while chunk := await asyncio.wait_for(reader.read(CHUNK), timeout):
            body += chunk
            if len(body) > MAX_FETCH_BYTES:
                raise ValueError(f"{addr}: more than {MAX_FETCH_BYTES} bytes")
        if not body:
            raise ValueError(f"{addr} served nothing (the file is missing, empty or too large on the other side)")
        return body
    finally:
        writer.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.common.transport", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    bridge = sub.add_parser("bridge", help="relay LISTEN=TARGET routes until SIGTERM")
    bridge.add_argument("routes", nargs="+", metavar="LISTEN=TARGET")
    get = sub.add_parser("fetch", help="copy what a file: route serves into OUT")
    get.add_argument("address")
    get.add_argument("out", type=Path)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        if args.command == "fetch":
            body = asyncio.run(fetch(parse(args.address)))
            tmp = args.out.with_name(args.out.name + ".tmp")
            tmp.write_bytes(body)
            tmp.replace(args.out)
            return 0
        routes = [parse_route(r) for r in args.routes]
    except (TimeoutError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await serve_bridge(routes, stop)

    try:
        asyncio.run(run())
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
