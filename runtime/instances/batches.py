"""Several events for one instance in one step: who is answered with what.

Each event of a batch is its own transition; the runtime reports, per event run, how many
macrosteps it committed or why it failed (`StepResult.outcomes`), and the last event run owns
the macrosteps after the others' (services it started settle after it). A caller is answered
with the state after its event's last commit, or with the state before it if its event changed
nothing (an unhandled event into a final state), or with its event's own error. Events the step
did not run (an earlier one left a service running) get `None`: they wait for the next step.
"""

from __future__ import annotations

from collections.abc import Sequence

from runtime.instances.commits import StepCommits
from runtime.results import Delivery, EventOutcome, InstanceState, StepResult

Answer = InstanceState | Exception | None


def answers(deliveries: Sequence[Delivery], result: StepResult,
            commits: StepCommits) -> list[Answer]:
    outcomes = result.outcomes or [EventOutcome(steps=len(result.macrosteps))]
    out: list[Answer] = []
    done = 0
    for n, outcome in enumerate(outcomes):
        if outcome.error is not None:
            out.append(outcome.error)
            continue
        last = n == len(outcomes) - 1
        done = len(result.macrosteps) if last else done + outcome.steps
        out.append(commits.state(after=done))
    return out + [None] * (len(deliveries) - len(outcomes))
