"""scifi-llm check, the names layer: near misses of the lore's names, and names the lore does not know."""

import json

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
