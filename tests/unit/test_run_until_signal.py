"""services.common.server.run_until_signal drains on SIGTERM whichever thread the kernel hands it to.

A process-directed signal may land on any thread that does not block it (gRPC starts many); Python
then runs the handler only when the main thread next runs bytecode.  The child below sends SIGTERM to
one of its own non-main threads: the server must still stop (with a main thread blocked in one untimed
wait it never did, and the test timed out)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

CHILD = textwrap.dedent("""
    import signal, threading, time
    from concurrent import futures

    import grpc
    from grpc_health.v1 import health

    from services.common.server import run_until_signal

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    server.add_insecure_port("127.0.0.1:0")
    drained = []

    def to_this_thread():
        time.sleep(0.3)  # run_until_signal is waiting by now
        signal.pthread_kill(threading.get_ident(), signal.SIGTERM)

    threading.Thread(target=to_this_thread, daemon=True).start()
    run_until_signal(server, health.HealthServicer(), grace=0, on_drain=drained.append)
    print("drained" if drained == [0] else "not drained", flush=True)
""")


def test_sigterm_received_by_another_thread_still_drains_and_stops() -> None:
    out = subprocess.run([sys.executable, "-c", CHILD], cwd=REPO, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "drained"
