"""`analyze brands`, `analyze score` and the scoring at the end of `analyze run`, as subprocesses against the
simulator and a real PostgreSQL."""

from __future__ import annotations

import json
import re
from pathlib import Path

from ..harness import PROJECT, Env


async def _brands(env: Env) -> None:
    for args in (["Wikipedia", "--domain", "wikipedia.org", "--own"], ["Reuters", "-d", "https://www.reuters.com/"],
                 ["G2", "-d", "g2.com"]):
        r = await env.analyze("brands", "add", "--project", str(PROJECT), *args)
        assert r.code == 0, r.stderr


async def test_a_run_scores_its_answers_and_score_rescores_after_an_alias_change(env: Env) -> None:
    await _brands(env)
    await env.add_prompts([f"best crm for startups number {i}" for i in range(6)])
    r = await env.analyze("run", "--key", "k1", "--json")
    assert r.code == 0, r.stderr
    batch = r.json()["batch_id"]
    answers = await env.store.fetchall(
        """SELECT r.id, r.response_text,
                  EXISTS (SELECT 1 FROM ai_response_citations c WHERE c.ai_response_id = r.id AND c.cited
                          AND (c.domain = 'wikipedia.org' OR c.domain LIKE '%%.wikipedia.org')) AS cites_wiki
           FROM ai_responses r WHERE r.status = 'success'""")
    assert len(answers) == 24
    mentions = {(m["ai_response_id"], m["name"]): m for m in await env.store.fetchall(
        """SELECT m.*, b.name FROM ai_response_mentions m JOIN tracked_brands b ON b.id = m.brand_id""")}
    named = 0
    for a in answers:
        m = mentions.get((a["id"], "Wikipedia"))
        says = re.search(r"\bWikipedia\b", a["response_text"]) is not None
        named += says
        assert (m is not None and m["mention_count"] > 0) == says, a["response_text"][:200]
        assert (m is not None and m["cited"]) == a["cites_wiki"]
    assert named > 0  # the simulator names its sources: some answers name Wikipedia
    runs = await env.store.fetchall("SELECT trigger, batch_id::text AS batch, answers FROM mention_score_runs "
                                    "ORDER BY id")
    # each `brands add` rescored the (empty) history, then the run scored its batch
    assert [(x["trigger"], x["batch"], x["answers"]) for x in runs] == [("score", None, 0)] * 3 + [("run", batch, 24)]

    # An alias the answers use ("Stack Overflow" is a simulator source): the project's history is rescored.
    r = await env.analyze("brands", "update", "--project", str(PROJECT), "Reuters", "--alias", "Stack Overflow")
    assert r.code == 0, r.stderr
    assert "24 rescored because the brands changed since they were scored" in r.stderr
    said = await env.store.fetchone(
        "SELECT count(*) AS n FROM ai_responses WHERE status = 'success' AND response_text ~ 'Stack Overflow'")
    assert said is not None
    if said["n"]:
        assert "history changed" in r.stderr and "Reuters +" in r.stderr

    # `analyze score --batch KEY --json`: nothing changed since, and it says so.
    r = await env.analyze("score", "--batch", "k1", "--json")
    assert r.code == 0, r.stderr
    assert json.loads(r.stdout) | {"run_id": 0} == {"run_id": 0, "answers": 24, "first_time": 0, "rescored": 0,
                                                    "changed": 0, "mentions": json.loads(r.stdout)["mentions"],
                                                    "changes": {}}


async def test_brand_commands_and_their_errors(env: Env, tmp_path: Path) -> None:
    p = str(PROJECT)
    r = await env.analyze("brands", "add", "--project", p, "Acme", "-a", "ACME Corp", "-d", "acme.com", "--own",
                          "--no-score")
    assert r.code == 0 and "not rescored" in r.stderr
    # the same name in another case, an alias another brand has, a bad domain: one line, exit 2
    for args, needle in ((["acme"], "already exists"), (["Acme Labs", "-a", "acme corp"], "already a name or alias"),
                         (["Foo", "-d", "vertexaisearch.cloud.google.com"], "grounding redirect"),
                         (["Foo", "-d", "not a domain"], "not a domain"), (["  "], "brand name is empty")):
        r = await env.analyze("brands", "add", "--project", p, *args)
        assert r.code == 2 and r.stderr.count("error:") == 1 and needle in r.stderr, (args, r.stderr)
    bad = tmp_path / "brands.csv"
    bad.write_text(f"project_id,name,aliases,domains,own\n{p},Globex,Globex Corp;GX,globex.io,no\n"
                   f"{p},,x,,\nnope,Foo,,,\n{p},Initech,,initech,\n{p},globex corp,,,\n")
    r = await env.analyze("brands", "import", str(bad))
    assert r.code == 2, r.stderr
    assert "4 bad line(s), nothing imported" in r.stderr
    for line in ("line 3: name is missing", "line 4: project_id is not a UUID", "line 5: not a domain",
                 "line 6: 'globex corp' is already named by brand 'Globex'"):
        assert line in r.stderr, r.stderr
    good = tmp_path / "brands.jsonl"
    good.write_text(json.dumps({"project_id": p, "name": "Globex", "aliases": ["Globex Corp"],
                                "domains": ["globex.io"]}) + "\n" +
                    json.dumps({"project_id": p, "name": "Müller Analytik", "own": False}) + "\n")
    r = await env.analyze("brands", "import", str(good))
    assert r.code == 0 and "imported 2 brands" in r.stdout, r.stderr
    # importing a brand that exists: nothing imported
    r = await env.analyze("brands", "import", str(good))
    assert r.code == 2 and "already exists" in r.stderr and "nothing imported" in r.stderr
    r = await env.analyze("brands", "list", "--project", p, "--json")
    listed = json.loads(r.stdout)["brands"]
    assert [(b["name"], b["own"], b["aliases"], b["domains"]) for b in listed] == [
        ("Acme", True, ["ACME Corp"], ["acme.com"]), ("Globex", False, ["Globex Corp"], ["globex.io"]),
        ("Müller Analytik", False, [], [])]
    r = await env.analyze("brands", "remove", "Globex")
    assert r.code == 0 and "removed Globex" in r.stdout
    r = await env.analyze("brands", "remove", "Globex")
    assert r.code == 2 and "no brand 'Globex'" in r.stderr
    r = await env.analyze("score", "--batch", "nope")
    assert r.code == 2 and "no batch 'nope'" in r.stderr
    r = await env.analyze("score", "--since", "yesterday")
    assert r.code == 2 and "--since must be a date" in r.stderr
    r = await env.analyze("score", "--since", "2026-01-01", "--batch", "x")
    assert r.code == 2 and "not both" in r.stderr
