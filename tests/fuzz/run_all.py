"""Long fuzz run of every target (``make fuzz``): ``python -m tests.fuzz.run_all [--examples N] [--target NAME]``.

Each target runs in its own child process with an address-space limit (so
"unbounded memory" shows up as a MemoryError failure instead of swapping the
machine) and a wall-clock budget.  Prints, per target, the number of inputs and
how they ended; exits 1 if any target found a bug (the child prints the
minimal failing input and its traceback).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import sys
import time
import traceback
from pathlib import Path
from typing import Any

MEMORY_LIMIT = 4 << 30  # bytes of address space per target process


def _child(name: str, examples: int, memory_limit: int, budget: float, queue: Any) -> None:
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        limit = memory_limit if hard == resource.RLIM_INFINITY else min(memory_limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
        from tests.fuzz import _harness, targets

        target = {t.name: t for t in targets.all_targets()}[name]
        outcome = _harness.Outcome(stop_at=time.monotonic() + budget)
        try:
            _harness.run(target, examples, outcome)
            queue.put(("ok", outcome.summary() + _keep_slowest(name, outcome)))
        except _harness.BudgetSpent:
            queue.put(("ok", outcome.summary() + _keep_slowest(name, outcome)
                       + f" [budget of {budget:.0f} s reached before {examples}]"))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent
        queue.put(("bug", f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"))


def _keep_slowest(name: str, outcome: Any) -> str:
    """Write the slowest input to build/fuzz-slowest/<target>.bin so that it can be replayed; its path."""
    out = Path(__file__).resolve().parents[2] / "build" / "fuzz-slowest" / f"{name}.bin"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(outcome.slowest_input)
    return f" (slowest input: {out.relative_to(out.parents[2])})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz.run_all", description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=10_000, help="generated inputs per target")
    parser.add_argument("--target", action="append", help="run only this target (repeatable)")
    parser.add_argument("--budget", type=float, default=3600.0,
                        help="seconds per target; a target that reaches it stops and reports its count")
    parser.add_argument("--memory", type=int, default=MEMORY_LIMIT, help="address-space limit per target (bytes)")
    parser.add_argument("--jobs", type=int, default=1, help="targets fuzzed in parallel (one process each)")
    parser.add_argument("--list", action="store_true", help="list the targets and exit")
    args = parser.parse_args(argv)

    from tests.fuzz import targets

    names = [t.name for t in targets.all_targets()]
    if args.list:
        print("\n".join(names))
        return 0
    unknown = sorted(set(args.target or ()) - set(names))
    if unknown:
        parser.error(f"unknown target(s) {unknown}; known: {', '.join(names)}")
    selected = [n for n in names if not args.target or n in args.target]
    skipped = [n for n in targets.TARGET_NAMES if n not in names]

    ctx = mp.get_context("spawn")
    failures = 0
    print(f"fuzzing {len(selected)} targets, {args.examples} inputs each, {args.jobs} at a time"
          + (f" (not available here: {', '.join(skipped)})" if skipped else ""), flush=True)
    pending = list(selected)
    running: dict[str, tuple[Any, Any, float]] = {}
    while pending or running:
        while pending and len(running) < args.jobs:
            name = pending.pop(0)
            queue = ctx.Queue()
            proc = ctx.Process(target=_child, args=(name, args.examples, args.memory, args.budget, queue))
            proc.start()
            running[name] = (proc, queue, time.monotonic())
        time.sleep(0.2)
        for name, (proc, queue, start) in list(running.items()):
            elapsed = time.monotonic() - start
            result = None
            if not queue.empty():
                result = queue.get()
                proc.join(30)
            elif not proc.is_alive():
                result = ("bug", f"the target process died (exit code {proc.exitcode}: out of memory or a crash)")
            elif elapsed > args.budget + 120:  # the child stops itself at the budget; this is a stuck process
                proc.kill()
                result = ("bug", f"did not stop within {args.budget + 120:.0f} s (a hang outside the watchdog?)")
            if result is None:
                continue
            proc.join(5)
            del running[name]
            status, text = result
            if status == "ok":
                print(f"  {name:24} ok   {elapsed:7.1f} s  {text}", flush=True)
            else:
                failures += 1
                print(f"  {name:24} BUG  {elapsed:7.1f} s  {text}", flush=True)
    print(f"fuzz: {len(selected) - failures} targets clean, {failures} with bugs")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
