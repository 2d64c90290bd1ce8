"""Templates and project validation (contract section 8)."""

from __future__ import annotations

import json

import pytest

from runtime.project import (
    ProjectValidationError,
    TemplateNotFound,
    load_template,
    template_keys,
    unresolved_imports,
    validate_project,
)
from runtime.settings import load_settings

SETTINGS = load_settings(jwt_secret=None)


def _error(files, entry="src/main.tsx", settings=SETTINGS):
    with pytest.raises(ProjectValidationError) as info:
        validate_project(files, entry, settings)
    return info.value


def test_chat_classic_is_a_valid_vite_react_project():
    files = load_template("chat-classic")
    assert "chat-classic" in template_keys()
    assert validate_project(files, "src/main.tsx", SETTINGS) == files
    package = json.loads(files["package.json"])
    assert {"react", "react-dom"} <= set(package["dependencies"])
    assert {"vite", "typescript", "@vitejs/plugin-react"} <= set(package["devDependencies"])
    # Pinned: exact versions only, no ranges.
    for version in {**package["dependencies"], **package["devDependencies"]}.values():
        assert version[0].isdigit(), version
    assert '<script type="module" src="/src/main.tsx">' in files["index.html"]


@pytest.mark.parametrize("key", ["nope", "../runtime", "Chat-Classic", ""])
def test_unknown_template_key(key):
    with pytest.raises(TemplateNotFound):
        load_template(key)


def test_paths_are_normalised():
    files = {"./src//main.tsx": "import './a';", "src\\a.ts": ""}
    assert validate_project(files, "src/main.tsx", SETTINGS) == {
        "src/main.tsx": "import './a';",
        "src/a.ts": "",
    }


def test_duplicate_paths_after_normalisation_are_refused():
    error = _error({"src/main.tsx": "", "./src/main.tsx": ""})
    assert error.status == 400
    assert error.detail["message"] == "Duplicate file path: src/main.tsx"


def test_too_many_files_and_total_size():
    settings = load_settings(builder_max_files=2, builder_max_project_bytes=10)
    error = _error({"src/main.tsx": "", "a.ts": "", "b.ts": ""}, settings=settings)
    assert (error.status, error.detail["field"]) == (400, "files")
    assert error.detail["message"].startswith("Too many files: 3")
    error = _error({"src/main.tsx": "123456", "a.ts": "123456"}, settings=settings)
    assert error.detail["message"].startswith("Project is too large: 12 bytes")


def test_entry_file_goes_through_the_path_policy():
    error = _error({"src/main.tsx": ""}, entry="../main.tsx")
    assert error.status == 400
    assert error.detail["field"] == "entry_file"


@pytest.mark.parametrize(
    "source",
    [
        'import { A } from "./A";',
        "import './A.tsx';",
        "export * from './A';",
        "const m = await import('./A');",
        "const a = require('./A');",
        "import {\n  A,\n  B,\n} from './A';",
        "import type { T } from './A';",
    ],
)
def test_import_forms_are_checked(source):
    assert unresolved_imports({"src/main.ts": source}) == [
        {
            "path": "src/main.ts",
            "message": f"Cannot resolve import '{'./A.tsx' if 'A.tsx' in source else './A'}'",
        }
    ]
    assert unresolved_imports({"src/main.ts": source, "src/A.tsx": ""}) == []


@pytest.mark.parametrize(
    ("spec", "target"),
    [
        ("./lib", "src/lib/index.ts"),
        ("./styles.css", "src/styles.css"),
        ("../shared/x", "shared/x.jsx"),
        ("./logo.svg", "src/logo.svg"),
        ("./util", "src/util.mts"),
    ],
)
def test_resolution_tries_extensions_and_index(spec, target):
    files = {"src/main.tsx": f'import x from "{spec}";', target: ""}
    assert unresolved_imports(files) == []


def test_bare_and_escaping_imports():
    assert unresolved_imports({"src/main.tsx": 'import React from "react";'}) == []
    assert unresolved_imports({"main.ts": 'import x from "../outside";'}) != []


def test_css_imports_are_checked():
    files = {"src/a.css": '@import "./b.css";'}
    assert unresolved_imports(files) == [
        {"path": "src/a.css", "message": "Cannot resolve import './b.css'"}
    ]
    assert unresolved_imports({**files, "src/b.css": ""}) == []
