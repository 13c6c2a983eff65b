"""Continuity: where a draft contradicts the lore (`scifi-llm check`)."""

from scifi_llm.exports import lazy_exports

__all__, __getattr__ = lazy_exports(
    __name__,
    {
        "names": ["Finding", "KnownNames", "name_findings"],
        "plants": ["load_plants", "score"],
        "drafts": [
            "KINDS",
            "DraftChecker",
            "Lore",
            "check_drafts",
            "check_text",
            "judge_files",
            "lore_names",
        ],
        "judged": ["JudgeReport"],
        "harvest": ["NewFact", "Stub", "apply_harvest", "harvest_drafts", "review_text"],
    },
)
