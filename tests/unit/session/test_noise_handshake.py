"""The sealed-session handshakes: IK when the server key is pinned, XX on first contact.

Each refusal is the typed `SealedSessionError` with the cause a transport logs and the
`DisconnectReason` it sends; nothing is accepted that a peer without the right keys made.
"""

from __future__ import annotations

import os

import pytest

from outpost.agent.v1 import agent_pb2
from outpost.session.errors import LocalProtocolError
from outpost.session.handshake import fingerprint
from outpost.session.noise import CloseCause, Initiator, Pattern, SealedSessionError
from outpost.session.noise.handshake import MAX_HANDSHAKE_FRAME_BYTES, PROTOCOL_NAMES, noise_connection, prologue
from tests.unit.session.noise_pair import ACCESS_KEY_ID, KeyPair, World, channels, run_handshake

R = agent_pb2.DisconnectReason


def impersonate(initiator: Initiator, claimed_public: bytes) -> Initiator:
    """Make `initiator` send `claimed_public` as its static key while computing with its own private key:
    what an attacker who knows a collector's public key (but not its private key) can do."""
    state = initiator._connection.noise_protocol.handshake_state  # type: ignore[union-attr]
    state.s.public_bytes = claimed_public
    return initiator


def test_pinned_ik_handshake_delivers_payloads_and_proves_both_static_keys():
    world = World()
    collector, gateway = world.initiator(), world.responder()

    first = collector.write_message(b"capabilities")
    assert first[0] == Pattern.IK
    assert gateway.read_message(first) == b"capabilities"
    assert gateway.pattern is Pattern.IK
    assert gateway.access_key_id == ACCESS_KEY_ID
    assert gateway.remote_static == world.collector.public
    assert not gateway.complete

    assert collector.read_message(gateway.write_message(b"welcome")) == b"welcome"
    assert collector.complete and gateway.complete

    mine, theirs = collector.channel(0.0), gateway.channel(0.0)
    assert mine.handshake_hash == theirs.handshake_hash
    assert mine.remote_static == world.server.public
    assert theirs.remote_static == world.collector.public
    # IK message 2 needs the PSK, the server key and the collector's fresh ephemeral: the
    # collector is sure at once; the gateway only after the collector's first record.
    assert mine.peer_confirmed and not theirs.peer_confirmed
    [record] = mine.seal(b"hello envelope", now=0.0)
    assert theirs.open(record) == b"hello envelope"
    assert theirs.peer_confirmed


def test_first_contact_xx_learns_the_server_key_which_is_pinned_after_confirmation_and_ik_works_next():
    world = World()
    collector, gateway = world.initiator(pinned=False), world.responder()
    assert collector.pattern is Pattern.XX

    gateway.read_message(collector.write_message())
    collector.read_message(gateway.write_message())
    assert not collector.complete
    assert collector.remote_static == world.server.public  # learned, not yet proven
    gateway.read_message(collector.write_message(b"hello in message 3"))
    assert gateway.complete and gateway.remote_static == world.collector.public

    mine, theirs = collector.channel(0.0), gateway.channel(0.0)
    assert theirs.peer_confirmed  # message 3 proved the collector key, the PSK and freshness
    assert not mine.peer_confirmed  # the server has not shown the PSK yet: do not pin
    [record] = theirs.seal(b"welcome", now=0.0)
    assert mine.open(record) == b"welcome"
    assert mine.peer_confirmed
    pinned = mine.remote_static
    assert fingerprint(pinned) == fingerprint(world.server.public)

    again = world.initiator(server_static=pinned)
    assert again.pattern is Pattern.IK
    run_handshake(again, world.responder())


def test_first_contact_with_a_gateway_that_lacks_the_access_key_never_gets_pinned():
    world = World()
    rogue = World(collector=world.collector, access_keys={ACCESS_KEY_ID: os.urandom(32)})  # its own key, a guessed PSK
    collector, impostor = world.initiator(pinned=False), rogue.responder()

    impostor.read_message(collector.write_message())
    collector.read_message(impostor.write_message())  # anyone can answer message 2 ...
    message3 = collector.write_message()
    with pytest.raises(SealedSessionError) as refused:
        impostor.read_message(message3)  # ... but cannot read message 3 without the PSK
    assert refused.value.cause is CloseCause.HANDSHAKE_FAILED

    mine = collector.channel(0.0)
    assert not mine.peer_confirmed
    with pytest.raises(SealedSessionError) as forged:
        mine.open(os.urandom(40))  # whatever it sends next cannot open: nothing to pin
    assert forged.value.cause is CloseCause.HANDSHAKE_FAILED
    assert not mine.peer_confirmed


def test_a_relaying_gateway_with_another_static_key_is_refused_by_the_collector():
    world = World()
    rogue_key = KeyPair.generate()
    collector = world.initiator()
    first = collector.write_message()

    # The rogue knows the access key but not the pinned server's private key: it cannot read message 1 ...
    impostor = world.responder(static_private=rogue_key.private)
    with pytest.raises(SealedSessionError) as unreadable:
        impostor.read_message(first)
    assert unreadable.value.cause is CloseCause.HANDSHAKE_FAILED

    # ... and the best message 2 it can make (a handshake with its own key) fails at the collector.
    other = World(collector=world.collector, server=rogue_key, psk=world.psk)
    decoy = other.initiator()
    rogue_gateway = other.responder()
    rogue_gateway.read_message(decoy.write_message())
    with pytest.raises(SealedSessionError) as refused:
        collector.read_message(rogue_gateway.write_message())
    assert refused.value.cause is CloseCause.HANDSHAKE_FAILED
    assert refused.value.reason == R.DISCONNECT_REASON_AUTHENTICATION_FAILED
    assert fingerprint(world.server.public) in refused.value.message


def test_wrong_access_key_secret_fails_at_the_collector_in_ik():
    world = World()
    collector = world.initiator(psk=os.urandom(32))  # right id, wrong secret
    gateway = world.responder()
    gateway.read_message(collector.write_message())  # the PSK goes into message 2, not 1
    with pytest.raises(SealedSessionError) as refused:
        collector.read_message(gateway.write_message())
    assert refused.value.cause is CloseCause.HANDSHAKE_FAILED
    assert ACCESS_KEY_ID in refused.value.message
    # The gateway learns it from the missing key confirmation: whatever comes first does not open.
    theirs = gateway.channel(0.0)
    with pytest.raises(SealedSessionError) as unconfirmed:
        theirs.open(os.urandom(64))
    assert unconfirmed.value.cause is CloseCause.HANDSHAKE_FAILED


def test_wrong_access_key_secret_fails_at_the_gateway_in_xx():
    world = World()
    collector, gateway = world.initiator(pinned=False, psk=os.urandom(32)), world.responder()
    gateway.read_message(collector.write_message())
    collector.read_message(gateway.write_message())
    with pytest.raises(SealedSessionError) as refused:
        gateway.read_message(collector.write_message())
    assert refused.value.cause is CloseCause.HANDSHAKE_FAILED


@pytest.mark.parametrize("pinned", [True, False], ids=["ik", "xx"])
def test_an_unknown_or_revoked_access_key_id_is_refused_before_message_2(pinned):
    world = World()
    asked: list[str] = []

    def lookup(key_id: str) -> bytes | None:
        asked.append(key_id)
        return None

    collector, gateway = world.initiator(pinned=pinned), world.responder(psk_for=lookup)
    with pytest.raises(SealedSessionError) as refused:
        gateway.read_message(collector.write_message())
    assert refused.value.cause is CloseCause.UNKNOWN_ACCESS_KEY
    assert refused.value.reason == R.DISCONNECT_REASON_ACCESS_KEY_REFUSED
    assert asked == [ACCESS_KEY_ID]
    with pytest.raises(LocalProtocolError):
        gateway.write_message()


@pytest.mark.parametrize("pinned", [True, False], ids=["ik", "xx"])
def test_a_collector_without_the_private_half_of_the_key_it_sends_is_refused(pinned):
    world = World()
    victim = KeyPair.generate()
    collector, gateway = impersonate(world.initiator(pinned=pinned), victim.public), world.responder()
    if pinned:
        with pytest.raises(SealedSessionError) as refused:
            gateway.read_message(collector.write_message())  # ss does not match
    else:
        gateway.read_message(collector.write_message())
        collector.read_message(gateway.write_message())
        collector._connection.noise_protocol.handshake_state.s.public_bytes = victim.public  # type: ignore[union-attr]
        with pytest.raises(SealedSessionError) as refused:
            gateway.read_message(collector.write_message())  # se does not match
    assert refused.value.cause is CloseCause.HANDSHAKE_FAILED
    assert gateway.remote_static != world.collector.public or not gateway.complete


def test_the_gateway_reports_the_proven_collector_key_so_an_unexpected_one_can_be_refused():
    world, stranger = World(), World()
    stranger_initiator = World(collector=stranger.collector, server=world.server, psk=world.psk).initiator()
    gateway = world.responder()
    run_handshake(stranger_initiator, gateway)
    assert gateway.remote_static == stranger.collector.public != world.collector.public


def test_a_gateway_that_admits_only_pinned_collectors_refuses_first_contact():
    world = World()
    with pytest.raises(SealedSessionError) as refused:
        world.responder(allow_first_contact=False).read_message(world.initiator(pinned=False).write_message())
    assert refused.value.cause is CloseCause.FIRST_CONTACT_REFUSED


def test_a_handshake_moved_to_another_transport_fails():
    world = World()
    with pytest.raises(SealedSessionError) as refused:
        world.responder(transport="websocket").read_message(world.initiator(transport="tcp").write_message())
    assert refused.value.cause is CloseCause.HANDSHAKE_FAILED


def test_an_altered_message_2_is_refused():
    world = World()
    collector, gateway = world.initiator(), world.responder()
    gateway.read_message(collector.write_message())
    message = bytearray(gateway.write_message())
    message[-1] ^= 0x01
    with pytest.raises(SealedSessionError) as refused:
        collector.read_message(bytes(message))
    assert refused.value.cause is CloseCause.HANDSHAKE_FAILED


def _xx_first_with_key_id(raw: bytes) -> bytes:
    """A well-formed XX message 1 whose payload is `raw` instead of an encoded key id."""
    connection = noise_connection(
        PROTOCOL_NAMES[Pattern.XX],
        initiator=True,
        prologue=prologue("tcp"),
        static_private=KeyPair.generate().private,
        psk=bytes(32),
    )
    return bytes([Pattern.XX]) + bytes(connection.write_message(raw))


@pytest.mark.parametrize(
    "frame",
    [
        b"",
        b"\x07" + bytes(100),
        b"\x01" + bytes(20),
        b"\x01" + bytes(MAX_HANDSHAKE_FRAME_BYTES),
        _xx_first_with_key_id(b"\x00x"),
        _xx_first_with_key_id(b""),
        _xx_first_with_key_id(b"\x05ab"),
        _xx_first_with_key_id(b"\x02a\x00"),
    ],
    ids=[
        "empty",
        "unknown-pattern",
        "short",
        "oversized",
        "empty-key-id",
        "no-key-id",
        "cut-key-id",
        "unprintable-key-id",
    ],
)
def test_malformed_first_frames_are_refused_with_a_clear_cause(frame):
    world = World()
    gateway = world.responder()
    with pytest.raises(SealedSessionError) as refused:
        gateway.read_message(frame)
    assert refused.value.cause is CloseCause.MALFORMED_HANDSHAKE
    assert refused.value.reason == R.DISCONNECT_REASON_MALFORMED_FRAME
    with pytest.raises(LocalProtocolError):
        gateway.read_message(frame)


def test_every_handshake_has_fresh_session_keys():
    world = World()
    first, second = channels(world), channels(world)
    assert first[0].handshake_hash != second[0].handshake_hash
    assert first[0].seal(b"same", now=0.0) != second[0].seal(b"same", now=0.0)


def test_misuse_by_our_own_code_is_a_local_protocol_error():
    world = World()
    collector, gateway = world.initiator(), world.responder()
    with pytest.raises(LocalProtocolError):
        collector.read_message(b"x" * 60)  # message 1 is the collector's to write
    with pytest.raises(LocalProtocolError):
        gateway.write_message()  # nothing read yet
    with pytest.raises(LocalProtocolError):
        collector.channel(0.0)  # not complete
    first = collector.write_message()
    with pytest.raises(LocalProtocolError):
        collector.write_message()  # message 2 is the gateway's
    gateway.read_message(first)
    collector.read_message(gateway.write_message())
    with pytest.raises(LocalProtocolError):
        collector.write_message()  # complete
    with pytest.raises(LocalProtocolError):
        world.initiator(access_key_id="")
    with pytest.raises(LocalProtocolError):
        world.initiator(psk=b"short")
    with pytest.raises(LocalProtocolError):
        world.initiator(transport="carrier-pigeon")
