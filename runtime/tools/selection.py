"""A run's tool selection: which toolpack tools a native run offers its model (issue 13
item 4; the create field ``tools``, docs/architecture.md "Runs").

A run created with ``tools`` offers only those tools, and a call of any other tool is
refused without running (``TOOL_NOT_ALLOWED``); a run without it offers the whole
catalogue (contract 7.1). Narrowing never widens: a selection can only name catalogue
tools. The selection is fixed at creation in ``input_params.context.tools`` as function
names in catalogue order.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import Any, Final

from runtime.tools.specs import PREFIX, TOOLS

__all__ = ["NOT_ALLOWED", "allowed", "normalize_selection", "run_selection"]

NOT_ALLOWED: Final = "TOOL_NOT_ALLOWED"
"""The tool-output ``code`` of a call of a tool the run does not offer."""


def normalize_selection(names: Iterable[str]) -> tuple[str, ...]:
    """Function names (``coding_agent_*``) for ``names``, each a slug (``apply_patch``) or
    a function name, in catalogue order, without duplicates.

    Raises:
        ValueError: a name is no catalogue tool (the message names them), or ``names`` is
            empty (a run must be able to call something).
    """
    wanted = {name.strip() for name in names}
    known = {spec.slug for spec in TOOLS} | {spec.name for spec in TOOLS}
    unknown = sorted(wanted - known)
    if unknown:
        raise ValueError(f"unknown tools: {', '.join(unknown)}")
    chosen = tuple(spec.name for spec in TOOLS if spec.slug in wanted or spec.name in wanted)
    if not chosen:
        raise ValueError("tools must name at least one tool")
    return chosen


def run_selection(input_params: Mapping[str, Any]) -> tuple[str, ...] | None:
    """The function names a run offers (``input_params.context.tools``, in catalogue
    order), None for all."""
    context = input_params.get("context")
    names = context.get("tools") if isinstance(context, Mapping) else None
    if not isinstance(names, list):
        return None
    return tuple(str(name) for name in names)


def allowed(selection: Collection[str] | None, tool: str) -> bool:
    """Whether a call of ``tool`` (function name or slug) may run under ``selection``."""
    if selection is None:
        return True
    return tool in selection or PREFIX + tool in selection
