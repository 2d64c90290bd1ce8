"""The JSON encoder of ``json`` / ``jsonb`` parameters: total over what Python's ``json``
can parse.

Why: values that reach these columns come partly from untrusted sources (a model's tool-call
arguments kept in a paused run's checkpoint and pending approval, an upstream's answer), and
Python's ``json`` reads three things Postgres refuses: the non-finite numbers ``NaN`` /
``Infinity`` (refused by ``json`` and ``jsonb``), and ``\\u0000`` and unpaired surrogates
(refused by ``jsonb``: it stores text in the database encoding). A refused write was retried
by the run actor forever, so the run never settled. They are stored instead as the strings
``"NaN"``, ``"Infinity"``, ``"-Infinity"`` and, inside strings and keys, U+FFFD.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

REPLACEMENT = "\ufffd"
# In json.dumps's ASCII output every NUL and every surrogate (paired or not) is an escape;
# only text holding one of these needs the slow path.
_SUSPECT = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")


def encode(value: Any) -> str:
    """``value`` as JSON text that ``json`` and ``jsonb`` columns accept.

    Raises:
        TypeError: ``value`` holds something ``json.dumps`` cannot encode (as before).
    """
    try:
        text = json.dumps(value, allow_nan=False)
    except ValueError:  # a non-finite float
        return json.dumps(_storable(value), allow_nan=False)
    if _SUSPECT.search(text) is None:
        return text
    return json.dumps(_storable(value), allow_nan=False)


def _storable(value: Any) -> Any:
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {_text(str(k)) if isinstance(k, str) else k: _storable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_storable(item) for item in value]
    return value


def _text(text: str) -> str:
    # UTF-16 with surrogatepass joins a split pair back into its character; what is left
    # unpaired is decoded as U+FFFD.
    joined = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return joined.replace("\x00", REPLACEMENT)
