"""Several events for one instance in one step (`Runtime.send_batch`): each its own transition,
each failing alone, an event that leaves a service running ending the batch."""

from __future__ import annotations

from typing import Any

import pytest

from runtime.engine import Runtime
from runtime.errors import MachineError, RejectedByAuthorizerError
from runtime.results import Delivery, Macrostep, StepResult
from tests.runtime.conftest import Recorder, bundle


def machine(fetch_url: str = "http://127.0.0.1:9/") -> str:
    return bundle("""{ id: "b", predictableActionArguments: true, initial: "idle",
      context: { n: 0, log: [] },
      states: {
        idle: { on: {
          INC: { actions: assign({ n: (c) => c.n + 1, log: (c, e) => [...c.log, e.tag] }) },
          BOOM: { actions: [() => { fetch("__URL__/boom", { method: "POST" }); },
                            () => { throw new Error("boom"); }] },
          WAIT: "waiting",
        } },
        waiting: { invoke: { src: () => fetch("__URL__/slow").then((r) => r.json()),
                             onDone: "idle" } },
      } }""".replace("__URL__", fetch_url),
        allow_write="({ type, event }) => type !== 'event' || event.tag !== 'nope'")


def run(rt: Runtime, source: str, events: list[dict[str, Any]],
        commits: list[list[Macrostep]] | None = None) -> StepResult:
    version = rt.compile(source)
    first = rt.create(version, instance_name="i", context=None, auth_context={},
                      on_commit=lambda m: None, instance_key="k")
    hook = commits.append if commits is not None else (lambda m: None)
    return rt.send_batch(version, instance_name="i", state_json=first.final.state_json,
                         deliveries=[Delivery(e, {}) for e in events], on_commit=hook,
                         instance_key="k", seq=len(first.macrosteps))


@pytest.fixture(params=["warm", "strict"])
def rt(request: pytest.FixtureRequest, runtime: Runtime, strict_runtime: Runtime) -> Runtime:
    return runtime if request.param == "warm" else strict_runtime


def test_each_event_is_its_own_transition_committed_together(rt: Runtime) -> None:
    commits: list[list[Macrostep]] = []
    result = run(rt, machine(), [{"type": "INC", "tag": t} for t in "abc"], commits)
    assert [m.context["log"] for m in result.macrosteps] == [["a"], ["a", "b"], ["a", "b", "c"]]
    assert [o.steps for o in result.outcomes] == [1, 1, 1]
    assert len(commits) == 1 and len(commits[0]) == 3   # one reply, one commit
    assert [m.last for m in result.macrosteps] == [False, False, True]


def test_an_event_that_throws_fails_alone_and_runs_no_effect(
        rt: Runtime, http_server: Recorder) -> None:
    events = [{"type": "INC", "tag": "a"}, {"type": "BOOM"}, {"type": "INC", "tag": "c"}]
    result = run(rt, machine(http_server.url), events)
    assert [m.context["log"] for m in result.macrosteps] == [["a"], ["a", "c"]]
    assert result.outcomes[0].steps == 1 and result.outcomes[2].steps == 1
    assert isinstance(result.outcomes[1].error, MachineError)
    assert "boom" in str(result.outcomes[1].error)
    assert http_server.requests == []   # the failed transition's fetch never left


def test_an_event_its_authorizer_refuses_fails_alone(rt: Runtime) -> None:
    events = [{"type": "INC", "tag": "a"}, {"type": "INC", "tag": "nope"},
              {"type": "INC", "tag": "c"}]
    result = run(rt, machine(), events)
    assert isinstance(result.outcomes[1].error, RejectedByAuthorizerError)
    assert result.final.context["log"] == ["a", "c"]


def test_an_event_that_starts_a_service_ends_the_batch(rt: Runtime, http_server: Recorder) -> None:
    http_server.body = b"{}"
    events = [{"type": "INC", "tag": "a"}, {"type": "WAIT"}, {"type": "INC", "tag": "c"}]
    result = run(rt, machine(http_server.url), events)
    assert len(result.outcomes) == 2   # "c" was not run: it waits for the next step
    assert [m.view.value for m in result.macrosteps] == ["idle", "waiting", "idle"]
    assert result.final.context["log"] == ["a"]
    assert [r["path"] for r in http_server.requests] == ["/slow"]


def test_the_first_event_failing_fails_the_step(rt: Runtime) -> None:
    with pytest.raises(RejectedByAuthorizerError):
        run(rt, machine(), [{"type": "INC", "tag": "nope"}, {"type": "INC", "tag": "b"}])
