"""A small strict parser of the Prometheus text format (0.0.4), enough to check what we render."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}


class ParseError(ValueError):
    pass


@dataclass
class Family:
    name: str
    help: str | None = None
    type: str | None = None
    samples: dict[frozenset[tuple[str, str]], float] = field(default_factory=dict)


def _labels(text: str, pos: int, lineno: int) -> tuple[dict[str, str], int]:
    labels: dict[str, str] = {}
    while True:
        if text[pos] == "}":
            return labels, pos + 1
        m = LABEL.match(text, pos)
        if not m:
            raise ParseError(f"line {lineno}: bad label name at {text[pos:]!r}")
        name, pos = m.group(), m.end()
        if text[pos:pos + 2] != '="':
            raise ParseError(f"line {lineno}: expected =\" after {name}")
        pos += 2
        value = []
        while True:
            if pos >= len(text):
                raise ParseError(f"line {lineno}: unterminated label value")
            c = text[pos]
            if c == "\\":
                esc = text[pos + 1:pos + 2]
                if esc not in ('\\', '"', "n"):
                    raise ParseError(f"line {lineno}: bad escape \\{esc}")
                value.append("\n" if esc == "n" else esc)
                pos += 2
            elif c == '"':
                pos += 1
                break
            elif c == "\n":
                raise ParseError(f"line {lineno}: raw newline in label value")
            else:
                value.append(c)
                pos += 1
        if name in labels:
            raise ParseError(f"line {lineno}: duplicate label {name}")
        labels[name] = "".join(value)
        if text[pos] == ",":
            pos += 1
        elif text[pos] != "}":
            raise ParseError(f"line {lineno}: expected , or }} after label {name}")


def _value(text: str, lineno: int) -> float:
    if text in ("NaN", "+Inf", "-Inf"):
        return float(text.replace("Inf", "inf").replace("NaN", "nan"))
    if not re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?", text):
        raise ParseError(f"line {lineno}: bad value {text!r}")
    return float(text)


def parse(text: str) -> dict[str, Family]:
    """Families by name. Refuses: a missing final newline, TYPE after samples, a family split in
    two, samples without TYPE, duplicate series, bad names, escapes or values."""
    if text and not text.endswith("\n"):
        raise ParseError("text must end with a newline")
    fams: dict[str, Family] = {}
    closed: set[str] = set()
    current: str | None = None
    for lineno, line in enumerate(text.split("\n")[:-1], 1):
        if not line:
            continue
        if line.startswith("#"):
            parts = line.split(" ", 3)
            if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
                name = parts[2]
                if not NAME.fullmatch(name):
                    raise ParseError(f"line {lineno}: bad metric name {name!r}")
                if name in closed:
                    raise ParseError(f"line {lineno}: family {name} appears twice")
                if current is not None and current != name:
                    closed.add(current)
                fam = fams.setdefault(name, Family(name))
                if fam.samples:
                    raise ParseError(f"line {lineno}: {parts[1]} for {name} after its samples")
                rest = parts[3] if len(parts) > 3 else ""
                if parts[1] == "HELP":
                    if fam.help is not None:
                        raise ParseError(f"line {lineno}: second HELP for {name}")
                    fam.help = rest
                else:
                    if fam.type is not None or rest not in TYPES:
                        raise ParseError(f"line {lineno}: bad or second TYPE for {name}: {rest!r}")
                    fam.type = rest
                current = name
            continue
        m = NAME.match(line)
        if not m:
            raise ParseError(f"line {lineno}: bad sample {line!r}")
        name, pos = m.group(), m.end()
        labels: dict[str, str] = {}
        if line[pos:pos + 1] == "{":
            labels, pos = _labels(line, pos + 1, lineno)
        if line[pos:pos + 1] != " ":
            raise ParseError(f"line {lineno}: expected a space before the value")
        fields = line[pos + 1:].split(" ")
        if not 1 <= len(fields) <= 2:
            raise ParseError(f"line {lineno}: bad value/timestamp {line[pos:]!r}")
        value = _value(fields[0], lineno)
        if name not in fams or fams[name].type is None:
            raise ParseError(f"line {lineno}: sample of {name} without a TYPE line")
        if name in closed or (current is not None and current != name):
            raise ParseError(f"line {lineno}: samples of {name} are not together")
        key = frozenset(labels.items())
        if key in fams[name].samples:
            raise ParseError(f"line {lineno}: duplicate series {name}{labels}")
        fams[name].samples[key] = value
        current = name
    return fams


def value(fams: dict[str, Family], name: str, **labels: str) -> float:
    v = fams[name].samples[frozenset(labels.items())]
    assert not math.isnan(v)
    return v
