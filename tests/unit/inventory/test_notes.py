"""Device notes (issue 10, item 4): the newest per probe, not history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.gateway.inventory.domain.batch import plan_batch
from services.gateway.inventory.domain.device import Sighting
from services.gateway.inventory.domain.notes import note_source, notes_update
from services.gateway.inventory.domain.observation import DeviceObservation

T0 = datetime(2026, 12, 7, 6, 0, tzinfo=UTC)


def test_a_notes_source_is_the_probe_it_names() -> None:
    assert note_source("snmp: no answer") == "snmp"
    assert note_source("dns: the resolver did not answer in time") == "dns"
    assert note_source("ICMP: not permitted") == "icmp"
    assert note_source("something odd happened") == ""
    assert note_source("a sentence: with a colon") == ""


def test_a_run_replaces_the_notes_of_the_probes_it_ran_and_of_the_sources_it_names() -> None:
    update = notes_update(
        "dev-1", ["snmp: no answer"], at=T0, job_run_id="run-2", probes=["icmp", "tcp", "snmp"], same_run=False
    )

    assert update is not None
    assert update.replaced == {"icmp", "tcp", "snmp"}  # dns was not probed: its note stays
    assert [(n.source, n.text, n.noted_at, n.job_run_id) for n in update.notes] == [
        ("snmp", "snmp: no answer", T0, "run-2")
    ]


def test_a_fragment_of_the_same_run_or_unknown_probes_replace_only_named_sources() -> None:
    fragment = notes_update("dev-1", ["dns: timeout"], at=T0, job_run_id="r", probes=["snmp", "dns"], same_run=True)
    unknown = notes_update("dev-1", ["dns: timeout"], at=T0, job_run_id="r", probes=None, same_run=False)

    assert fragment is not None and unknown is not None
    assert fragment.replaced == unknown.replaced == {"dns"}
    assert notes_update("dev-1", [], at=T0, job_run_id="r", probes=None, same_run=False) is None


def test_a_batch_plans_one_notes_update_per_device_and_skipped_observations_touch_none() -> None:
    sighting = Sighting("lab", "edge", "run-1", T0)
    observations = [
        DeviceObservation("10.0.0.1", notes=("snmp: no answer",)),
        DeviceObservation("10.0.0.1", notes=("dns: timeout",)),
        DeviceObservation("10.0.0.2"),
    ]

    plan = plan_batch([], observations, sighting, new_id=iter(["dev-1", "dev-2"]).__next__, probes=["snmp", "dns"])

    [one, two] = plan.notes
    assert (one.device_id, sorted(n.text for n in one.notes)) == ("dev-1", ["dns: timeout", "snmp: no answer"])
    assert (two.device_id, two.notes) == ("dev-2", ())  # its probes ran and said nothing
    assert two.replaced == {"snmp", "dns"}

    later = DeviceObservation("10.0.0.1", notes=("snmp: late",), observed_at=T0 - timedelta(hours=1))
    stale = plan_batch(plan.devices, [later], Sighting("lab", "edge", "run-0", T0 - timedelta(hours=1)))
    assert stale.stale == 1 and stale.notes == []
