"""`outpostctl config ...`: server settings the scheduler keeps: get and set.

Each known key is listed in `SETTINGS` with its meaning and bounds; `set` sends only the
key it changes (the request's field mask), so two admins changing different keys never
undo each other. An unknown key is a usage error that lists the known ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import typer

from outpost.errors import brief
from outpost.numbers import parse_ascii_int
from outpostctl import output
from outpostctl.endpoints import endpoints_of
from outpostctl.options import JsonFlag
from outpostctl.scheduler_client import SchedulerClient, Settings

app = typer.Typer(help="Server settings: get, set.", no_args_is_help=True)


@dataclass(frozen=True)
class Setting:
    meaning: str
    minimum: int
    maximum: int
    unit: str


SETTINGS = {
    "collector_check_minutes": Setting(
        meaning="how often HTTP-polling collectors check in for work", minimum=1, maximum=1440, unit="minutes"
    ),
}


@app.command("get")
def get_config(
    ctx: typer.Context,
    key: Annotated[str | None, typer.Argument(metavar="[KEY]", help="One setting; all when omitted.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Show the settings, or one setting's value (plain, for scripts)."""
    name = setting_name(key) if key is not None else None
    with SchedulerClient(endpoints_of(ctx)) as scheduler:
        values = settings_values(scheduler.get_settings())
    if name is not None:
        values = {name: values[name]}
    if as_json:
        output.print_json(values)
    elif name is not None:
        output.print_line(str(values[name]))
    else:
        output.stdout.print(
            output.table(
                ["KEY", "VALUE", "MEANING"],
                ([k, f"{v} {SETTINGS[k].unit}", SETTINGS[k].meaning] for k, v in values.items()),
            )
        )


@app.command("set", context_settings={"ignore_unknown_options": True})
def set_config(
    ctx: typer.Context,
    key: Annotated[str, typer.Argument(metavar="KEY", help="The setting, e.g. collector_check_minutes.")],
    value: Annotated[str, typer.Argument(metavar="VALUE", help="Its new value.")],
) -> None:
    """Change one setting; it reaches connected collectors at once."""
    name = setting_name(key)
    try:
        number = setting_value(name, value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="VALUE") from None
    with SchedulerClient(endpoints_of(ctx)) as scheduler:
        settings = scheduler.update_settings({name: number})
    output.print_line(f"{name} = {settings_values(settings)[name]}")


def setting_name(key: str) -> str:
    """The known key `key` names ("collector-check-minutes" also works); usage error if none."""
    name = key.strip().lower().replace("-", "_")
    if name not in SETTINGS:
        raise typer.BadParameter(f"unknown setting '{key}'; known: {', '.join(SETTINGS)}", param_hint="KEY")
    return name


def setting_value(name: str, text: str) -> int:
    """`text` as the value of setting `name`, within its bounds; ValueError says what fits."""
    setting = SETTINGS[name]
    expected = f"{name} takes a whole number of {setting.unit} from {setting.minimum} to {setting.maximum}"
    try:
        number = parse_ascii_int(text, name)
    except ValueError:
        raise ValueError(f"{expected}, not {brief(text)}") from None
    if not setting.minimum <= number <= setting.maximum:
        raise ValueError(f"{expected}, not {number}")
    return number


def settings_values(settings: Settings) -> dict[str, int]:
    """The known settings by key, in `SETTINGS` order."""
    return {name: getattr(settings, name) for name in SETTINGS}
