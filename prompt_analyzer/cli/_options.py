"""Options several commands share, and typed option values whose bad input is one line and exit 2.

Typed (``--help`` lists the choices, the command gets the value parsed): ``--log-format`` and
``demo --profile`` are Enums, project and prompt ids are ``uuid.UUID``.  Their parsers raise
:class:`OptionError`, which :func:`prompt_analyzer.cli.main` prints as one line with exit 2, the message
the README's bad-input table gives (``--project is not a UUID: 'nope'``).  Typer's own validation would
answer a bad value with its multi-line usage box instead.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from enum import Enum
from typing import Annotated, Any, TypeVar

import typer

from ..config import PLATFORMS
from ..prompts import InputError, parse_uuid


class OptionError(Exception):
    """A bad option value found while typer parses the command line: one line, exit 2.

    Not a ValueError on purpose: typer's parsing turns a ValueError into its usage box; this passes through
    to ``main()``.
    """


E = TypeVar("E", bound=Enum)


def choice(kind: type[E], message: Callable[[str], str]) -> Callable[[Any], E]:
    """A typer ``parser`` for an Enum: the member of that value, or OptionError(``message(value)``)."""

    def parse(value: Any) -> E:
        if isinstance(value, kind):
            return value
        try:
            return kind(value)
        except ValueError:
            raise OptionError(message(value)) from None

    return parse


def uuid_of(what: str, *, blank: bool = False) -> Callable[[Any], uuid.UUID | None]:
    """A typer ``parser`` for an id: ``parse_uuid``'s message (``WHAT is not a UUID: 'nope'``) on bad input;
    ``blank``: an empty value means no id (None), as ``prompts list --project ""`` always has."""

    def parse(value: Any) -> uuid.UUID | None:
        if isinstance(value, uuid.UUID):
            return value
        if blank and not value:
            return None
        try:
            return parse_uuid(value, what)
        except InputError as e:
            raise OptionError(str(e)) from None

    return parse


def since_of(value: Any) -> datetime | None:
    """A typer ``parser`` for ``--since``: an ISO date (``2026-11-28``, midnight UTC) or date and time
    (``2026-11-28T06:00``, UTC unless it names its offset)."""
    if isinstance(value, datetime) or value is None:
        return value
    try:
        when = datetime.fromisoformat(str(value).strip())
    except ValueError:
        raise OptionError(f"--since must be a date like 2026-11-28 (or 2026-11-28T06:00), got {str(value)[:40]!r}"
                          ) from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


# Platform names stay strings, checked by ``prompts.parse_platforms`` (one line, exit 2): platforms are
# about to be declared by configuration, so the names cannot be a closed Enum fixed at import time.
PlatformOpt = Annotated[list[str] | None, typer.Option("--platform", "-p", help=f"One of {', '.join(PLATFORMS)}.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout at the end.")]
SinceOpt = Annotated[datetime | None, typer.Option(
    "--since", help="Batches started since this date (UTC), e.g. 2026-11-28.", parser=since_of)]
BatchRefOpt = Annotated[str | None, typer.Option("--batch", help="A batch id or idempotency key.")]
PromptIdArg = Annotated[uuid.UUID, typer.Argument(help="The prompt's id.", parser=uuid_of("prompt id"))]
