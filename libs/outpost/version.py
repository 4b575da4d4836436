"""The one version string every Outpost process reports."""

from importlib.metadata import PackageNotFoundError, version

try:
    VERSION = version("outpost")
except PackageNotFoundError:  # running from a source tree without installing
    VERSION = "0.0.0+source"

PROTOCOL_VERSION = 1
"""Major version of the agent protocol (`Hello.protocol_version`)."""
