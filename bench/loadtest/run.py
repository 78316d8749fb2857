"""``make loadtest``: ``python -m bench.loadtest [--scenario NAME ...] [--quick] [--out DIR]``.

1. Makes (once, in ``.cache/loadtest``) development parameters up to k = 14 and the keys of
   the five chain circuits (k = 10..14).
2. Starts the real stack (``teeprover serve all``: Envoy and the three Python services) on
   loopback with that cache, two workers, a bounded queue and the per-IP rate limit raised
   (every Locust user shares 127.0.0.1, so the production limit would only measure Envoy's 429).
3. Runs each scenario as its own ``locust --headless`` process (``locustfile.py``) while a
   thread samples the resident memory of every process of the stack.
4. Writes ``loadtest.json`` (everything), ``loadtest.md`` (the tables) and
   ``loadtest-latency.png`` (latency over time) into ``--out`` (``bench/results``).

Exit status 1 when any scenario lost or got a wrong reply.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import httpx

from bench.loadtest import circuits, scenarios
from tests.support.ops import parents
from tests.support.stack import REPO, Stack, running_stack

CACHE = REPO / ".cache" / "loadtest"
LOCUSTFILE = Path(__file__).with_name("locustfile.py")
STACK_ENV = {
    "TEEPROVER_NUM_WORKERS": "2",
    "TEEPROVER_JOB_CAPACITY": "16",  # past 16 queued jobs: 503 + Retry-After (the stress scenario's refusals)
    "TEEPROVER_JOB_TIMEOUT": "60",
    "TEEPROVER_RATE_LIMIT_RPS": "10000",
    "TEEPROVER_RATE_LIMIT_BURST": "20000",
    "TEEPROVER_DEV_PARAMS_MAX_K": str(max(circuits.K_RANGE)),
    "TEEPROVER_LOG_LEVEL": "WARNING",
}


# ------------------------------------------------------------------------------------ memory


def _status(pid: int) -> dict[str, int]:
    out = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                out[name] = int(value.split()[0]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return out


def _tree(pid: int) -> dict[int, int]:
    """pid → parent pid for ``pid`` and all its descendants (from /proc)."""
    table = parents()
    found, todo = {pid: 0}, [pid]
    while todo:
        p = todo.pop()
        for child, parent in table.items():
            if parent == p and child not in found:
                found[child] = p
                todo.append(child)
    return found


def _role(pid: int, parent_role: str | None) -> str:
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return "gone"
    for module, role in (("services.prover.server", "prover"), ("services.attestor.server", "attestor"),
                         ("services.params.server", "params"), ("services.gateway.server", "gateway (python)"),
                         ("teeprover.cli serve", "supervisor")):
        if module in cmd:
            return role
    if "envoy" in cmd.split(" ", 1)[0]:
        return "envoy"
    if parent_role == "prover forkserver":
        return "prover worker"  # forked by the pool's forkserver (and so showing its command line)
    if "multiprocessing.forkserver" in cmd:
        return f"{parent_role} forkserver"
    if "multiprocessing.resource_tracker" in cmd:
        return f"{parent_role} resource tracker"
    return f"{parent_role} child" if parent_role else "other"


class MemorySampler(threading.Thread):
    """Peak resident memory per role (the largest sample of VmRSS, and the kernel's VmHWM of each pid)."""

    def __init__(self, root: int, every: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.root, self.every = root, every
        self.stopped = threading.Event()
        self.peak: dict[str, int] = defaultdict(int)
        self.hwm: dict[int, tuple[str, int]] = {}
        self.roles: dict[int, str] = {}

    def run(self) -> None:
        while not self.stopped.wait(self.every):
            tree = _tree(self.root)
            for pid in sorted(tree):  # parents have lower pids in practice; fall back on "other" otherwise
                if pid not in self.roles:
                    self.roles[pid] = _role(pid, self.roles.get(tree[pid]))
                status = _status(pid)
                if status:
                    role = self.roles[pid]
                    self.peak[role] = max(self.peak[role], status.get("VmRSS", 0))
                    self.hwm[pid] = (role, status.get("VmHWM", 0))

    def result(self) -> dict[str, dict[str, float]]:
        hwm: dict[str, int] = defaultdict(int)
        for role, value in self.hwm.values():
            hwm[role] = max(hwm[role], value)
        return {role: {"peak_rss_mib": round(self.peak[role] / 2**20, 1), "vm_hwm_mib": round(hwm[role] / 2**20, 1)}
                for role in sorted(self.peak)}


# ------------------------------------------------------------------------------------ analysis


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 4)


def summarize(records: list[dict[str, Any]], duration: float) -> dict[str, Any]:
    def lat(rs: list[dict[str, Any]]) -> dict[str, Any]:
        values = [r["latency_s"] for r in rs]
        return {"n": len(values), "p50_s": pct(values, 0.5), "p95_s": pct(values, 0.95),
                "p99_s": pct(values, 0.99), "max_s": round(max(values), 4) if values else None}

    by_route: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        by_route[r["route"]].append(r)
    answered = [r for r in records if r["outcome"] != "lost"]
    return {
        "requests": len(records),
        "achieved_rps": round(len(records) / duration, 2) if duration else None,
        "status": dict(sorted(Counter(str(r["status"]) for r in records).items())),
        "outcomes": dict(Counter(r["outcome"] for r in records)),
        "lost": sum(r["outcome"] == "lost" for r in records),
        "wrong": sum(r["outcome"] == "wrong" for r in records),
        "proofs_verified": sum(bool(r.get("verified")) for r in records),
        "latency_all": lat(answered),
        "latency_ok_by_route": {route: lat([r for r in rs if r["outcome"] == "ok"])
                                for route, rs in sorted(by_route.items())},
        "prove_ok_by_k": {str(k): lat([r for r in by_route["/prove"] if r["k"] == k and r["outcome"] == "ok"])
                          for k in circuits.K_RANGE},
        "problems": [{k: r[k] for k in ("t", "route", "k", "status", "outcome", "note")}
                     for r in records if r["outcome"] in ("lost", "wrong")][:20],
    }


# ------------------------------------------------------------------------------------ running


def wait_idle(stack: Stack, timeout: float = 180) -> None:
    """Let the queue drain between scenarios so that one does not start with the last one's backlog."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = httpx.get(stack.url + "/ready", timeout=10).json()
        if body.get("queue_size") == 0 and body.get("active_workers") == 0:
            return
        time.sleep(0.5)
    raise RuntimeError("the prover did not become idle between scenarios")


def run_scenario(stack: Stack, scenario: scenarios.Scenario, out: Path, quick: bool) -> dict[str, Any]:
    records_file = out / f"loadtest-{scenario.name}.jsonl"
    records_file.unlink(missing_ok=True)
    env = {**os.environ, "LOADTEST_SCENARIO": scenario.name, "LOADTEST_QUICK": "1" if quick else "0",
           "LOADTEST_CACHE": str(CACHE), "LOADTEST_API_KEY": stack.api_key or "",
           "LOADTEST_RECORDS": str(records_file), "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--host", stack.url,
           "--csv", str(out / f"loadtest-{scenario.name}"), "--only-summary", "--loglevel", "WARNING"]
    sampler = MemorySampler(stack.proc.pid)
    load_before = os.getloadavg()
    sampler.start()
    started = time.monotonic()
    print(f"[{scenario.name}] {scenario.describe()} ({round(scenario.duration)} s)", flush=True)
    with (out / f"loadtest-{scenario.name}.locust.log").open("w") as log:
        proc = subprocess.run(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                              timeout=scenario.duration + scenarios.CLIENT_TIMEOUT_S + 300)
    elapsed = time.monotonic() - started
    sampler.stopped.set()
    sampler.join(10)
    if not records_file.exists():
        raise RuntimeError(f"locust wrote no records (exit {proc.returncode}); see {log.name}")
    records = [json.loads(line) for line in records_file.read_text().splitlines()]
    summary = summarize(records, scenario.duration)
    summary.update(scenario=scenario.name, plan=scenario.describe(), wall_s=round(elapsed, 1),
                   date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), quick=quick,
                   locust_exit=proc.returncode, memory=sampler.result(),
                   load_average_before=[round(x, 2) for x in load_before],
                   load_average_after=[round(x, 2) for x in os.getloadavg()])
    (out / f"loadtest-{scenario.name}.summary.json").write_text(json.dumps(summary, indent=2))
    return summary


# ------------------------------------------------------------------------------------ report


def _ms(x: float | None) -> str:
    return "–" if x is None else f"{x * 1000:.0f}"


def markdown(results: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    lines = [f"Load test, {meta['date']} — {meta['cores']} cores, stack: {meta['stack']}", ""]
    lines += ["| scenario | plan | requests (rps reached) | status counts | p50 / p95 / p99 ms | lost | wrong "
              "| proofs verified |", "|---|---|---|---|---|---|---|---|"]
    for r in results:
        lat = r["latency_all"]
        status = ", ".join(f"{k}: {v}" for k, v in r["status"].items())
        lines.append(f"| {r['scenario']} | {r['plan']} | {r['requests']} ({r['achieved_rps']}) | {status} | "
                     f"{_ms(lat['p50_s'])} / {_ms(lat['p95_s'])} / {_ms(lat['p99_s'])} | {r['lost']} | {r['wrong']} "
                     f"| {r['proofs_verified']} |")
    for r in results:
        lines += ["", f"### {r['scenario']}: {r['plan']}", "",
                  f"Run {r['date']}{' (--quick)' if r['quick'] else ''}; load average (1, 5, 15 min) before / "
                  f"after: {r['load_average_before']} / {r['load_average_after']}.", "",
                  "| route | ok replies | p50 ms | p95 ms | p99 ms | max ms |", "|---|---|---|---|---|---|"]
        for route, lat in r["latency_ok_by_route"].items():
            lines.append(f"| {route} | {lat['n']} | {_ms(lat['p50_s'])} | {_ms(lat['p95_s'])} | {_ms(lat['p99_s'])} "
                         f"| {_ms(lat['max_s'])} |")
        for k, lat in r["prove_ok_by_k"].items():
            lines.append(f"| /prove k={k} | {lat['n']} | {_ms(lat['p50_s'])} | {_ms(lat['p95_s'])} "
                         f"| {_ms(lat['p99_s'])} | {_ms(lat['max_s'])} |")
        lines += ["", "| process | peak RSS MiB (sampled) | VmHWM MiB |", "|---|---|---|"]
        lines += [f"| {role} | {m['peak_rss_mib']} | {m['vm_hwm_mib']} |" for role, m in r["memory"].items()]
        if r["problems"]:
            lines += ["", "Lost or wrong replies (first 20):", ""]
            lines += [f"- t={p['t']:.1f} s {p['route']} k={p['k']} status {p['status']}: {p['outcome']} {p['note']}"
                      for p in r["problems"]]
    return "\n".join(lines) + "\n"


def plot(results: list[dict[str, Any]], out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = {"/health": "tab:green", "/ready": "tab:olive", "/version": "tab:cyan", "/attestation": "tab:blue",
               "/check": "tab:orange", "/k": "tab:purple", "/prove": "tab:red"}
    fig, axes = plt.subplots(len(results), 1, figsize=(11, 3.6 * len(results)), squeeze=False)
    for ax, r in zip(axes[:, 0], results, strict=True):
        records = [json.loads(line) for line in (out / f"loadtest-{r['scenario']}.jsonl").read_text().splitlines()]
        for route, colour in colours.items():
            ok = [x for x in records if x["route"] == route and x["outcome"] == "ok"]
            ax.scatter([x["t"] for x in ok], [x["latency_s"] for x in ok], s=4, c=colour, label=route, alpha=0.6)
        refused = [x for x in records if x["outcome"] == "refused"]
        bad = [x for x in records if x["outcome"] in ("lost", "wrong")]
        if refused:
            ax.scatter([x["t"] for x in refused], [x["latency_s"] for x in refused], s=10, c="grey", marker="x",
                       label="429/503/504 (refused)")
        if bad:
            ax.scatter([x["t"] for x in bad], [max(x["latency_s"], 1e-3) for x in bad], s=30, c="black",
                       marker="D", label="lost / wrong")
        ax.set_yscale("log")
        ax.set_ylabel("latency (s)")
        ax.set_title(f"{r['scenario']}: {r['plan']} — {r['requests']} requests, {r['lost']} lost, "
                     f"{r['wrong']} wrong")
        rate = ax.twinx()
        per_second = Counter(int(x["t"]) for x in records)
        seconds = range(int(max(per_second, default=0)) + 1)
        rate.plot(list(seconds), [per_second.get(s, 0) for s in seconds], c="black", lw=0.8, alpha=0.5)
        rate.set_ylabel("requests sent / s")
        ax.legend(loc="upper left", fontsize=7, ncol=4, markerscale=2)
    axes[-1, 0].set_xlabel("seconds since the scenario started")
    fig.tight_layout()
    path = out / "loadtest-latency.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.loadtest", description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", action="append", choices=sorted(scenarios.FULL),
                        help="run only this scenario (repeatable); default: sustained, spike, stress")
    parser.add_argument("--quick", action="store_true", help="short stages (seconds), to try the set-up")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    args = parser.parse_args(argv)
    names = args.scenario or ["sustained", "spike", "stress"]
    args.out.mkdir(parents=True, exist_ok=True)
    print("preparing parameters (k <= 14) and chain keys in", CACHE, flush=True)
    circuits.prepare(CACHE)
    with tempfile.TemporaryDirectory() as tmp, running_stack(Path(tmp), TEEPROVER_CACHE_DIR=str(CACHE),
                                                             **STACK_ENV) as stack:
        for name in names:
            wait_idle(stack)
            result = run_scenario(stack, scenarios.get(name, args.quick), args.out, args.quick)
            print(f"[{name}] {result['requests']} requests, status {result['status']}, lost {result['lost']}, "
                  f"wrong {result['wrong']}, proofs verified {result['proofs_verified']}", flush=True)
    # The report covers every scenario with results in --out, so scenarios may be run (or re-run) one at a time.
    results = [json.loads(f.read_text()) for name in scenarios.FULL
               if (f := args.out / f"loadtest-{name}.summary.json").exists()]
    meta = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cores": os.cpu_count(),
            "stack": ", ".join(f"{k.removeprefix('TEEPROVER_')}={v}" for k, v in STACK_ENV.items()),
            "user_period_s": scenarios.USER_PERIOD_S, "weights": scenarios.WEIGHTS}
    (args.out / "loadtest.json").write_text(json.dumps({"meta": meta, "scenarios": results}, indent=2))
    (args.out / "loadtest.md").write_text(markdown(results, meta))
    png = plot(results, args.out)
    print(markdown(results, meta))
    print(f"wrote {args.out / 'loadtest.md'}, {args.out / 'loadtest.json'}, {png}")
    return 1 if any(r["lost"] or r["wrong"] for r in results if r["scenario"] in names) else 0


if __name__ == "__main__":
    raise SystemExit(main())
