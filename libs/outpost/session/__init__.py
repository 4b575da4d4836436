"""The agent session core: I/O-free state machines for both ends of a collector session.

Transports (gRPC streams, WebSocket, TCP frames) decode bytes, feed envelopes here with
the current time, send what `data_to_send()` returns, arm a timer for `next_deadline()`,
and close when `closed` is true. Nothing in this package does I/O or reads a clock.
"""
