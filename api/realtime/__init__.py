"""The `/rt` WebSocket at the edge: the protocol's messages (`protocol.py`), one connection's
subscriptions and sending (`connection.py`, `outbox.py`). What carries committed states to
every process is the runtime's (`runtime/realtime/`)."""
