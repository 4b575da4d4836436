"""Real peers for tests, each on a loopback address of its own and stopped by pid.

One module per peer, each a `start_*` function returning a handle with `stop()`:

- `sshd`: OpenSSH's sshd with its own config, host key and authorized key in a temp dir
- `password_ssh`: an asyncssh server taking a password, running commands in a local shell
- `snmpd`: net-snmp's snmpd with a v2c community and a v3 user, plus `snmpget` (the oracle)
- `web`: an HTTP server, optionally TLS, with a known Server header and <title>
- `dns`: a dnslib server answering PTR queries from a dict
- `tcp`: plain TCP listeners that accept ("open") or never answer ("filtered")

Peers only ever bind 127.0.0.0/8, and the helpers in `process` wait on conditions (a
log line, a port accepting), never on fixed sleeps. Tests use them through fixtures
(e.g. `tests/integration/discovery/conftest.py`).
"""
