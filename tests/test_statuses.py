"""Statuses and error classes have one definition; the SQL's literals are among them."""

from __future__ import annotations

import re
from pathlib import Path

import prompt_analyzer
from prompt_analyzer.statuses import FINISHED, BatchStatus, ErrorClass, JobStatus, PairStatus

PACKAGE = Path(prompt_analyzer.__file__).parent


def test_every_status_literal_in_the_sql_is_a_declared_status() -> None:
    known = {m.value for enum in (BatchStatus, JobStatus, PairStatus, ErrorClass) for m in enum}
    source = (PACKAGE / "db" / "store.py").read_text()
    source = re.sub(r"json_build_object\([^)]*\)", "", source)  # its literals are JSON keys, not statuses
    literals = set(re.findall(r"'([a-z_]+)'", source))
    assert literals, "no SQL literal found: the check would pass vacuously"
    assert literals <= known, f"undeclared status literals in SQL: {sorted(literals - known)}"


def test_contract_names() -> None:
    assert [s.value for s in BatchStatus][:5] == ["running", "completed", "completed_with_errors", "interrupted",
                                                  "failed"]
    assert {s.value for s in PairStatus} == {"processing", "success", "error"}
    assert {"quota_exhausted", "budget_exhausted", "interrupted", "circuit_open"} <= {c.value for c in ErrorClass}
    assert set(FINISHED) == {s for s in BatchStatus if s.finished}
    assert BatchStatus.COMPLETED == "completed"  # written and compared as plain strings
