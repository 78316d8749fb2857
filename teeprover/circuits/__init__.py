"""Circuits that ship with the package.

``demo/``: the demo circuits whose keys ``teeprover serve all`` sets up on its first start
(services/supervisor/devsetup.py), under the key locations in :data:`DEMO_CIRCUITS`.
``midnight/``: Midnight's built-in circuits, pinned in teeprover/builtin_keys.py.
"""

from __future__ import annotations

import functools
from importlib import resources

DEMO_CIRCUITS: dict[str, str] = {  # key location -> file under teeprover/circuits/
    "builtin/demo/arithmetic": "demo/arithmetic.zkir.json",
    "builtin/demo/range": "demo/range.zkir.json",
}


def demo_circuit(location: str) -> bytes:
    """The packaged ZKIR of the demo circuit served under ``location``."""
    return (resources.files(__name__) / DEMO_CIRCUITS[location]).read_bytes()


@functools.cache
def demo_circuit_ks() -> dict[str, int]:
    """Key location -> the k of each demo circuit (compiled once; a few milliseconds)."""
    from teeprover import zkir

    return {location: zkir.circuit_k(zkir.load_circuit(demo_circuit(location))) for location in DEMO_CIRCUITS}


def demo_params_k() -> tuple[int, str]:
    """The largest k among the demo circuits and the circuit that needs it: the first start's development
    parameters must reach that k, or setting up that circuit's keys fails."""
    ks = demo_circuit_ks()
    location = max(ks, key=lambda loc: ks[loc])
    return ks[location], location
