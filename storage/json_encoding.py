"""The JSON encoder of ``json`` / ``jsonb`` parameters: total over what Python's ``json``
can parse.

Why: values that reach these columns come partly from untrusted sources (a model's tool-call
arguments kept in a paused run's checkpoint and pending approval, an upstream's answer), and
Python's ``json`` reads three things Postgres refuses: the non-finite numbers ``NaN`` /
``Infinity`` (refused by ``json`` and ``jsonb``), and ``\\u0000`` and unpaired surrogates
(refused by ``jsonb``: it stores text in the database encoding). A refused write was retried
by the run actor forever, so the run never settled. They are stored instead as the strings
``"NaN"``, ``"Infinity"``, ``"-Infinity"`` and, inside strings and keys, U+FFFD.

The run event encoder (``runtime.runs.events.to_json``, events are ``json`` text) uses
:func:`suspect` and :func:`storable` too: ``json`` stores ``\\u0000`` and an unpaired
surrogate, but reading the text back out (``->>``, as ``events_turn_text`` does when a run
starts again) fails on them.
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
        return json.dumps(storable(value), allow_nan=False)
    if not suspect(text):
        return text
    return json.dumps(storable(value), allow_nan=False)


def suspect(text: str) -> bool:
    """Whether ``text`` (``json.dumps`` output, ASCII) may hold a NUL or an unpaired
    surrogate escape: only then must the value be encoded again from :func:`storable`."""
    return _SUSPECT.search(text) is not None


def storable(value: Any) -> Any:
    """``value`` (what ``json.loads`` makes) with non-finite floats as strings and NUL and
    unpaired surrogates in strings and keys as U+FFFD; other values are returned as they
    are."""
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {_text(str(k)) if isinstance(k, str) else k: storable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [storable(item) for item in value]
    return value


def _text(text: str) -> str:
    # UTF-16 with surrogatepass joins a split pair back into its character; what is left
    # unpaired is decoded as U+FFFD.
    joined = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return joined.replace("\x00", REPLACEMENT)
