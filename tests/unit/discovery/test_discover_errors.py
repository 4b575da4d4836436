"""discover() refuses bad targets before it opens a single socket."""

from __future__ import annotations

from pathlib import Path

import pytest

from outpost.errors import InvalidArgument
from services.collector.discovery import DiscoveryPlan, HostKeyStore, Progress, discover


@pytest.mark.parametrize(
    ("targets", "message"),
    [(("10.0.0.300",), "not a valid IP address"), (("10.0.0.0/8",), "expand to 16,777,216 addresses")],
)
async def test_bad_targets_raise_invalid_argument_on_first_iteration(
    tmp_path: Path, targets: tuple[str, ...], message: str
) -> None:
    plan = DiscoveryPlan(targets=targets, exclusions=(), ports=(22,), probes=frozenset({"tcp"}))
    progress: list[Progress] = []
    with pytest.raises(InvalidArgument, match=message):
        async for _ in discover(plan, host_keys=HostKeyStore(tmp_path), on_progress=progress.append):
            pass
    assert progress == []


async def test_everything_excluded_is_an_empty_run(tmp_path: Path) -> None:
    plan = DiscoveryPlan(targets=("10.0.0.0/30",), exclusions=("10.0.0.0-3",), ports=(22,), probes=frozenset({"tcp"}))
    progress: list[Progress] = []
    devices = [device async for device in discover(plan, host_keys=HostKeyStore(tmp_path), on_progress=progress.append)]

    assert devices == []
    assert progress == [Progress(targets_done=0, targets_total=0, devices_found=0)] * 2  # expanded, then the end


async def test_the_total_is_reported_as_soon_as_the_targets_are_expanded(tmp_path: Path) -> None:
    """A running job shows 0/4, not 0/0, before its first host finishes."""
    plan = DiscoveryPlan(targets=("127.0.0.0/30",), exclusions=(), ports=(9,), probes=frozenset({"tcp"}))
    progress: list[Progress] = []
    async for _ in discover(plan, host_keys=HostKeyStore(tmp_path), on_progress=progress.append):
        pass

    assert progress[0] == Progress(targets_done=0, targets_total=4, devices_found=0)
