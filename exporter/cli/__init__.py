"""The `exporter` command: the only composition root, where settings meet the parts they wire.

Only the chosen subcommand's module is imported (with the settings and their flags), so that
`exporter --version` costs no library import and `exporter processor` none of another command's.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Callable, Collection, Mapping, Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any, Literal, Protocol, cast, get_args, get_origin

from exporter import __version__

if TYPE_CHECKING:
    from exporter.settings import Settings

# Each subcommand is a module of this package; see `Command` for what it provides.
SUBCOMMANDS = ("processor", "api", "produce", "demo", "dlq")


class Command(Protocol):
    """What a subcommand module provides (checked structurally, modules are not classes).

    A module with actions (`exporter dlq peek`) also has `ACTIONS`, each action's name and help:
    every action is a subcommand of its own, with its own help, `add_arguments` and the settings.
    """

    HELP: str
    SETTINGS: tuple[str, ...]

    def add_arguments(self, parser: argparse.ArgumentParser) -> None: ...

    def run(self, settings: Settings, args: argparse.Namespace) -> int: ...


def _load_command(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(f"exporter.cli.{name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"exporter.cli.{name}":
            raise
        return None


def _describe_default(value: object) -> str:
    if value is None or value == ():
        return "unset"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    return str(value)


def add_setting_flags(
    parser: argparse.ArgumentParser,
    fields: Sequence[str],
    defaults: Mapping[str, object] | None = None,
) -> None:
    """One flag per setting, its help naming the environment variable and the default (the
    command's own `defaults` where it has them)."""
    from pydantic import SecretStr  # noqa: PLC0415 - only a parser that shows settings needs it

    from exporter.settings import Settings, env_name, limits  # noqa: PLC0415 - likewise

    group = parser.add_argument_group("settings (flags override environment variables)")
    for field in fields:
        info = Settings.model_fields[field]
        flag = "--" + field.replace("_", "-")
        default = (defaults or {}).get(field, info.default)
        bounds = limits(field)
        help_text = (
            f"{info.description} [env {env_name(field)}; default {_describe_default(default)}"
            + (f"; {bounds}]" if bounds else "]")
        )
        annotation = info.annotation
        kwargs: dict[str, Any] = {"dest": field, "default": argparse.SUPPRESS, "help": help_text}
        if annotation is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif get_origin(annotation) is Literal:
            choices = get_args(annotation)
            kwargs["choices"] = choices
            # `--log-level debug` as the variable accepts it: the choice's case does not matter.
            kwargs["type"] = _any_case(choices)
        elif annotation in (int, float):
            kwargs["type"] = annotation
            kwargs["metavar"] = "N"
        elif get_origin(annotation) is tuple:
            # A list setting: the flag may be repeated, and each value may hold several.
            kwargs["action"] = "append"
            kwargs["metavar"] = "A,B"
        else:
            kwargs["metavar"] = "SECRET" if SecretStr in get_args(annotation) else "TEXT"
        group.add_argument(flag, **kwargs)


def _any_case(choices: Sequence[str]) -> Callable[[str], str]:
    """A flag's `type` that turns any case of one of `choices` into that choice (anything else
    is left for argparse to refuse, naming the value as given)."""
    by_folded = {choice.casefold(): choice for choice in choices}

    def canonical(value: str) -> str:
        return by_folded.get(value.casefold(), value)

    return canonical


def _needed(argv: Sequence[str]) -> Collection[str]:
    """The subcommands whose modules this command line needs: the chosen one, or all for help."""
    for arg in argv:
        if arg in ("-h", "--help"):
            return SUBCOMMANDS
        if arg in SUBCOMMANDS:
            return (arg,)
    # No command (`--version`, or a mistake argparse reports by the names alone): none.
    return ()


def build_parser(load: Collection[str] = SUBCOMMANDS) -> argparse.ArgumentParser:
    """The command line with every installed subcommand; only those in `load` fully described."""
    parser = argparse.ArgumentParser(
        prog="exporter",
        description="Turn business events from SQS into exact totals, Prometheus metrics and "
        "a stats API.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in SUBCOMMANDS:
        if name not in load:
            # Named, so that argparse lists it among the choices; never parsed in this run.
            subparsers.add_parser(name)
            continue
        module = _load_command(name)
        if module is None:
            continue
        command = cast(Command, module)
        sub = subparsers.add_parser(name, help=command.HELP, description=command.HELP)
        _describe_command(sub, module)
        actions: Mapping[str, str] = getattr(module, "ACTIONS", {})
        if actions:
            # Each action parses what follows it, so it needs every flag itself; the command keeps
            # them too, so that `exporter dlq --limit 5 peek` works as it always did.
            choices = "{" + ",".join(actions) + "}"  # named in the error when none is given
            nested = sub.add_subparsers(dest="action", metavar=choices, required=True)
            for action, action_help in actions.items():
                leaf = nested.add_parser(action, help=action_help, description=action_help)
                _describe_command(leaf, module)
        sub.set_defaults(_command=command)
    return parser


def _describe_command(parser: argparse.ArgumentParser, module: ModuleType) -> None:
    """A command's own flags and its settings' flags on `parser`."""
    command = cast(Command, module)
    command.add_arguments(parser)
    # A command whose defaults differ from the settings' (the demo's) says so in DEFAULTS.
    add_setting_flags(parser, command.SETTINGS, getattr(module, "DEFAULTS", None))


def _warn_of_stray_variables(settings: Settings) -> None:
    """One warning per variable that looks meant for a setting but is none (`REDIS_ULR`), logged
    in the command's own format before it starts anything (decision 0016)."""
    from exporter.logs import configure_logging  # noqa: PLC0415 - see above
    from exporter.settings import stray_variables  # noqa: PLC0415 - see above

    found = stray_variables(os.environ)
    if not found:
        return
    configure_logging(settings.log_level, settings.log_format)
    log = logging.getLogger("exporter.settings")
    for stray in found:
        log.warning(stray.message, extra={"variable": stray.name, "did_you_mean": stray.suggestion})


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line, load settings once, and run the chosen subcommand."""
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(_needed(argv)).parse_args(argv)
    command = cast(Command, args._command)

    from exporter.cli.exits import ended  # noqa: PLC0415 - see above
    from exporter.settings import load_settings  # noqa: PLC0415 - see above

    overrides = {f: getattr(args, f) for f in command.SETTINGS if hasattr(args, f)}

    def run() -> int:
        settings = load_settings(command.SETTINGS, **overrides)
        _warn_of_stray_variables(settings)
        return command.run(settings, args)

    # Whatever stops a command (a setting that fails to load or that it finds unusable, a port,
    # a dependency never reached) ends it by one table: one line, one exit status.
    return ended(args.command, run)
