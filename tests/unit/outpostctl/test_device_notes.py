"""`devices show`: a device's notes, in the text and in --json."""

from __future__ import annotations

from rich.console import Console, Group

from outpost.gateway.v1 import gateway_pb2
from outpostctl import output
from outpostctl.devices import device_sections
from outpostctl.gateway_client import DeviceDetail, _device


def shown(device: gateway_pb2.Device) -> str:
    console = Console(width=200, record=True)
    console.print(Group(*device_sections(DeviceDetail(_device(device), []))))
    return console.export_text()


def test_notes_are_shown_and_carried_in_json_and_their_absence_is_said() -> None:
    noted = gateway_pb2.Device(ip="10.0.0.9", zone="lab", notes=["dns: timeout", "snmp: no answer"])

    assert output.plain(_device(noted))["notes"] == ["dns: timeout", "snmp: no answer"]
    text = shown(noted)
    assert "notes" in text and "snmp: no answer" in text and "dns: timeout" in text
    assert "no notes" in shown(gateway_pb2.Device(ip="10.0.0.9", zone="lab"))
