"""outpostctl: the operator's command line for an Outpost control plane.

A thin gRPC client. Each service it talks to has a small `<peer>_client.py` around the
generated stub that adds the deadline and turns gRPC failures into `CommandError`s; the
command modules, one per command group (`collectors.py`, `credentials.py`,
`discoveries.py`, `schedules.py`, `jobs.py`, `devices.py`, `config.py`, `server.py`), only
parse options, call a client and hand plain records to `output.py`, which renders tables
for people and JSON for scripts. Parsing that needs no server lives beside them
(`scan_spec.py`, `secret_input.py`), so it is unit-tested without one.
"""

import os

# gRPC's C core logs handshake and connection failures straight to stderr; outpostctl
# reports each failure itself, once, as an `error:` line. Set GRPC_VERBOSITY to see them.
os.environ.setdefault("GRPC_VERBOSITY", "NONE")
