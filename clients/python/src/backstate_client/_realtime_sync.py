"""The blocking client's `/rt` socket: one thread per client while it has subscriptions, which
connects, (re)subscribes, pings, reads and calls the subscribers, and reconnects when the
connection ends. Protocol and policy are `_realtime.py`'s."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from backstate_client._errors import ApiError
from backstate_client._options import Options
from backstate_client._realtime import (
    MAX_FRAME_BYTES,
    PING,
    OnError,
    OnState,
    Subscriptions,
    log,
    reconnect_delay,
    refused,
)
from backstate_client._subscription import Subscription


class _Session:
    """One run of the socket thread, from a first subscription to the last one's close."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.connection: ClientConnection | None = None
        self.thread: threading.Thread | None = None


class SyncRealtime:
    def __init__(
        self, options: Options, token: Callable[[], str], connect: Callable[..., Any] = connect
    ) -> None:
        self._options = options
        self._token = token
        self._connect = connect
        self._subscriptions = Subscriptions()
        # Guards the session and its connection together with the subscriptions, so that a
        # subscription made while a connection opens is sent exactly once (by one side).
        self._lock = threading.Lock()
        self._session: _Session | None = None

    def subscribe(
        self,
        machine_name: str,
        instance_name: str,
        on_state: OnState | None,
        on_error: OnError | None,
    ) -> Subscription:
        self._token()  # a token that cannot be had fails this call, not the thread
        subscription = Subscription(
            self._unsubscribe, machine_name, instance_name, on_state, on_error
        )
        with self._lock:
            frame = self._subscriptions.add(subscription.subscriber)
            if self._session is None:
                self._session = self._start()
            connection = self._session.connection
        if connection is not None:
            _send(connection, frame)
        return subscription

    def close(self) -> None:
        """Stop the thread and close the socket."""
        with self._lock:
            session, self._session = self._session, None
        if session is not None:
            self._stop(session)

    def _unsubscribe(self, subscription: Subscription) -> None:
        with self._lock:
            frame = self._subscriptions.remove(subscription.request_id)
            session = self._session
            last = not self._subscriptions
            if last:
                self._session = None
            connection = session.connection if session is not None else None
        if frame is not None and connection is not None:
            _send(connection, frame)
        if last and session is not None:
            self._stop(session)

    def _start(self) -> _Session:
        session = _Session()
        session.thread = threading.Thread(
            target=self._run, args=(session,), name="backstate-client-rt", daemon=True
        )
        session.thread.start()
        return session

    def _stop(self, session: _Session) -> None:
        with self._lock:
            session.stop.set()
            connection = session.connection
        if connection is not None:
            connection.close()
        if session.thread is not None and session.thread is not threading.current_thread():
            session.thread.join()

    def _run(self, session: _Session) -> None:
        failures, reported = 0, False
        while not session.stop.is_set():
            error: ApiError | None = None
            try:
                url = self._options.realtime_url(self._token())
                with self._connect(url, max_size=MAX_FRAME_BYTES) as connection:
                    fruitful = self._serve(session, connection)
                failures, reported = (0, False) if fruitful else (failures, reported)
            except InvalidStatus as exc:
                error = refused(exc.response.status_code, bytes(exc.response.body or b""))
            except ApiError as exc:  # no token
                error = exc
            except (OSError, InvalidHandshake, TimeoutError, httpx.HTTPError) as exc:
                log.info("realtime connection failed: %r", exc)
            except Exception:  # a bug must not end the subscriptions: log it, and go on
                log.exception("realtime connection failed")
            if error is not None and not reported and not session.stop.is_set():
                reported = True
                self._subscriptions.fail_all(error)
            failures += 1
            session.stop.wait(reconnect_delay(failures))

    def _serve(self, session: _Session, connection: ClientConnection) -> bool:
        """Use an open connection until it ends; whether it brought any frame."""
        with self._lock:
            if session.stop.is_set():
                return False
            session.connection = connection
            frames = self._subscriptions.subscribe_frames()
        received = False
        try:
            for frame in frames:
                connection.send(frame)
            interval = self._options.ws_ping_interval_s
            next_ping = time.monotonic() + interval
            while True:
                try:
                    text = connection.recv(timeout=max(0.0, next_ping - time.monotonic()))
                except TimeoutError:
                    connection.send(PING)
                    next_ping = time.monotonic() + interval
                    continue
                received = True
                self._subscriptions.receive(text)
        except ConnectionClosed:
            return received
        finally:
            with self._lock:
                session.connection = None


def _send(connection: ClientConnection, frame: str) -> None:
    """Send on a connection that may have just closed (the next one re-sends what matters)."""
    with contextlib.suppress(ConnectionClosed):
        connection.send(frame)
