"""`ListSessions` pages a replica's live sessions by session id, with the shared tokens."""

from __future__ import annotations

import pytest

from outpost import errors
from outpost.gateway.v1 import gateway_pb2
from services.gateway.api.gateway_servicer import GatewayServicer
from services.gateway.sessions.hub import LiveSession, SessionHub


def live(n: int) -> LiveSession:
    return LiveSession(
        session_id=f"s-{n:03d}",
        instance_uid=f"uid-{n:03d}",
        name=f"edge-{n}",
        zone="dmz",
        transport="grpc",
        remote_address="127.0.0.1:40000",
        opened_at=1.0,
        deliver=lambda _message: None,
    )


async def test_sessions_page_by_id_and_a_session_opened_meanwhile_is_seen_once_or_not_at_all() -> None:
    hub = SessionHub()
    for n in range(0, 250, 2):
        hub.attach(live(n))
    servicer = GatewayServicer("gw-1", hub, [], 0.0)
    seen: list[str] = []
    token = ""
    while True:
        reply = await servicer.ListSessions(gateway_pb2.ListSessionsRequest(page_size=40, page_token=token), None)  # type: ignore[arg-type]
        seen += [s.session_id for s in reply.sessions]
        token = reply.next_page_token
        if not token:
            break
        hub.attach(live(len(seen) * 2 + 1))  # opened behind the reader's position
        hub.attach(live(1))  # ahead of it after the first page
    originals = [f"s-{n:03d}" for n in range(0, 250, 2)]
    assert [s for s in seen if s in originals] == originals
    assert len(seen) == len(set(seen))
    assert "s-001" not in seen

    default = await servicer.ListSessions(gateway_pb2.ListSessionsRequest(), None)  # type: ignore[arg-type]
    assert len(default.sessions) == 100 and default.next_page_token


async def test_a_garbled_session_token_is_refused() -> None:
    servicer = GatewayServicer("gw-1", SessionHub(), [], 0.0)
    with pytest.raises(errors.InvalidArgument, match="page token is not valid"):
        await servicer.ListSessions(gateway_pb2.ListSessionsRequest(page_token="nope!"), None)  # type: ignore[arg-type]
