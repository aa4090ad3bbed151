"""Options several commands share."""

from __future__ import annotations

from typing import Annotated

import typer

from ..config import PLATFORMS

# Platform names stay strings, checked by ``prompts.parse_platforms`` (one line, exit 2): platforms are
# about to be declared by configuration, so the names cannot be a closed Enum fixed at import time.
PlatformOpt = Annotated[list[str] | None, typer.Option("--platform", "-p", help=f"One of {', '.join(PLATFORMS)}.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout at the end.")]
