"""The realtime socket, `/rt`."""

from __future__ import annotations

from fastapi import APIRouter, WebSocket

from api.services import Services

router = APIRouter(tags=["realtime"])


@router.websocket("/rt")
async def realtime(socket: WebSocket) -> None:
    """Subscribe to instances; receive each state they commit (JSON text frames)."""
    services: Services = socket.app.state.services
    await socket.accept()
    caller = await services.realtime.caller(socket.query_params)
    await services.realtime.connection(socket, caller).serve()
