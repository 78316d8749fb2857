"""The load plan: the specification's three scenarios, scaled to a 2-core machine (see docs/loadtest.md).

A scenario is a list of stages ``(seconds, requests per second)``.  Locust is a closed-loop
tool: each simulated user sends one request every ``USER_PERIOD_S`` seconds at a phase of its
own (``Wallet.wait_time`` in the locustfile), so a stage at ``rps`` runs ``rps * USER_PERIOD_S``
users, and arrivals are spread evenly from the first second of a stage (a step, without a
burst of every new user at once).  The rate holds while replies come back within the period;
a user whose reply takes longer falls behind, which is how a saturated server shows up (the
report gives the rate actually reached).
"""

from __future__ import annotations

from dataclasses import dataclass

USER_PERIOD_S = 10.0  # seconds between one user's requests: 10 users per request per second
SPAWN_PER_S = 1000.0  # users started per second at a stage change (a spike is a step, not a ramp)
CLIENT_TIMEOUT_S = 120.0  # a reply later than this is a hang (job timeout 60 s + queue)

# The request mix: 80 % cheap public routes, 20 % circuit work on k = 10..14.
WEIGHTS = {"health": 20, "ready": 20, "version": 20, "attestation": 20, "check": 7, "k": 6, "prove": 7}


@dataclass(frozen=True)
class Scenario:
    name: str
    stages: tuple[tuple[float, float], ...]  # (seconds, requests per second)

    @property
    def duration(self) -> float:
        return sum(s for s, _ in self.stages)

    def users_at(self, t: float) -> int | None:
        """Users wanted ``t`` seconds into the run; None once the scenario is over."""
        for seconds, rps in self.stages:
            if t < seconds:
                return max(1, round(rps * USER_PERIOD_S))
            t -= seconds
        return None

    def describe(self) -> str:
        return ", then ".join(f"{rps:g} rps for {s:g} s" for s, rps in self.stages)


FULL = {
    "sustained": Scenario("sustained", ((300, 10),)),
    "spike": Scenario("spike", ((30, 1), (60, 50), (30, 1))),
    "stress": Scenario("stress", ((60, 100),)),
}
QUICK = {  # the same shapes, short: to try the tool and for the tests
    "sustained": Scenario("sustained", ((20, 10),)),
    "spike": Scenario("spike", ((5, 1), (10, 50), (5, 1))),
    "stress": Scenario("stress", ((10, 100),)),
}


def get(name: str, quick: bool = False) -> Scenario:
    table = QUICK if quick else FULL
    if name not in table:
        raise ValueError(f"unknown scenario {name!r}; known: {', '.join(table)}")
    return table[name]
