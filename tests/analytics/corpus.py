"""A corpus of answers written for the tests, with the brand mentions a careful reader counts in each.

``expected`` is the truth as a person reads the sentence (not what the matcher does): how many times each
brand is really mentioned.  ``negated`` is how many occurrences say the brand could not be found or is
unknown (a person does not count them).  Where the matcher is known to disagree with the reader (the limits
docs/metrics.md states), the case is listed in :data:`KNOWN_MISSES`, with the reason; the tests check that
the disagreements are exactly those, and report precision and recall.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from prompt_analyzer.analytics.mentions import BrandTerms


def _id(n: int) -> uuid.UUID:
    return uuid.UUID(int=0xC0FFEE000000 + n)


BRANDS: dict[str, BrandTerms] = {
    b.name: b for b in (
        BrandTerms(_id(1), "Acme", ("ACME Corp",), ("acme.com",)),
        BrandTerms(_id(2), "Acme Cloud"),
        BrandTerms(_id(3), "Box", (), ("box.com",)),
        BrandTerms(_id(4), "Zoom", (), ("zoom.us",)),
        BrandTerms(_id(5), "You", ("You.com",), ("you.com",)),
        BrandTerms(_id(6), "Notion", (), ("notion.so",)),
        BrandTerms(_id(7), "Globex", ("Globex Corporation",), ("globex.io",)),
        BrandTerms(_id(8), "Initech"),
        BrandTerms(_id(9), "Müller Analytik", ("Mueller Analytik",)),
        BrandTerms(_id(10), "Škoda", ("Skoda",)),
        BrandTerms(_id(11), "华为", ("Huawei",)),
        BrandTerms(_id(12), "McDonald's"),
    )
}
NAMES = {b.id: n for n, b in BRANDS.items()}


@dataclass(frozen=True)
class Case:
    id: str
    text: str
    expected: dict[str, int] = field(default_factory=dict)  # brand -> real mentions
    negated: dict[str, int] = field(default_factory=dict)  # brand -> "not found / unknown" occurrences
    trap: str = ""


CASES: tuple[Case, ...] = (
    # substrings
    Case("toolbox", "I keep a toolbox in the garage.", trap="substring"),
    Case("dropbox", "Dropbox and Box both offer file sync.", {"Box": 1}, trap="substring"),
    Case("snake", "The acme_config file sets defaults for acmeville.", trap="substring"),
    Case("hyphen", "Acme-powered dashboards are common.", {"Acme": 1}, trap="substring"),
    # case
    Case("case", "We compared ACME, acme and Acme.", {"Acme": 3}, trap="case"),
    Case("lower-common", "Put the cables in a box and zoom out.", trap="case"),
    Case("caps-common", "ZOOM IN to view the chart.", trap="case"),
    # aliases and overlapping names
    Case("alias", "ACME Corp announced a new plan.", {"Acme": 1}, trap="alias"),
    Case("longest", "Acme Cloud beats Globex Corporation on price.", {"Acme Cloud": 1, "Globex": 1}, trap="alias"),
    Case("domain-term", "Visit acme.com or zoom.us for details.", {"Acme": 1, "Zoom": 1}, trap="alias"),
    # negation
    Case("neg-find", "I couldn't find Acme in any recent review.", negated={"Acme": 1}, trap="negation"),
    Case("neg-but", "I could not find any information about Globex, but Acme is well reviewed.",
         {"Acme": 1}, {"Globex": 1}, trap="negation"),
    Case("neg-called", "There is no company called Initech that I know of.", negated={"Initech": 1},
         trap="negation"),
    Case("neg-unknown", "Acme is unknown to me.", negated={"Acme": 1}, trap="negation"),
    Case("possessive", "Acme's pricing is unknown.", {"Acme": 1}, trap="negation"),
    Case("neg-found", "Initech could not be found in the registry.", negated={"Initech": 1}, trap="negation"),
    Case("neg-exist", "Globex doesn't appear to exist anymore; Acme does.", {"Acme": 1}, {"Globex": 1},
         trap="negation"),
    Case("neg-while", "The author has never heard of Globex, while Acme is widely known.", {"Acme": 1},
         {"Globex": 1}, trap="negation"),
    Case("if-guard", "If you can't find Acme in your region, Globex ships worldwide.", {"Acme": 1, "Globex": 1},
         trap="negation"),
    Case("than", "I couldn't find a cheaper option than Globex.", {"Globex": 1}, trap="negation"),
    Case("better-than", "No tool is better than Acme for this.", {"Acme": 1}, trap="negation"),
    Case("unlike", "Unlike Acme, Globex is unknown to most buyers.", {"Acme": 1}, {"Globex": 1}, trap="negation"),
    # brands named like common words
    Case("you-pronoun", "You can zoom in on the chart to see more.", trap="common word"),
    Case("you-start", "You should compare pricing first.", trap="common word"),
    Case("you-brand", "Video tools like Zoom and Google Meet dominate; You.com is a search engine.",
         {"Zoom": 1, "You": 1}, trap="common word"),
    Case("zoom-start", "Zoom is the most used video tool.", {"Zoom": 1}, trap="common word"),
    Case("box-start", "Box offers secure sharing.", {"Box": 1}, trap="common word"),
    Case("box-bold", "**Box** offers secure sharing.", {"Box": 1}, trap="common word"),
    Case("label-list", "1. **Zoom** – the default for large meetings\n2. **Notion** – docs and wikis",
         {"Zoom": 1, "Notion": 1}, trap="common word"),
    Case("notion-word", "I have a notion that prices will rise.", trap="common word"),
    Case("colon", "Our pick: Zoom.", {"Zoom": 1}, trap="common word"),
    Case("box-office", "The Box Office numbers were strong.", trap="common word"),
    Case("thank-you", "Thank You for reading.", trap="common word"),
    Case("list-start", "Notion, Acme and Zoom are popular.", {"Notion": 1, "Acme": 1, "Zoom": 1},
         trap="common word"),
    Case("quoted", "Is there a notion of 'box' in Acme?", {"Acme": 1}, trap="common word"),
    # markdown and links
    Case("link", "[Acme](https://acme.com/toolbox) is a good choice, see https://box.com/pricing for Box.",
         {"Acme": 1, "Box": 1}, trap="markdown"),
    Case("image", "![Globex logo](https://globex.io/logo.png) Pick a plan that fits.", trap="markdown"),
    Case("html", 'Try Acme <a href="https://globex.io">here</a>.', {"Acme": 1}, trap="markdown"),
    Case("refs", "Acme (see [1]) and Globex [2] lead the market.\n\n[1]: https://globex.io/acme", {"Acme": 1,
         "Globex": 1}, trap="markdown"),
    Case("heading", "## Acme\nAcme offers a **free tier**; _Globex_ does not.", {"Acme": 2, "Globex": 1},
         trap="markdown"),
    # unicode names
    Case("umlaut", "Müller Analytik and Mueller Analytik are the same firm.", {"Müller Analytik": 2},
         trap="unicode"),
    Case("caron", "Škoda and Skoda owners rate them highly.", {"Škoda": 2}, trap="unicode"),
    Case("cjk", "华为和Acme都很受欢迎。", {"华为": 1, "Acme": 1}, trap="unicode"),
    Case("cjk-alias", "Huawei's phones sell well.", {"华为": 1}, trap="unicode"),
    Case("apostrophe", "McDonald\u2019s and McDonald's are the same chain.", {"McDonald's": 2}, trap="unicode"),
    # several brands in one sentence (ranks)
    Case("three", "Acme and Globex both integrate with Notion.", {"Acme": 1, "Globex": 1, "Notion": 1},
         trap="two brands"),
    Case("two-brands", "Globex is cheaper than Acme, and Acme Cloud is cheaper still.",
         {"Globex": 1, "Acme": 1, "Acme Cloud": 1}, trap="two brands"),
)

# Where the matcher disagrees with the reader, and why (docs/metrics.md, "Limits").
KNOWN_MISSES: dict[str, str] = {
    "zoom-start": "an everyday-word brand at the start of a sentence, not set off as a label, is not counted",
    "box-start": "same rule",
    "list-start": "same rule (Notion opens the sentence)",
    "box-office": "an everyday-word brand capitalised mid-sentence is counted (Box Office)",
    "thank-you": "same rule (Thank You)",
    "unlike": "the after-cue 'is unknown' within three words also negates the brand before it (Acme)",
}
