"""Every document the code and the docs point at is in the repository (issue 13 item 5):
a reader of a fresh clone can follow each ``docs/*.md`` reference, and nothing cites
material that lives outside it (the team's DESIGN.md and notes are summarised in docs/)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("runtime", "web", "storage", "runwright", "bench", "tests", "docs")
DOC_REF = re.compile(r"docs/([\w.-]+\.(?:md|png))")
OUTSIDE = re.compile(r"\bDESIGN\.md\b|\bnotes sections? \d|shared/(?:notes|spec)/")


def _texts() -> list[tuple[Path, str]]:
    files = [ROOT / "README.md"]
    for top in SOURCES:
        files += [p for p in (ROOT / top).rglob("*") if p.suffix in {".py", ".md"}]
    return [(p, p.read_text(encoding="utf-8")) for p in files]


def test_every_docs_reference_resolves() -> None:
    missing = {
        (str(path.relative_to(ROOT)), name)
        for path, text in _texts()
        for name in DOC_REF.findall(text)
        if not (ROOT / "docs" / name).is_file()
    }
    assert not missing, sorted(missing)


def test_nothing_cites_material_outside_the_repository() -> None:
    outside = [
        f"{path.relative_to(ROOT)}: {match.group(0)}"
        for path, text in _texts()
        if path.name != "test_references.py"
        for match in OUTSIDE.finditer(text)
    ]
    assert not outside, outside
