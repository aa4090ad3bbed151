"""Which tracked brands an answer mentions: pure, no I/O, one compiled pattern per set of brands.

The rule (docs/metrics.md, "Mentions", states it with its limits):

1. **Markup is masked, not removed**: link targets, bare URLs, images, HTML tags, reference definitions
   and emphasis underscores become spaces of the same length, so offsets stay offsets into the stored
   ``response_text`` (``[Acme](https://toolbox.com)`` keeps ``Acme``; the URL's ``toolbox`` is gone).
2. **Whole words at Unicode word boundaries**: a term matches where neither neighbour is a letter, digit,
   underscore or combining mark ("Box" is not in "toolbox", "Dropbox" or "box_size"); a letter of a script
   written without spaces (CJK, kana, hangul, Thai) counts as a boundary, since those scripts have none.
   Spaces inside a term match any run of whitespace; straight and curly apostrophes match each other.
3. **Case-insensitive**, except for terms with cased letters that are an everyday word
   (:mod:`.common_words`: "you", "zoom", "box"), one or two characters long ("HP"), or of a brand marked
   ``match_case``: those match only as written ("Zoom", not "zoom in").  An everyday word at the start of
   a sentence, where every word is capitalised, counts only when it is set off as a label: bold, italic, a
   link's text, or followed by ``:`` or a dash ("1. **Zoom** – video calls").
4. **Longest term wins**, left to right, without overlaps: "Acme Cloud" (one brand) is not also "Acme"
   (another).  Terms are the brand's name, its aliases and its domains ("acme.io" written in the text).
5. **Negation**: an occurrence does not count when its clause says the brand could not be found or is
   unknown: a cue before it ("I couldn't find", "no information about", "never heard of", "not familiar
   with") or right after it ("… is unknown", "… doesn't seem to exist", "… could not be found").  Clauses
   end at sentence ends, line breaks, semicolons, dashes and "but / however / whereas / although /
   though / while / than / instead / , and".  A cue after "if" ("if you can't find Acme …") and a cue
   after a possessive ("Acme's pricing is unknown") do not negate.  Negated occurrences are counted apart.
"""

from __future__ import annotations

import bisect
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .common_words import COMMON_WORDS

__all__ = [
    "MATCHER_VERSION", "REDIRECT_HOSTS", "BrandMention", "BrandTerms", "Matcher", "Occurrence", "Source",
    "domain_matches", "is_redirect_host", "mask_markup", "normalize_domain",
]

# Bumped whenever the rule above changes what is matched: part of every answer's scoring fingerprint, so
# `analyze score` knows that history was scored by another rule.
MATCHER_VERSION = 1

# Hosts that stand for another site and are never a brand's source: Google's grounding redirects (a Gemini
# citation whose target is not known yet carries this host).
REDIRECT_HOSTS: tuple[str, ...] = ("vertexaisearch.cloud.google.com",)

# --------------------------------------------------------------------------------------------- markup

_MASK_ALL = (
    re.compile(r"!\[[^\]\n]*\]\((?:[^()\s]|\([^()\s]*\))*(?:\s+\"[^\"\n]*\")?\)"),  # images
    re.compile(r"^[ \t]{0,3}\[[^\]\n]+\]:[ \t]*\S+.*$", re.M),  # reference definitions
    re.compile(r"<(?:https?|ftp|mailto):[^>\s]+>"),  # autolinks
    re.compile(r"</?[A-Za-z][^<>\n]*>"),  # HTML tags
    re.compile(r"(?:\b(?:https?|ftp)://|\bwww\.)[^\s<>()\[\]{}\"'`]+"),  # bare URLs
    re.compile(r"(?<!\w)_+|_+(?!\w)"),  # emphasis underscores (inside words they stay: box_size)
)
# Links keep their text (group 1); brackets and targets are masked.
_LINKS = (
    re.compile(r"\[([^\]\n]*)\]\((?:[^()\s]|\([^()\s]*\))*(?:\s+\"[^\"\n]*\")?\)"),
    re.compile(r"\[([^\]\n]*)\]\[[^\]\n]*\]"),
)


def _blank(m: re.Match[str]) -> str:
    return " " * (m.end() - m.start())


def _keep_text(m: re.Match[str]) -> str:
    return " " * (m.start(1) - m.start()) + m.group(1) + " " * (m.end() - m.end(1))


# Each pattern runs only on a text holding one of its triggers (most answers have no image, tag or link).
_TRIGGERS: tuple[tuple[str, ...], ...] = (("![",), ("]:",), ("<",), ("<",), ("://", "www."), ("_",))
_LINK_TRIGGERS: tuple[tuple[str, ...], ...] = (("](",), ("][",))


def mask_markup(text: str) -> str:
    """``text`` with markup and URLs replaced by spaces: the same length, the same offsets."""
    # Images and reference definitions first (they contain link syntax), then links, then the rest.
    for pattern, triggers in zip(_MASK_ALL[:2], _TRIGGERS[:2], strict=True):
        if any(t in text for t in triggers):
            text = pattern.sub(_blank, text)
    for link, triggers in zip(_LINKS, _LINK_TRIGGERS, strict=True):
        if any(t in text for t in triggers):
            text = link.sub(_keep_text, text)
    for pattern, triggers in zip(_MASK_ALL[2:], _TRIGGERS[2:], strict=True):
        if any(t in text for t in triggers):
            text = pattern.sub(_blank, text)
    return text


# --------------------------------------------------------------------------------------------- domains

_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*://", re.I)
_HOST = re.compile(r"^(?=.{1,253}$)(?:[a-z0-9\u00a1-\uffff](?:[a-z0-9\u00a1-\uffff-]{0,61}[a-z0-9\u00a1-\uffff])?\.)+"
                   r"[a-z0-9\u00a1-\uffff-]{2,63}$")


def normalize_domain(value: str) -> str:
    """``https://www.Acme.com/path`` -> ``acme.com``; raises ValueError for what is not a host name."""
    d = _SCHEME.sub("", value.strip()).split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    d = d.rsplit("@", 1)[-1].split(":", 1)[0].strip().lower().rstrip(".").removeprefix("www.")
    if not _HOST.match(d):
        raise ValueError(f"not a domain: {value.strip()[:80]!r}")
    if any(domain_matches(d, r) or domain_matches(r, d) for r in REDIRECT_HOSTS):
        raise ValueError(f"{d} is Google's grounding redirect host, never a brand's source")
    return d


def domain_matches(host: str, domain: str) -> bool:
    """``host`` is ``domain`` or one of its subdomains (``docs.acme.com`` is on ``acme.com``)."""
    h = host.lower().removeprefix("www.")
    return h == domain or h.endswith("." + domain)


def is_redirect_host(host: str) -> bool:
    """Whether ``host`` is a grounding-redirect host: never a source's site (matching, metrics)."""
    return any(domain_matches(host, r) for r in REDIRECT_HOSTS)


# --------------------------------------------------------------------------------------------- terms


@dataclass(frozen=True, slots=True)
class BrandTerms:
    """What the matcher needs of a tracked brand."""

    id: uuid.UUID
    name: str
    aliases: tuple[str, ...] = ()
    domains: tuple[str, ...] = ()
    match_case: bool = False

    def terms(self) -> list[str]:
        seen: dict[str, str] = {}
        for t in (self.name, *self.aliases, *self.domains):
            t = " ".join(t.split())
            if t and t.casefold() not in seen:
                seen[t.casefold()] = t
        return list(seen.values())


@dataclass(frozen=True, slots=True)
class Source:
    """One of an answer's sources: its host and whether the answer cites it (False: only retrieved)."""

    domain: str
    cited: bool


@dataclass(frozen=True, slots=True)
class Occurrence:
    brand_id: uuid.UUID
    start: int
    end: int
    negated: bool


@dataclass(frozen=True, slots=True)
class BrandMention:
    """One brand in one answer (an ``ai_response_mentions`` row)."""

    brand_id: uuid.UUID
    mention_count: int
    first_offset: int | None
    rank: int | None
    cited: bool
    retrieved: bool
    negated_count: int = 0


# Letters of scripts written without spaces between words are boundaries (there is nothing else).
_NOSPACE = "\u0e00-\u0e7f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
_MARKS = "\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f"
_BEFORE = f"(?<![^\\W{_NOSPACE}])(?<![{_MARKS}])"
_AFTER = f"(?![^\\W{_NOSPACE}]|[{_MARKS}])"


def _case_sensitive(term: str, match_case: bool) -> bool:
    """Matched only as written: a term whose case says something (it has cased letters; "华为" has none)
    and that is an everyday word, one or two characters long, or of a brand marked match_case."""
    if term.lower() == term.upper():
        return False
    return match_case or len(term) <= 2 or _everyday(term)


def _everyday(term: str) -> bool:
    """An everyday word: at the start of a sentence, capitalised like any word, it says nothing."""
    return " " not in term and term.casefold() in COMMON_WORDS


def _term_regex(term: str) -> str:
    out: list[str] = []
    for ch in term:
        if ch == " ":
            out.append(r"\s+")
        elif ch in "'\u2019":
            out.append("['\u2019]")
        elif ch in "-\u2010\u2011":
            out.append("[-\u2010\u2011]")
        else:
            out.append(re.escape(ch))
    return "".join(out)


# ------------------------------------------------------------------------------------------ negation

_NT = r"(?:n['\u2019]t|\s+not)"
_NEG_BEFORE = re.compile(
    rf"""\b(?:could|can|ca|did|do|does|was|were|am|is|are)\s*?{_NT}\s+(?:be\s+able\s+to\s+)?
            (?:find|locate|identify|verify|confirm|recogni[sz]e|know)\b
       |\bcannot\s+(?:find|locate|identify|verify|confirm|recogni[sz]e)\b
       |\b(?:unable|failed)\s+to\s+(?:find|locate|identify|verify|confirm)\b
       |\bno\s+(?:(?:reliable|public|specific|relevant)\s+)?
            (?:information|info|data|details|results?|records?|mentions?|evidence|knowledge)\b
       |\bno\s+(?:company|brand|product|tool|service|business|firm|app)\s+(?:called|named)\b
       |\bnot\s+(?:aware|familiar)\b|\bunfamiliar\b|\bnever\s+heard\b|\bnot\s+sure\s+what\b
       |{_NT}\s+have\s+(?:any\s+)?(?:information|info|data|details)\b""",
    re.I | re.X,
)
_NEG_AFTER = re.compile(
    rf"""^[\s,()"'\u201c\u201d\u2018\u2019]*(?:[^\W\d][\w-]*[\s,]+){{0,3}}?(?:
         (?:is|was|are|were|remains?|seems?|appears?)\s+(?:to\s+be\s+)?
            (?:unknown|not\s+(?:a\s+)?(?:well[-\s])?known|not\s+(?:widely\s+)?recogni[sz]ed)
       | (?:does|do|did)\s*?{_NT}\s+(?:seem\s+to\s+|appear\s+to\s+)?exist
       | (?:could|can|ca)\s*?{_NT}\s+be\s+(?:found|located|verified|identified)
       | (?:is|was|are|were)\s*?{_NT}\s+(?:found|listed|known)
       | unknown\b)""",
    re.I | re.X,
)
_POSSESSIVE = re.compile(r"^['\u2019]s?\b", re.I)
_IF = re.compile(r"\bif\b", re.I)
_CLAUSE_END = re.compile(
    r"[.!?](?=[\s\"'\u201d\u2019)*_]|$)|\n|;|\s[-\u2013\u2014]\s|\u2014"
    r"|\b(?:but|however|whereas|although|though|while|than|instead)\b|,\s*and\b",
    re.I,
)
_SENTENCE_END = re.compile(r"[.!?](?=\s|$)|\n")
_LEAD = re.compile(r"^[\W\d_]*$")  # nothing but list markers, numbers and punctuation
_LABEL_AFTER = re.compile(r"^[*_\]`]*\s*(?::|[-\u2013\u2014]\s)")


class _Text:
    """One answer being matched: its original and masked text, and (computed on first use, since most
    positions never need them) where its clauses and sentences end."""

    def __init__(self, text: str) -> None:
        self.original = text
        self.masked = mask_markup(text)
        self._sentence_ends: list[int] | None = None
        self._breaks: dict[int, list[tuple[int, int]]] = {}  # sentence start -> its clause breaks

    @property
    def sentence_ends(self) -> list[int]:
        if self._sentence_ends is None:
            self._sentence_ends = [m.end() for m in _SENTENCE_END.finditer(self.masked)]
        return self._sentence_ends

    def _sentence(self, pos: int) -> tuple[int, int]:
        ends = self.sentence_ends
        i = bisect.bisect_right(ends, pos)
        return (ends[i - 1] if i else 0), (ends[i] if i < len(ends) else len(self.masked))

    def clause(self, start: int, end: int) -> tuple[int, int]:
        """The clause around [start, end): clause breaks are looked for within its sentence only."""
        lo, hi = self._sentence(start)
        breaks = self._breaks.get(lo)
        if breaks is None:
            breaks = self._breaks[lo] = [(m.start(), m.end()) for m in _CLAUSE_END.finditer(self.masked, lo, hi)]
        for b_start, b_end in breaks:
            if b_end <= start:
                lo = b_end
            elif b_start >= end:
                return lo, b_start
        return lo, hi

    def sentence_start(self, start: int) -> bool:
        lo, _ = self._sentence(start)
        return bool(_LEAD.match(self.masked[lo:start]))

    def labelled(self, start: int, end: int) -> bool:
        """Set off as a label: emphasised or linked in the original, or followed by ':' or a dash."""
        before = self.original[start - 1] if start else ""
        after = self.original[end] if end < len(self.original) else ""
        if before in "*_[`" and after in "*_]`":
            return True
        return bool(_LABEL_AFTER.match(self.original[end:end + 8]))

    def negated(self, start: int, end: int) -> bool:
        lo, hi = self.clause(start, end)
        prefix = self.masked[lo:start]
        cue = _NEG_BEFORE.search(prefix)
        if cue and not _IF.search(prefix[: cue.start()]):
            return True
        rest = self.masked[end:hi]
        if _POSSESSIVE.match(rest):
            return False
        return bool(_NEG_AFTER.match(rest))


class Matcher:
    """Finds a project's tracked brands in answers; build once per set of brands, use for many answers."""

    def __init__(self, brands: Sequence[BrandTerms]) -> None:
        self.brands = list(brands)
        self._by_domain: dict[str, list[int]] = {}  # domain -> indexes of the brands it is a domain of
        for i, b in enumerate(self.brands):
            for d in b.domains:
                self._by_domain.setdefault(d, []).append(i)
        entries: list[tuple[str, int, bool]] = []  # (term, brand index, matched as written)
        owner: dict[tuple[str, bool], int] = {}
        for i, b in enumerate(self.brands):
            for term in b.terms():
                exact = _case_sensitive(term, b.match_case)
                key = (term if exact else term.casefold(), exact)
                if key in owner:  # the same term for two brands: the first one (the caller's order) keeps it
                    continue
                owner[key] = i
                entries.append((term, i, exact))
        # Longest first: at a given position the longest term wins ("Acme Cloud" before "Acme").
        entries.sort(key=lambda e: (-len(e[0]), e[0]))
        self._entries = entries
        if entries:
            alts = "|".join(
                f"({_term_regex(t)})" if exact else f"((?i:{_term_regex(t)}))" for t, _, exact in entries
            )
            # A leading class of every term's possible first characters: most positions fail on it at
            # once, before the boundary look-behinds and the alternatives (3x faster on real answers).
            first = sorted({c for t, _, exact in entries for c in ((t[0],) if exact else (t[0].lower(), t[0].upper()))})
            lead = "[" + "".join(re.escape(c) for c in first) + "]"
            self._pattern: re.Pattern[str] | None = re.compile(f"(?={lead}){_BEFORE}(?:{alts}){_AFTER}")
        else:
            self._pattern = None

    def _scan(self, text: str) -> list[tuple[int, int, int, bool]]:
        """(brand index, start, end, negated) of every occurrence, in order."""
        if self._pattern is None or not text:
            return []
        t = _Text(text)
        found: list[tuple[int, int, int, bool]] = []
        for m in self._pattern.finditer(t.masked):
            assert m.lastindex is not None
            term, index, _ = self._entries[m.lastindex - 1]
            start, end = m.span()
            if _everyday(term) and t.sentence_start(start) and not t.labelled(start, end):
                continue
            found.append((index, start, end, t.negated(start, end)))
        return found

    def occurrences(self, text: str) -> list[Occurrence]:
        """Every occurrence of a tracked brand in ``text``, negated ones included, in order."""
        return [Occurrence(self.brands[i].id, start, end, neg) for i, start, end, neg in self._scan(text)]

    def mentions(self, text: str | None, sources: Iterable[Source] = ()) -> list[BrandMention]:
        """One :class:`BrandMention` per brand mentioned, negated or on the answer's sources; rank 1 is
        the brand whose first counted occurrence comes first."""
        n = len(self.brands)
        counts = [0] * n
        first: list[int | None] = [None] * n
        negated = [0] * n
        order: list[int] = []
        for i, start, _, neg in self._scan(text or ""):
            if neg:
                negated[i] += 1
            else:
                if not counts[i]:
                    first[i] = start
                    order.append(i)
                counts[i] += 1
        cited = [False] * n
        retrieved = [False] * n
        for s in sources:
            if not s.domain or is_redirect_host(s.domain):
                continue
            labels = s.domain.lower().removeprefix("www.").split(".")
            for k in range(len(labels)):  # docs.acme.com: docs.acme.com, acme.com, com
                for i in self._by_domain.get(".".join(labels[k:]), ()):
                    (cited if s.cited else retrieved)[i] = True
        rank = {i: r for r, i in enumerate(order, start=1)}  # occurrences come in text order
        return [
            BrandMention(brand_id=b.id, mention_count=counts[i], first_offset=first[i], rank=rank.get(i),
                         cited=cited[i], retrieved=retrieved[i] and not cited[i], negated_count=negated[i])
            for i, b in enumerate(self.brands)
            if counts[i] or negated[i] or cited[i] or retrieved[i]
        ]
