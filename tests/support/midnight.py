"""Midnight's own packages from npm, as the oracle for hashes, curve points, preimages and ``check``.

``@midnight-ntwrk/onchain-runtime-v2`` (hash and curve functions), ``@midnight-ntwrk/zkir-v2``
(``check``, ``jsonIrToBinary``) and ``@midnight-ntwrk/ledger-v8`` (real wallet transactions) are
installed by the tests into a cache folder, like snarkjs (:mod:`tests.support.npm`).  One long-lived
node process answers calls as JSON lines, so hypothesis can ask hundreds of questions cheaply.

Values cross the pipe as JSON with two wrappers: ``{"$big": "123"}`` for a JS ``bigint`` (Python
:class:`Big`, answers come back as ``int``) and ``{"$bytes": "00ff"}`` for a ``Uint8Array``
(Python ``bytes`` both ways).  A plain Python ``int`` is a JS number.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.npm import REPO, npm_available

CACHE = Path(os.environ.get("TEEPROVER_MIDNIGHT_NPM_CACHE", REPO / ".cache" / "npm-midnight"))
PACKAGES = ("@midnight-ntwrk/onchain-runtime-v2@2.0.1", "@midnight-ntwrk/zkir-v2@2.1.0",
            "@midnight-ntwrk/ledger-v8@8.1.0")
_MODULES = {"onchain": "@midnight-ntwrk/onchain-runtime-v2", "zkir": "@midnight-ntwrk/zkir-v2",
            "ledger": "@midnight-ntwrk/ledger-v8"}

# The node side: decode the wrappers, run the body with the three modules in scope, encode the answer.
_SERVER_JS = r"""
import readline from 'node:readline';
const mods = {};
%IMPORTS%
const dec = (v) => {
  if (Array.isArray(v)) return v.map(dec);
  if (v && typeof v === 'object') {
    if ('$big' in v) return BigInt(v['$big']);
    if ('$bytes' in v) return Uint8Array.from(Buffer.from(v['$bytes'], 'hex'));
    const o = {}; for (const [k, x] of Object.entries(v)) o[k] = dec(x); return o;
  }
  return v;
};
const enc = (v) => {
  if (typeof v === 'bigint') return {'$big': v.toString()};
  if (v instanceof Uint8Array) return {'$bytes': Buffer.from(v).toString('hex')};
  if (Array.isArray(v)) return v.map(enc);
  if (v instanceof Map) return Array.from(v.entries()).map(enc);
  if (v && typeof v === 'object') { const o = {}; for (const [k, x] of Object.entries(v)) o[k] = enc(x); return o; }
  return v === undefined ? null : v;
};
const rl = readline.createInterface({input: process.stdin});
for await (const line of rl) {
  let out;
  try {
    const req = JSON.parse(line);
    const fn = new Function('onchain', 'zkir', 'ledger', 'args', req.body);
    out = {ok: enc(await fn(mods.onchain, mods.zkir, mods.ledger, dec(req.args)))};
  } catch (e) {
    out = {error: String(e && e.message !== undefined ? e.message : e)};
  }
  process.stdout.write(JSON.stringify(out) + '\n');
}
"""


@dataclass(frozen=True)
class Big:
    """A Python integer to be passed as a JS ``bigint``."""

    value: int


class MidnightError(Exception):
    """The JS side threw; the message is Midnight's."""


def ensure_installed() -> Path:
    """Install the pinned Midnight packages into the cache once; return the cache folder."""
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        stamp = CACHE / ".installed"
        if not (stamp.exists() and stamp.read_text() == " ".join(PACKAGES)):
            subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--prefix", str(CACHE), *PACKAGES],
                           check=True, stdout=subprocess.DEVNULL, timeout=600)
            stamp.write_text(" ".join(PACKAGES))
    imports = "\n".join(f"mods.{name} = await import('{pkg}');" for name, pkg in _MODULES.items())
    (CACHE / "oracle.mjs").write_text(_SERVER_JS.replace("%IMPORTS%", imports))
    return CACHE


def _encode(v: Any) -> Any:
    if isinstance(v, Big):
        return {"$big": str(v.value)}
    if isinstance(v, bytes | bytearray):
        return {"$bytes": bytes(v).hex()}
    if isinstance(v, list | tuple):
        return [_encode(x) for x in v]
    if isinstance(v, dict):
        return {k: _encode(x) for k, x in v.items()}
    return v


def _decode(v: Any) -> Any:
    if isinstance(v, list):
        return [_decode(x) for x in v]
    if isinstance(v, dict):
        if "$big" in v:
            return int(v["$big"])
        if "$bytes" in v:
            return bytes.fromhex(v["$bytes"])
        return {k: _decode(x) for k, x in v.items()}
    return v


class MidnightOracle:
    """One node process running Midnight's packages; :meth:`run` is thread-safe and bounded in time."""

    def __init__(self, timeout: float = 120.0) -> None:
        folder = ensure_installed()
        self._timeout = timeout
        self._lock = threading.Lock()
        self._proc = subprocess.Popen(["node", str(folder / "oracle.mjs")], cwd=folder, stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)

    def run(self, body: str, *args: Any) -> Any:
        """Run the JS function ``body`` (with ``onchain``, ``zkir``, ``ledger`` and ``args`` in scope)."""
        line = json.dumps({"body": body, "args": _encode(list(args))})
        with self._lock:
            assert self._proc.stdin is not None and self._proc.stdout is not None
            self._proc.stdin.write(line + "\n")
            self._proc.stdin.flush()
            timer = threading.Timer(self._timeout, self._proc.kill)
            timer.start()
            try:
                answer = self._proc.stdout.readline()
            finally:
                timer.cancel()
        if not answer:
            raise RuntimeError("the Midnight oracle process died (or timed out)")
        reply = json.loads(answer)
        if "error" in reply:
            raise MidnightError(reply["error"])
        return _decode(reply["ok"])

    def call(self, module: str, function: str, *args: Any) -> Any:
        """``module.function(...args)`` with ``module`` one of ``onchain``, ``zkir``, ``ledger``."""
        return self.run(f"return {module}.{function}(...args);", *args)

    def close(self) -> None:
        if self._proc.poll() is None:
            assert self._proc.stdin is not None
            self._proc.stdin.close()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        if self._proc.stdout is not None:
            self._proc.stdout.close()


_SHARED: MidnightOracle | None = None
_SHARED_LOCK = threading.Lock()


def shared_oracle() -> MidnightOracle:
    """One oracle per test process (closed at exit by the ``midnight`` fixture's session teardown)."""
    global _SHARED
    with _SHARED_LOCK:
        if _SHARED is None:
            _SHARED = MidnightOracle()
        return _SHARED


__all__ = ["Big", "MidnightError", "MidnightOracle", "npm_available", "shared_oracle"]
