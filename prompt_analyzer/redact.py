"""Redaction: no secret reaches a log line, an error message, a table cell or the database.

Every configured secret is replaced, and so are known API-key shapes, even when not configured (a key
echoed back from another account, say) and the password of a URL.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# Known API-key shapes, scrubbed even when not configured (e.g. a key echoed from another account).
_KEY_SHAPES = re.compile(
    r"(sk-ant-[A-Za-z0-9_\-]{8,}|sk-(?:proj-|svcacct-)?[A-Za-z0-9_\-]{16,}|pplx-[A-Za-z0-9]{16,}"
    r"|AIza[0-9A-Za-z_\-]{30,}|(?<=://)[^/\s:@]+:[^/\s@]+(?=@))"
)


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """Remove every configured secret and known key shapes from ``text``."""
    for s in secrets:
        if s and len(s) >= 4:
            text = text.replace(s, "***")
    return _KEY_SHAPES.sub("***", text)
