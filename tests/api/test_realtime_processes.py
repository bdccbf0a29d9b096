"""Real time across server processes on one database (SQLite file, PostgreSQL): a subscriber
on one process sees every state another process commits, in order, each once."""

from __future__ import annotations

from contextlib import ExitStack

import pytest

from api.bootstrap import init, open_database
from api.settings import Settings
from api.tokens import mint
from tests.conftest import TEST_SECRET
from tests.support.bundles import CHATTY
from tests.support.client import Api
from tests.support.realtime import Realtime, state_of
from tests.support.server import run_server_processes

ALICE = {"sub": "alice"}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("servers", "workers"),
    [pytest.param(2, 1, id="two-servers"), pytest.param(1, 2, id="one-server-two-workers")],
)
def test_a_subscriber_sees_every_state_committed_by_another_process(
    database_url: str, servers: int, workers: int
) -> None:
    settings = Settings(database_url=database_url, secret=TEST_SECRET)
    db = open_database(settings)
    admin = init(settings, db)
    db.dispose()
    env = {"BACKSTATE_SECRET": TEST_SECRET, "BACKSTATE_WORKERS": str(workers)}
    with ExitStack() as stack:
        urls = stack.enter_context(run_server_processes(servers, database_url, env=env))
        # One client per process (one server of two workers deals connections to its workers
        # in turn: the clients' connections to one each, the socket's to the first again).
        clients = [stack.enter_context(Api.for_key(urls[n % servers], admin.key_id,
                                                   admin.secret, act=ALICE)) for n in range(2)]
        clients[0].create_machine("chatty", CHATTY)
        clients[1].create_instance("chatty", "i1")
        token = mint(admin.key_id, admin.secret, act=ALICE)
        rt = stack.enter_context(Realtime(urls[0], token))
        rt.subscribe("chatty", "i1")
        assert rt.update()["state"] == "idle"

        # several in a row on the other process (a burst, then a step of three states), then
        # alternating between the processes: each state once, in order, as HTTP answered
        other = clients[1]
        answers = [_send(other, "inc") for _ in range(5)] + [_send(other, "relay")]
        answers += [_send(clients[n % 2], "inc") for n in range(6)]
        updates = [state_of(rt.update()) for _ in range(len(answers) + 2)]
        relayed = [u["state"] for u in updates[5:8]]
        assert relayed == ["relay1", "relay2", "idle"]
        assert [u["publicContext"]["count"] for u in updates] == [
            1, 2, 3, 4, 5, 5, 5, 5, 6, 7, 8, 9, 10, 11]
        assert updates[:5] == answers[:5] and updates[7:] == answers[5:]
        stamps = [u["ts"] for u in updates]
        assert stamps == sorted(set(stamps))
        # and nothing more: the next frame is the next state
        sentinel = _send(other, "inc")
        assert state_of(rt.update()) == sentinel


def _send(api: Api, event: str) -> dict[str, object]:
    response = api.send("chatty", "i1", event)
    assert response.status_code == 200, response.text
    answer: dict[str, object] = response.json()
    return answer
