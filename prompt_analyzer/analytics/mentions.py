"""Which tracked brands an answer mentions: pure, no I/O, one compiled pattern per set of brands.

The rule (docs/metrics.md, "Mentions", states it with its limits):

1. **Markup is masked, not removed**: link targets, bare URLs, images, HTML tags, reference definitions
   and emphasis underscores become spaces of the same length, so offsets stay offsets into the stored
   ``response_text`` (``[Acme](https://toolbox.com)`` keeps ``Acme``; the URL's ``toolbox`` is gone).
2. **Whole words at Unicode word boundaries**: a term matches where neither neighbour is a letter, digit,
   underscore or combining mark ("Box" is not in "toolbox", "Dropbox" or "box_size"); a letter of a script
   written without spaces (CJK, kana, hangul, Thai) counts as a boundary, since those scripts have none.
   Spaces inside a term match any run of whitespace; straight and curly apostrophes match each other.
3. **Case-insensitive**, except for *ambiguous* terms with cased letters: an everyday word
   (:mod:`.common_words`: "you", "zoom", "box"), a term of one or two characters, or any term of a brand
   marked ``match_case``.  Those
   match only as written ("Zoom", not "zoom in"), and a match at the start of a sentence, where every word
   is capitalised, counts only when it is set off as a label: bold, italic, a link's text, or followed by
   ``:`` or a dash ("1. **Zoom** – video calls").
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
from dataclasses import dataclass, field

from .common_words import COMMON_WORDS

__all__ = [
    "MATCHER_VERSION", "REDIRECT_HOSTS", "BrandMention", "BrandTerms", "Matcher", "Occurrence", "Source",
    "domain_matches", "mask_markup", "normalize_domain",
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


def mask_markup(text: str) -> str:
    """``text`` with markup and URLs replaced by spaces: the same length, the same offsets."""
    chars = list(text)

    def blank(start: int, end: int) -> None:
        chars[start:end] = " " * (end - start)

    for pattern in _MASK_ALL[:2]:  # images and definitions before links: they contain link syntax
        for m in pattern.finditer(text):
            blank(m.start(), m.end())
    masked = "".join(chars)
    for pattern in _LINKS:
        for m in pattern.finditer(masked):
            blank(m.start(), m.start(1))
            blank(m.end(1), m.end())
        masked = "".join(chars)
    for pattern in _MASK_ALL[2:]:
        for m in pattern.finditer(masked):
            blank(m.start(), m.end())
        masked = "".join(chars)
    return masked


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


def _is_redirect(host: str) -> bool:
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


def _ambiguous(term: str, match_case: bool) -> bool:
    """Matched only as written: a term whose case says something (it has cased letters; "华为" has none)
    and that is an everyday word, one or two characters long, or of a brand marked match_case."""
    if term.lower() == term.upper():
        return False
    return match_case or len(term) <= 2 or (" " not in term and term.casefold() in COMMON_WORDS)


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


@dataclass(slots=True)
class _Text:
    original: str
    masked: str
    clause_ends: list[int] = field(default_factory=list)  # sorted ends of clause separators
    clause_starts: list[int] = field(default_factory=list)
    sentence_ends: list[int] = field(default_factory=list)

    @classmethod
    def of(cls, text: str) -> _Text:
        masked = mask_markup(text)
        t = cls(text, masked)
        for m in _CLAUSE_END.finditer(masked):
            t.clause_starts.append(m.start())
            t.clause_ends.append(m.end())
        t.sentence_ends = [m.end() for m in _SENTENCE_END.finditer(masked)]
        return t

    def clause(self, start: int, end: int) -> tuple[int, int]:
        i = bisect.bisect_right(self.clause_ends, start)
        lo = self.clause_ends[i - 1] if i else 0
        j = bisect.bisect_left(self.clause_starts, end)
        hi = self.clause_starts[j] if j < len(self.clause_starts) else len(self.masked)
        return lo, hi

    def sentence_start(self, start: int) -> bool:
        i = bisect.bisect_right(self.sentence_ends, start)
        lo = self.sentence_ends[i - 1] if i else 0
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
        entries: list[tuple[str, uuid.UUID, bool]] = []
        owner: dict[tuple[str, bool], uuid.UUID] = {}
        for b in self.brands:
            for term in b.terms():
                amb = _ambiguous(term, b.match_case)
                key = (term if amb else term.casefold(), amb)
                if key in owner:  # the same term for two brands: the first one (the caller's order) keeps it
                    continue
                owner[key] = b.id
                entries.append((term, b.id, amb))
        # Longest first: at a given position the longest term wins ("Acme Cloud" before "Acme").
        entries.sort(key=lambda e: (-len(e[0]), e[0]))
        self._entries = entries
        if entries:
            alts = "|".join(
                f"({_term_regex(t)})" if amb else f"((?i:{_term_regex(t)}))" for t, _, amb in entries
            )
            self._pattern: re.Pattern[str] | None = re.compile(f"{_BEFORE}(?:{alts}){_AFTER}")
        else:
            self._pattern = None

    def occurrences(self, text: str) -> list[Occurrence]:
        """Every occurrence of a tracked brand in ``text``, negated ones included, in order."""
        if self._pattern is None or not text:
            return []
        t = _Text.of(text)
        found: list[Occurrence] = []
        for m in self._pattern.finditer(t.masked):
            assert m.lastindex is not None
            _, brand_id, amb = self._entries[m.lastindex - 1]
            start, end = m.span()
            if amb and t.sentence_start(start) and not t.labelled(start, end):
                continue
            found.append(Occurrence(brand_id, start, end, t.negated(start, end)))
        return found

    def mentions(self, text: str | None, sources: Iterable[Source] = ()) -> list[BrandMention]:
        """One :class:`BrandMention` per brand mentioned, negated or on the answer's sources; rank 1 is
        the brand whose first counted occurrence comes first."""
        counts: dict[uuid.UUID, list[int]] = {}
        negated: dict[uuid.UUID, int] = {}
        for o in self.occurrences(text or ""):
            if o.negated:
                negated[o.brand_id] = negated.get(o.brand_id, 0) + 1
            else:
                counts.setdefault(o.brand_id, []).append(o.start)
        cited: set[uuid.UUID] = set()
        retrieved: set[uuid.UUID] = set()
        srcs = [s for s in sources if s.domain and not _is_redirect(s.domain)]
        for b in self.brands:
            for s in srcs:
                if any(domain_matches(s.domain, d) for d in b.domains):
                    (cited if s.cited else retrieved).add(b.id)
        order = sorted(counts, key=lambda bid: counts[bid][0])
        rank = {bid: i for i, bid in enumerate(order, start=1)}
        out = []
        for b in self.brands:
            n = len(counts.get(b.id, ()))
            if n or b.id in negated or b.id in cited or b.id in retrieved:
                out.append(BrandMention(
                    brand_id=b.id, mention_count=n, first_offset=counts[b.id][0] if n else None,
                    rank=rank.get(b.id), cited=b.id in cited, retrieved=b.id in retrieved and b.id not in cited,
                    negated_count=negated.get(b.id, 0),
                ))
        return out
