"""Everyday English words that are also brand names (or could be): "you", "zoom", "box", "notion".

A brand term in this list is *ambiguous*: the matcher takes it only as written (case-sensitive) and not
at the start of a sentence unless it is set off as a label (see :mod:`.mentions`).  The list is short on
purpose: the common function words and the everyday words that brands of software, retail and finance
are most often named after.  A brand missing here can be marked ``--match-case``.
"""

from __future__ import annotations

__all__ = ["COMMON_WORDS"]

_WORDS = """
a about above across after again against all almost alone along already also always am among an and
another any anyone anything are around as ask at away back bad be because been before being below best
better between big both but by call came can case change come could day did do does done down during
each early end even ever every few find first for from full get give go good got great had has have he
help her here high him his home how i if in into is it its just keep kind know last least less let
life like line little long look made make many may me might more most much must my need never new next
no not now number of off often old on once one only open or other our out over own part people place
point right same say see she should show side since small so some something still such sure take than
that the their them then there these they thing things think this those though through time to too
try two under up upon us use used very want was way we well were what when where which while who why
will with without work would year yes yet you your

air anchor apple arc bear bee bird blade block bloom bolt box brave bridge buffer canvas chase chrome
circle cloud coda compass copper craft crane delta discord dove drafts drive echo edge element
ember excel fathom figure flow focus front gap gather gem glean ghost grain harvest hive honey hub jaguar
key kite lattice lever linear loom map mercury meta mint mode monday nest nova notion oak
oracle orange orbit pace pilot pitch plaid prime puma pulse quartz ramp range ray ring river rocket
rover sage scale seed shell shift signal slack spark sprint square stripe summit swift target teams
thread tide total trace unity united venture visa wave wise word zoom
"""

COMMON_WORDS: frozenset[str] = frozenset(_WORDS.split())
