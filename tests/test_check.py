"""scifi-llm check, the names layer: near misses of the lore's names, and names the lore does not know."""

import json
import shutil
from pathlib import Path

from scifi_llm.check import KnownNames, name_findings

NAMES = KnownNames(
    {
        "Elena Voss": "characters/elena_voss.md",
        "Ebere Okafor": "characters/ebere_okafor.md",
        "Nadia Harlan": "characters/nadia_harlan.md",
        "Harlan-Okafor Works": "places/works.md",
        "Ashgrove Wren": "ships/ashgrove_wren.md",
        "Berths": "places/harrow_station.md",
    }
)


def test_a_near_miss_is_a_finding_with_the_name_the_lore_means():
    draft = "\n".join(
        [
            "Elena Vos walked in. Later Elena Voss sat down.",  # one letter off, then right
            "The crate came from Harlan Okafor Works.",  # a dropped hyphen
            "Ebere Harlan's statue stood at the gate.",  # a known first name, another's surname
            "She boarded the Ashgrove Wrenn at dawn.",
            "The Berth was empty, and Imogen Tell waited by it.",  # singular of a known plural; a new name
        ]
    )
    found = {
        (f.line, f.text, f.expected) for f in name_findings(draft, "c.md", NAMES, {}) if f.kind == "name"
    }
    assert found == {
        (1, "Elena Vos", "Elena Voss"),
        (2, "Harlan Okafor Works", "Harlan-Okafor Works"),
        (3, "Ebere Harlan", "Nadia Harlan"),
        (4, "Ashgrove Wrenn", "Ashgrove Wren"),
    }
    unknown = {f.text for f in name_findings(draft, "c.md", NAMES, {}) if f.kind == "not in lore"}
    assert "Imogen Tell" in unknown and "Later" not in unknown


def test_check_exits_1_on_a_contradiction_0_when_clean_and_2_on_an_error(cli, example_workspace, tmp_path):
    wrong, clean = tmp_path / "wrong.md", tmp_path / "clean.md"
    wrong.write_text("In the hold, Elena Vos flexed her arm and said nothing to Hollis Brant.\n")
    clean.write_text("In the hold, Elena Voss flexed her arm and said nothing to Hollis Brandt.\n")
    found = cli("check", str(wrong), "--json", workspace=example_workspace)
    assert found.exit_code == 1, found.stderr
    rows = [json.loads(line) for line in found.stdout.splitlines()]
    assert {(row["text"], row["expected"], row["line"]) for row in rows if row["kind"] == "name"} == {
        ("Elena Vos", "Elena Voss", 1),
        ("Hollis Brant", "Hollis Brandt", 1),
    }
    assert cli("check", str(clean), workspace=example_workspace).exit_code == 0
    missing = cli("check", str(tmp_path / "nowhere.md"), workspace=example_workspace)
    assert missing.exit_code == 2 and "nowhere.md" in missing.stderr


DRAFT = """---
story_date: 2417-06-01
title: Test chapter
---
# Test chapter

Ninety thousand people lived in the caverns under the ice of Hesper.

Some sixty-one thousand people lived in the caverns under the ice, and all of them were cold.

Hollis Brandt ran a hand down his black beard and said nothing.

Hollis Brandt ran a hand down his white beard and said nothing.

Captain Aurel Sandoval came aboard without knocking.

Commander Aurel Sandoval came aboard without knocking.

Oona Farrow sat at the desk in Scale Hall. She leaned on a cane of black ironwood.

Oona Farrow and Elena Voss sat down together. She leaned on a cane of black ironwood.

Tomas Adeyemi was thirty-three, and a Regatta champion.

Tomas Adeyemi was twenty-nine, and a Regatta champion.

"The Glasswrights were founded on Tern Street in 2379," Ilka said.

Anselm Tay stood at the rail of the *Patient Hour*, leaning on a stick.

Maud remembered how Anselm Tay stood at the rail in the old days.
"""


def _found(example_workspace, tmp_path, text=DRAFT, kinds=None):
    from scifi_llm.check import KINDS, check_drafts

    draft = tmp_path / "chapter.md"
    draft.write_text(text)
    return check_drafts(example_workspace, [draft], kinds or KINDS)


def test_facts_a_changed_number_colour_or_rank_is_found_with_the_notes_own_words(example_workspace, tmp_path):
    findings = [f for f in _found(example_workspace, tmp_path) if f.kind in ("number", "attribute", "title")]
    assert {(f.line, f.kind) for f in findings} == {
        (7, "number"),
        (11, "attribute"),
        (15, "title"),
        (19, "attribute"),
        (21, "attribute"),  # the lore's only cane, in a paragraph that names its owner
    }
    for finding in findings:  # the quote is the note's sentence, as the note writes it
        note = (example_workspace.lore_dir / finding.source).read_text()
        assert finding.quote and finding.quote.replace("*", "") in note.replace("*", "")
    by_line = {f.line: f for f in findings}
    assert "61,000" in by_line[7].expected and by_line[7].source == "places/hesper.md"
    assert by_line[15].expected == "commander"
    assert by_line[19].source == "characters/oona_farrow.md"  # "She" is Oona: the only woman named before it
    assert by_line[19].confidence > by_line[21].confidence  # where two women could be meant, "She" is no one


def test_a_pronoun_means_someone_only_where_one_person_of_that_gender_can_be_meant(example_workspace):
    from scifi_llm.check.reading import read_draft
    from scifi_llm.lore import open_facts

    draft = read_draft(DRAFT, "chapter.md", open_facts(example_workspace))
    meant = {sentence.line: sentence.meant for sentence in draft.sentences if sentence.text.startswith("She")}
    assert meant == {19: ("Oona Farrow",), 21: ()}


def test_timeline_ages_event_years_and_the_dead_acting(example_workspace, tmp_path):
    findings = {
        (f.line, f.kind): f for f in _found(example_workspace, tmp_path) if f.kind in ("timeline", "absent")
    }
    assert set(findings) == {(23, "timeline"), (27, "timeline"), (29, "absent")}
    assert findings[(23, "timeline")].expected == "28 to 29 in 2417"  # Tomas, born 2388
    assert findings[(27, "timeline")].expected == "2372"
    assert findings[(29, "absent")].expected == "died 2408"


def test_kinds_narrow_the_check_and_json_carries_the_quote(cli, example_workspace, tmp_path):
    draft = tmp_path / "chapter.md"
    draft.write_text(DRAFT)
    result = cli("check", str(draft), "--json", "--kinds", "title,absent", workspace=example_workspace)
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert result.exit_code == 1 and {row["kind"] for row in rows} == {"title", "absent"}
    assert all(row["quote"] and row["heading"] for row in rows)
    wrong = cli("check", str(draft), "--kinds", "vibes", workspace=example_workspace)
    assert wrong.exit_code == 2 and "vibes" in wrong.stderr


def test_the_planted_set_stays_above_its_floors(example_workspace):
    """perf/continuity/set1: 94 planted contradictions, 161 controls (perf/RESULTS.md has the figures)."""
    from scifi_llm.check import KINDS, check_drafts, load_plants, score

    plant_set = Path(__file__).resolve().parents[1] / "perf" / "continuity" / "set1"
    kinds = tuple(kind for kind in KINDS if kind != "not in lore")
    findings = check_drafts(example_workspace, sorted((plant_set / "chapters").glob("*.md")), kinds)
    figures = score(findings, load_plants(plant_set), plant_set, kinds)
    recall = {kind: figures["kinds"][kind]["recall"] for kind in kinds}
    floors = {"name": 0.8, "number": 0.5, "attribute": 0.7, "title": 0.3, "timeline": 0.35, "absent": 0.35}
    assert all(recall[kind] >= floor for kind, floor in floors.items()), recall
    assert figures["precision"] >= 0.9, figures


JUDGED_DRAFT = """# Judged

Elena Voss flexed the arm Ilka Marsh built her, its plating green enamel under the lamp.

Hollis Brandt counted the eel in the Kitchen and wrote the number down.

It rained all night on the hull.
"""


def _scripted_judge(messages):
    """A judge that quotes a real note sentence for the arm, plus two quotes that are not there."""
    prompt = messages[-1]["content"]
    if "green enamel" not in prompt:
        return json.dumps({"contradictions": []})
    notes = prompt.split("NOTES:", 1)[1].split("DRAFT:", 1)[0]
    real = next(
        line.strip() for line in notes.splitlines() if len(line.strip()) > 30 and not line.startswith("[")
    )
    return json.dumps(
        {
            "contradictions": [
                {
                    "draft_quote": "its plating green  enamel",
                    "note_quote": real,
                    "why": "the plating is slate-blue",
                },
                {
                    "draft_quote": "its plating green enamel",
                    "note_quote": "Tally is painted green",
                    "why": "made up",
                },
                {"draft_quote": "the arm is purple", "note_quote": real, "why": "not in the draft"},
            ]
        }
    )


def test_judged_findings_must_quote_both_texts_and_are_cached_by_paragraph(cli, example_workspace, tmp_path):
    from scifi_llm.check import judge_files
    from servers import ScriptedModel, serve_in_thread

    from conftest import free_port

    draft, cache = tmp_path / "chapter.md", tmp_path / "cache.json"
    draft.write_text(JUDGED_DRAFT)
    judge = ScriptedModel(_scripted_judge)
    with serve_in_thread(judge.app, free_port()) as url:
        first = judge_files(example_workspace, [draft], f"{url}/v1", cache)
        assert (first.paragraphs, first.cached, first.unverifiable, len(judge.asked)) == (2, 0, 2, 2)
        (finding,) = first.findings
        assert (finding.kind, finding.line, finding.text) == ("judged", 3, "its plating green  enamel")
        note = (example_workspace.lore_dir / finding.source).read_text()
        assert " ".join(finding.quote.replace("*", "").split()) in " ".join(note.replace("*", "").split())
        again = judge_files(example_workspace, [draft], f"{url}/v1", cache)
        assert (again.cached, again.unverifiable, len(judge.asked)) == (2, 2, 2)
        assert [f.to_dict() for f in again.findings] == [f.to_dict() for f in first.findings]
        draft.write_text(JUDGED_DRAFT.replace("counted the eel", "weighed the eel"))
        edited = judge_files(example_workspace, [draft], f"{url}/v1", cache)
        assert (edited.cached, len(judge.asked)) == (1, 3)  # only the changed paragraph is asked again
        try:
            result = cli(
                "check", str(draft), "--json", "--judge-url", f"{url}/v1", workspace=example_workspace
            )
        finally:
            (example_workspace.state_dir / "check-judged.json").unlink(missing_ok=True)
    assert result.exit_code == 1
    assert [json.loads(line)["kind"] for line in result.stdout.splitlines()] == ["judged"]
    assert "2 dropped because their quotes were not found" in result.stderr


HARVEST_DRAFT = """# New faces

Perrin Vale kept the shop on Tern Street after Ilka went.

Perrin never changed the sign.

Hollis Brandt rubbed his grey eyes and went back to the ledger.
"""


def test_harvest_proposes_new_notes_and_facts_and_applies_them_only_when_asked(
    cli, example_workspace, tmp_path
):
    from scifi_llm.config import find_workspace

    shutil.copytree(example_workspace.root, tmp_path / "novel")
    workspace = find_workspace(tmp_path / "novel")
    draft = tmp_path / "draft.md"
    draft.write_text(HARVEST_DRAFT)
    proposed = cli("lore", "harvest", str(draft), "--json", workspace=workspace)
    assert proposed.exit_code == 0, proposed.stderr
    rows = [json.loads(line) for line in proposed.stdout.splitlines()]
    (stub,) = [row for row in rows if row["kind"] == "stub"]
    assert (stub["name"], stub["aliases"], len(stub["mentions"])) == ("Perrin Vale", ["Perrin"], 2)
    facts = {(row["entity"], row["attribute"], row["value"]) for row in rows if row["kind"] == "fact"}
    assert facts == {("Hollis Brandt", "eye", "grey")}
    assert "Perrin Vale" in (workspace.root / "results" / "lore-harvest.md").read_text()
    assert not (workspace.lore_dir / "harvested").exists()  # nothing enters the lore without --apply

    applied = cli("lore", "harvest", str(draft), "--apply", workspace=workspace)
    assert applied.exit_code == 0, applied.stderr
    note = (workspace.lore_dir / "harvested" / "perrin_vale.md").read_text()
    assert note.startswith("---\nname: Perrin Vale\naliases:\n- Perrin\n") and "Tern Street" in note
    assert (
        "- eye: grey (from draft.md:7:"
        in (workspace.lore_dir / "characters" / "hollis_brandt.md").read_text()
    )
    again = cli("lore", "harvest", str(draft), "--json", workspace=workspace)  # the lore now knows both
    assert again.exit_code == 0 and again.stdout.strip() == ""
    checked = cli("check", str(draft), "--json", workspace=workspace)
    assert "Perrin" not in checked.stdout
