"""`access.key`: the access key the server handed this collector over a sealed session (ADR 0024).

When an admin rotates an access key (`outpostctl access-keys rotate`), gateways send the
new key's text to every live session whose handshake used the old one. The collector
keeps it here, in its data directory (mode 0600, written atomically), because the
configured key (`--access-key-file` / `OUTPOST_ACCESS_KEY`) is the operator's file or
Secret, which the collector must not rewrite, and because the old key stops working when
the rotation's overlap ends: a collector that kept only the configured key would be cut
off at its next connection after that.

Which key a connection uses is `transport.sealed.SealedSessions`'s rule: this one when
present, the configured one when there is none or this one was refused.
"""

from __future__ import annotations

from pathlib import Path

import structlog

from outpost.access_key import AccessKey, AccessKeyFormatError, read_access_key_file, write_access_key_file

log = structlog.get_logger(__name__)

ACCESS_KEY_FILE = "access.key"


class AccessKeyStore:
    """The data directory's `access.key`: read per connection, so an operator's deletion takes effect."""

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / ACCESS_KEY_FILE

    def load(self) -> AccessKey | None:
        """The stored key, or None when there is none or it is unusable (logged; the configured key is used)."""
        try:
            return read_access_key_file(self.path)
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError, AccessKeyFormatError) as exc:
            log.error(
                "stored_access_key_unusable",
                path=str(self.path),
                error=str(exc),
                advice="the configured access key is used; delete the file to silence this",
            )
            return None

    def save(self, key: AccessKey) -> None:
        """Replace the stored key (mode 0600, atomic: a crash leaves the old or the new one)."""
        write_access_key_file(self.path, key)
