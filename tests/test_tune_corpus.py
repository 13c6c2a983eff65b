"""Reading a messy writing folder: every prose sentence kept, every note gone, every skip explained."""

import re

from docx import Document

from scifi_llm.tune import read_writing

from conftest import write

PROSE_A = (
    "Elena flexed the arm. The copper band caught the galley light, and for a moment she was nineteen again.",
    "Tomas said nothing. He rarely did, when it mattered.",
)
PROSE_B = "Café Marée served kaf that tasted of rust — naïve travellers paid double."
NOTES_FILE = """---
title: Chapter 3
---
# Chapter Three

TODO: fix the timeline here
The Lark came about slowly. <!-- check the drive specs -->Her hull groaned.
[[remember: Sefa should be angry]]
NOTE TO SELF - cut this scene?
<!-- a comment
over two lines -->
Sefa was angry anyway.

* * *

FIXME the ending
The Wheel turned above them, indifferent.
"""


def all_text(manuscripts) -> str:
    return "\n".join(p for m in manuscripts for scene in m.scenes for p in scene)


def make_folder(root):
    write(root / "a_crlf.txt", ("\r\n".join(PROSE_A) + "\r\n").encode())
    write(root / "b_latin1.txt", PROSE_B.encode("cp1252"))
    write(root / "c_bom.md", "\ufeff" + "The Wheel was quiet that night.\n")
    write(root / "d_notes.md", NOTES_FILE)
    write(root / "e_copy.txt", ("\r\n".join(PROSE_A) + "\r\n").encode())
    write(root / "f_empty.md", "   \n\n")
    write(root / "g_binary.txt", b"\x00\x01\x02PNG")
    write(root / "h_fake.docx", b"this is not a zip file")
    write(root / "i_map.pdf", b"%PDF-1.4")
    document = Document()
    document.add_heading("Chapter Four", level=1)
    document.add_paragraph("Ilka worked by lamplight. Her hands never shook.")
    document.save(root / "j_real.docx")


def test_a_messy_folder_keeps_all_prose_and_drops_all_notes(tmp_path):
    make_folder(tmp_path)
    manuscripts, report = read_writing(tmp_path)
    text = all_text(manuscripts)
    for sentence in [
        *PROSE_A,
        PROSE_B,
        "The Wheel was quiet that night.",
        "The Lark came about slowly.",
        "Her hull groaned.",
        "Sefa was angry anyway.",
        "The Wheel turned above them, indifferent.",
        "Ilka worked by lamplight. Her hands never shook.",
    ]:
        assert sentence in text, sentence
    for note in (
        "TODO",
        "FIXME",
        "NOTE TO SELF",
        "check the drive",
        "remember:",
        "a comment",
        "title:",
        "Chapter",
        "* * *",
    ):
        assert note not in text, note
    assert "\ufeff" not in text and "\r" not in text
    skipped = dict(report.skipped)
    assert skipped.pop("h_fake.docx").startswith("unreadable .docx (PackageNotFoundError")
    assert skipped == {
        "f_empty.md": "empty file",
        "g_binary.txt": "binary file, not text",
        "i_map.pdf": "unsupported extension .pdf",
    }
    assert report.duplicates == [("e_copy.txt", "a_crlf.txt")]
    assert report.decoded_with_fallback == [("b_latin1.txt", "cp1252")]
    assert report.note_lines_removed == 3
    assert report.files_read == 5


def test_scene_breaks_and_headings_separate_scenes(tmp_path):
    write(tmp_path / "notes.md", NOTES_FILE)
    [manuscript], _ = read_writing(tmp_path)
    assert manuscript.scenes == [
        ["The Lark came about slowly. Her hull groaned.", "Sefa was angry anyway."],
        ["The Wheel turned above them, indifferent."],
    ]


def test_writer_patterns_remove_more_note_lines(tmp_path):
    write(tmp_path / "a.md", "Elena slept.\n>> ask the editor about this\nShe woke at six.\n")
    [manuscript], report = read_writing(tmp_path, note_patterns=(r"^>>",))
    assert manuscript.scenes == [["Elena slept. She woke at six."]]
    assert report.note_lines_removed == 1
    assert re.search("ask the editor", all_text([manuscript])) is None


def test_a_symlink_out_of_the_writing_folder_is_skipped_and_said(tmp_path):
    folder, elsewhere = tmp_path / "writing", tmp_path / "elsewhere"
    write(folder / "one.md", "Elena slept badly that night, and woke before the bells.")
    write(elsewhere / "diary.md", "My real diary, not for training.")
    (folder / "diary.md").symlink_to(elsewhere / "diary.md")
    manuscripts, report = read_writing(folder)
    assert [manuscript.source for manuscript in manuscripts] == ["one.md"]
    assert report.skipped == [("diary.md", f"links to {elsewhere.resolve() / 'diary.md'}, outside the folder "
                               "(allow that folder in lore.outside_folders)")]  # fmt: skip
    allowed, _ = read_writing(folder, outside_folders=[elsewhere])
    assert [manuscript.source for manuscript in allowed] == ["diary.md", "one.md"]
