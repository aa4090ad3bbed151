"""Deterministic simulated answers: the same prompt always gets the same text and sources.

Each answer names 3-5 sources from a fixed list of real-looking domains. URLs deliberately carry the
quirks real answers have (``www.`` hosts, ``utm_*`` parameters, ``#fragments``, one source cited twice
and one retrieved but never cited) so the project's URL normalisation and cited/retrieved split run on
every simulated answer.
"""

from __future__ import annotations

import hashlib
import random
import re
from dataclasses import dataclass

# (host, path prefix, site name). Hosts with and without "www." on purpose.
_SOURCES: tuple[tuple[str, str, str], ...] = (
    ("en.wikipedia.org", "/wiki/", "Wikipedia"),
    ("www.britannica.com", "/topic/", "Britannica"),
    ("www.reuters.com", "/business/", "Reuters"),
    ("apnews.com", "/article/", "AP News"),
    ("www.nytimes.com", "/2025/06/12/technology/", "The New York Times"),
    ("www.theverge.com", "/reviews/", "The Verge"),
    ("techcrunch.com", "/2025/03/04/", "TechCrunch"),
    ("www.forbes.com", "/advisor/", "Forbes Advisor"),
    ("www.investopedia.com", "/terms/", "Investopedia"),
    ("www.nerdwallet.com", "/article/", "NerdWallet"),
    ("www.healthline.com", "/health/", "Healthline"),
    ("www.mayoclinic.org", "/healthy-lifestyle/", "Mayo Clinic"),
    ("www.g2.com", "/categories/", "G2"),
    ("www.capterra.com", "/resources/", "Capterra"),
    ("www.pcmag.com", "/picks/", "PCMag"),
    ("www.cnet.com", "/tech/", "CNET"),
    ("www.bbc.com", "/news/articles/", "BBC News"),
    ("www.theguardian.com", "/technology/", "The Guardian"),
    ("stackoverflow.com", "/questions/tagged/", "Stack Overflow"),
    ("github.com", "/topics/", "GitHub"),
    ("www.reddit.com", "/r/explainlikeimfive/comments/", "Reddit"),
    ("hbr.org", "/2025/05/", "Harvard Business Review"),
    ("www.statista.com", "/topics/", "Statista"),
    ("www.wired.com", "/story/", "WIRED"),
)

_MARKER = re.compile(r"\[\[sim:[^\]]*\]\]")
_WORD = re.compile(r"[^\W_]+")  # Unicode words: a "café" prompt keeps its é (byte offsets differ)

_CLAIMS: tuple[str, ...] = (
    "{site} describes {topic} as a fast-moving area where the leading options differ mostly in price and support",
    "According to {site}, most people comparing {topic} weigh reliability before features",
    "{site} reports that adoption of {topic} grew steadily over the last two years",
    "A review on {site} recommends starting with a short list of three candidates for {topic}",
    "{site} notes that costs for {topic} vary widely by region and plan",
    "Experts quoted by {site} say the best choice for {topic} depends on the use case",
    "{site} ranks ease of use as the top factor in recent surveys about {topic}",
    "{site} points out common pitfalls with {topic}, such as hidden fees and lock-in",
)

_FILLER = (
    " In more detail, the sources agree on the broad picture but differ on specifics, so it is worth "
    "checking current figures before deciding; prices, availability and rankings change often."
)


@dataclass(frozen=True, slots=True)
class Source:
    url: str
    title: str
    domain: str  # bare domain, as Gemini reports it
    site: str
    snippet: str
    date: str


@dataclass(frozen=True, slots=True)
class Sentence:
    text: str
    source: int | None  # index into Answer.sources, None: uncited


@dataclass(frozen=True, slots=True)
class Answer:
    """What the simulated model says: sentences (some citing a source) plus everything retrieved."""

    topic: str
    sentences: tuple[Sentence, ...]
    sources: tuple[Source, ...]  # retrieved, in order; the last one is never cited
    queries: tuple[str, ...]
    filler: str  # padding appended after the sentences (answer_bytes)

    @property
    def cited(self) -> tuple[int, ...]:
        return tuple(s.source for s in self.sentences if s.source is not None)


def strip_markers(prompt: str) -> str:
    """The prompt without ``[[sim:...]]`` markers (they steer the simulator, not the answer)."""
    return _MARKER.sub("", prompt).strip()


def prompt_hash(prompt: str) -> str:
    """sha256(prompt)[:16]: the key of ``/_sim/stats`` ``answered``."""
    return hashlib.sha256(prompt.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def _topic(prompt: str) -> str:
    words = _WORD.findall(strip_markers(prompt))
    return " ".join(words[:8]).lower() or "this question"


def make_answer(prompt: str, platform: str, seed: int, answer_bytes: int | None = None) -> Answer:
    """The deterministic answer to ``prompt`` on ``platform`` (seeded by a hash of both)."""
    clean = strip_markers(prompt)
    digest = hashlib.sha256(f"{seed}|{platform}|{clean}".encode("utf-8", "surrogatepass")).digest()
    rng = random.Random(int.from_bytes(digest[:8], "big"))
    topic = _topic(prompt)
    slug = "-".join(topic.split()[:6]) or "overview"
    n_cited = rng.randint(3, 5)
    picks = rng.sample(range(len(_SOURCES)), n_cited + 1)  # the extra one is retrieved-only
    sources: list[Source] = []
    for i, idx in enumerate(picks):
        host, prefix, site = _SOURCES[idx]
        url = f"https://{host}{prefix}{slug}"
        if platform == "openai":
            url += "?utm_source=openai"  # what OpenAI really appends
        elif i % 3 == 1:
            url += "?utm_source=chatgpt.com&utm_medium=referral"
        if i % 3 == 2:
            url += "#overview"
        domain = host.removeprefix("www.")
        title = f"{topic.title()} \u2013 {site}"  # en dash: non-ASCII on purpose (byte offsets)
        snippet = f"{site} on {topic}: an overview of options, costs and what to look for."
        date = f"2025-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        sources.append(Source(url=url, title=title, domain=domain, site=site, snippet=snippet, date=date))
    claims = rng.sample(_CLAIMS, n_cited + 1)
    sentences: list[Sentence] = [Sentence(f"Here\u2019s a short overview of {topic}.", None)]
    for i in range(n_cited):
        sentences.append(Sentence(claims[i].format(site=sources[i].site, topic=topic) + ".", i))
    # The first source once more: the same URL cited twice in one answer.
    sentences.append(Sentence(claims[n_cited].format(site=sources[0].site, topic=topic) + ".", 0))
    sentences.append(Sentence("Compare a few options against your own needs before deciding.", None))
    filler = ""
    if answer_bytes:
        natural = sum(len(s.text.encode()) + 1 for s in sentences)
        missing = answer_bytes - natural
        if missing > 0:
            unit = _FILLER.encode()
            filler = (unit * (missing // len(unit) + 1))[:missing].decode("ascii")
    queries = (topic, f"{topic} comparison {2025 + rng.randint(0, 1)}")
    return Answer(topic=topic, sentences=tuple(sentences), sources=tuple(sources), queries=queries, filler=filler)


def estimate_tokens(text: str) -> int:
    """About four characters a token, as the providers' tokenizers average on English."""
    return max(1, len(text) // 4)
