"""The responder during a server key rotation (ADR 0024): IK for any accepted key, XX for the current one."""

from __future__ import annotations

import pytest

from outpost.session.noise import SealedSessionError
from outpost.session.noise.errors import CloseCause
from tests.unit.session.noise_pair import KeyPair, World, run_handshake


def test_an_ik_handshake_made_for_the_announced_or_the_retired_key_is_read_and_proves_that_key() -> None:
    world = World()
    other = KeyPair.generate()
    for pinned, current, extra in (
        (other, world.server, [other.private]),
        (world.server, other, [world.server.private]),
    ):
        initiator = world.initiator(server_static=pinned.public)
        responder = world.responder(static_private=current.private, other_static_privates=extra)
        run_handshake(initiator, responder)
        assert responder.static_private == pinned.private
        collector, gateway = initiator.channel(0.0), responder.channel(0.0)
        assert gateway.open(collector.seal(b"hello", 0.0)[0]) == b"hello"


def test_a_key_the_gateway_does_not_hold_fails_after_every_key_was_tried() -> None:
    world = World()
    stranger = KeyPair.generate()
    initiator = world.initiator(server_static=stranger.public)
    responder = world.responder(other_static_privates=[KeyPair.generate().private])
    with pytest.raises(SealedSessionError) as failed:
        responder.read_message(initiator.write_message(b""))
    assert failed.value.cause is CloseCause.HANDSHAKE_FAILED


def test_first_contact_always_learns_the_current_key() -> None:
    world = World()
    initiator = world.initiator(pinned=False)
    responder = world.responder(other_static_privates=[KeyPair.generate().private])
    run_handshake(initiator, responder)
    assert initiator.channel(0.0).remote_static == world.server.public
