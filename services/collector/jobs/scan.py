"""The discovery engine as the job runner calls it: assignment in, protobuf devices out.

Opens the run's sealed credentials with this collector's encryption key (bound to the job
run id, so a sealed set cannot be replayed into another run), builds the engine's plan,
and converts each device to the wire type. The opened credentials live only in this
call's plan; they are never logged or written anywhere.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from outpost.agent.v1 import agent_pb2
from outpost.sealing import open_sealed
from services.collector.discovery.engine import discover
from services.collector.discovery.host_keys import HostKeyStore
from services.collector.discovery.model import DeadlineExceeded, Progress
from services.collector.discovery.recognition import ServiceRecognizer
from services.collector.discovery.to_proto import device_to_proto, plan_from_assignment
from services.collector.jobs.runner import Discover


def engine_discover(
    host_keys: HostKeyStore,
    encryption_key: X25519PrivateKey,
    recognizer: ServiceRecognizer | None = None,
    wall_clock: Callable[[], float] = time.time,
    *,
    scan_workers: int = 1,
) -> Discover:
    """The runner's `discover`; `wall_clock` stamps each device's observed time (services/collector/clock.py).

    `scan_workers` > 1: the TCP connects of large scans run in that many worker processes.
    """

    async def run(
        assignment: agent_pb2.JobAssignment, on_progress: Callable[[int, int, int], None]
    ) -> AsyncIterator[agent_pb2.DeviceObservation]:
        credentials = None
        if assignment.credentials.ciphertext:
            plaintext = open_sealed(encryption_key, assignment.credentials, assignment.job_run_id)
            credentials = agent_pb2.CredentialSet.FromString(plaintext)
        plan = plan_from_assignment(assignment, credentials)

        def progress(p: Progress) -> None:
            on_progress(p.targets_done, p.targets_total, p.devices_found)

        try:
            async for device in discover(
                plan,
                host_keys=host_keys,
                on_progress=progress,
                recognizer=recognizer,
                wall_clock=wall_clock,
                scan_workers=scan_workers,
            ):
                yield device_to_proto(device)
        except DeadlineExceeded as exc:
            raise TimeoutError(str(exc)) from exc

    return run
