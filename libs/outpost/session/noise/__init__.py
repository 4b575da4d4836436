"""Sealed sessions: the Noise handshake and record layer under the agent protocol (ADR 0019).

I/O-free, like the rest of `outpost.session`: a transport feeds whole frames and `now`,
and gets back frames to send, envelopes received, or a `SealedSessionError` whose `cause`
and `reason` say why to close. `handshake` has the initiator (collector) and responder
(gateway); `channel` the transport object both end up with.
"""

from outpost.session.noise.channel import RekeyPolicy, SealedChannel
from outpost.session.noise.errors import CloseCause, SealedSessionError
from outpost.session.noise.handshake import Initiator, Pattern, Responder, prologue

__all__ = [
    "CloseCause",
    "Initiator",
    "Pattern",
    "RekeyPolicy",
    "Responder",
    "SealedChannel",
    "SealedSessionError",
    "prologue",
]
