"""The session core passes an accepted collector's KeyRotation on, and answers it (ADR 0024)."""

from __future__ import annotations

import pytest

from outpost.agent.v1 import agent_pb2
from outpost.session.server import KeyRotationReceived, ServerState
from tests.unit.server_driver import NOW, R, S, drive_to

ROTATION = agent_pb2.KeyRotation(new_public_key=b"\x02" * 32, signature=b"s" * 64, new_key_signature=b"n" * 64)


@pytest.mark.parametrize("state", [S.PENDING, S.ENABLED, S.DISABLED])
def test_an_accepted_session_hands_the_rotation_on_and_goes_on_after_the_answer(state: ServerState) -> None:
    driven = drive_to(state)
    driven.feed(NOW + 1, key_rotation=ROTATION)
    assert driven.session.events_received() == [KeyRotationReceived(ROTATION)]
    result = agent_pb2.KeyRotationResult(accepted=True, fingerprint="SHA256:x")
    assert driven.session.rotate(agent_pb2.Rotation(key_rotation=result))
    sent = driven.session.data_to_send()
    assert [m.rotation.key_rotation for m in sent] == [result]
    assert driven.session.state is state


@pytest.mark.parametrize("state", [S.AWAIT_HELLO, S.AWAIT_PROOF, S.AUTHENTICATING])
def test_a_rotation_before_acceptance_is_a_protocol_error(state: ServerState) -> None:
    driven = drive_to(state)
    driven.feed(NOW + 1, key_rotation=ROTATION)
    assert driven.session.state is S.CLOSED
    closed = [m.disconnect for m in driven.session.data_to_send() if m.HasField("disconnect")]
    assert closed[0].reason == R.DISCONNECT_REASON_PROTOCOL_ERROR
