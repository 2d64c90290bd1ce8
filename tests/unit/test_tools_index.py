"""workspace_index, search_code and collect_context (contract 7.3, section 10)."""

from __future__ import annotations

from runtime.tools import ToolContext, Toolpack
from runtime.tools.index import language_of, symbol_outline
from tests.unit import toolpack_fixtures as fx

ctx = fx.ctx
settings = fx.settings
toolpack = fx.toolpack
workspace = fx.workspace  # pytest fixtures used by name

FEATURE = "class Greeter:\n    def run(self):\n        return 'hi'\n"


async def test_workspace_index_returns_metadata_and_symbols(
    toolpack: Toolpack, ctx: ToolContext
) -> None:
    # contract 10, test_patch_runtime.py #4
    ctx.workspace.materialise({"src/feature.py": FEATURE, "README.md": "# readme\n"})
    out = await toolpack.call("coding_agent_workspace_index", {"query": "greeter"}, ctx)
    assert out["total_files"] >= 1
    first = out["files"][0]
    assert first["path"] == "src/feature.py"
    assert first["language"] == "python"
    assert first["size_bytes"] > 0 and len(first["sha256"]) == 64
    assert {"name": "Greeter", "kind": "class", "line": 1} in first["symbol_outline"]
    assert {"name": "run", "kind": "function", "line": 2} in first["symbol_outline"]


async def test_index_scoring_sort_limit_and_totals(toolpack: Toolpack, ctx: ToolContext) -> None:
    files = {
        "src/button.tsx": "export function Button() {}\n",  # path 4 + content 2 + symbol 3
        "src/a.ts": "// uses button\n",  # content 2
        "src/buttons/index.ts": "export {}\n",  # path 4
        "src/z.ts": "export const Button2 = () => 1\n",  # content 2 + symbol 3
        "other.md": "nothing\n",
    }
    ctx.workspace.materialise(files)
    out = await toolpack.call("coding_agent_workspace_index", {"query": "BUTTON", "limit": 3}, ctx)
    assert [(f["path"], f["score"]) for f in out["files"]] == [
        ("src/button.tsx", 9),
        ("src/z.ts", 5),
        ("src/buttons/index.ts", 4),
    ]
    assert out["total_files"] == 4  # matching rows before the limit
    assert out["total_size_bytes"] == sum(len(t) for t in files.values())
    out = await toolpack.call("coding_agent_workspace_index", {"max_symbols_per_file": 0}, ctx)
    assert out["total_files"] == 5 and [f["score"] for f in out["files"]] == [0] * 5
    assert max(len(f["symbol_outline"]) for f in out["files"]) == 1  # clamped to >= 1


def test_symbol_outline_and_languages() -> None:
    ts = (
        "export default class Page {}\n"
        "class Inner {}\n"
        "export async function load() {}\n"
        "function helper() {}\n"
        "export const useThing = (x) => x\n"
        "const notAFunction = 3\n"
    )
    assert [(s["name"], s["kind"]) for s in symbol_outline(ts, "typescript")] == [
        ("Page", "class"),
        ("Inner", "class"),
        ("load", "function"),
        ("helper", "function"),
        ("useThing", "function"),
    ]
    assert [language_of(p) for p in ("a.tsx", "b.mjs", "c.yml", "d.scss", "e.sh", "f")] == [
        "typescript", "javascript", "yaml", "scss", "shell", "text",
    ]  # fmt: skip


async def test_search_code(toolpack: Toolpack, ctx: ToolContext) -> None:
    long_line = "    const needle = '" + "x" * 400 + "'"
    ctx.workspace.materialise({"a.ts": "Needle\nhay\n", "b.ts": long_line + "\n"})
    out = await toolpack.call("coding_agent_search_code", {"query": "needle"}, ctx)
    assert [(m["path"], m["line"]) for m in out["matches"]] == [("a.ts", 1), ("b.ts", 1)]
    assert len(out["matches"][1]["preview"]) == 220
    assert out["matches"][1]["preview"].startswith("const needle")
    out = await toolpack.call("coding_agent_search_code", {"query": "e", "max_results": 1}, ctx)
    assert len(out["matches"]) == 1
    out = await toolpack.call("coding_agent_search_code", {}, ctx)
    assert out["fields"] == ["query"]


async def test_collect_context_snippets_and_budget(toolpack: Toolpack, ctx: ToolContext) -> None:
    body = "\n".join(f"line {i} {'TARGET' if i % 20 == 0 else ''}" for i in range(1, 201))
    ctx.workspace.materialise({"src/big.ts": body + "\n", "src/small.ts": "TARGET here\n"})
    out = await toolpack.call(
        "coding_agent_collect_context",
        {"query": "target", "context_before": 1, "context_after": 1},
        ctx,
    )
    first = out["snippets"][0]
    assert (first["path"], first["line"], first["score"]) == ("src/big.ts", 20, 100)
    assert first["content"] == "19: line 19 \n20: line 20 TARGET\n21: line 21 "
    assert first["size_bytes"] == len(first["content"].encode())
    assert out["snippet_count"] == 10 == len(out["snippets"])  # default max 10; 11 hits
    assert [s["score"] for s in out["snippets"]][-1] == 91
    assert out["consumed_bytes"] == sum(s["size_bytes"] for s in out["snippets"])
    assert out["compacted"] is True
    assert [s["recommended_for_prompt"] for s in out["snippets"]].count(True) == 5

    out = await toolpack.call(
        "coding_agent_collect_context",
        {"query": "line", "max_total_bytes": 100, "context_before": 60, "context_after": 60},
        ctx,
    )
    assert out["max_total_bytes"] == 512  # clamped
    assert out["consumed_bytes"] <= 512 and out["compacted"] is True
    assert out["snippet_count"] >= 1
    assert 512 - out["consumed_bytes"] < 256 or out["snippet_count"] == 1


async def test_collect_context_skips_hits_inside_earlier_windows(
    toolpack: Toolpack, ctx: ToolContext
) -> None:
    ctx.workspace.materialise({"a.ts": "hit\nhit\nhit\nother\n"})
    out = await toolpack.call("coding_agent_collect_context", {"query": "hit"}, ctx)
    assert out["snippet_count"] == 1
    assert out["snippets"][0]["content"] == "1: hit\n2: hit\n3: hit\n4: other"
    assert out["compacted"] is False
