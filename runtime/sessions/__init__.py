"""Coding-agent sessions (issue 12 item 1, docs/design.md 10): ordered conversations of
runs on one app.

- :mod:`runtime.sessions.strategy`: what a create does while a run of the session is
  active (``multitask_strategy``);
- :mod:`runtime.sessions.history`: the turns a run adds to its session and the
  conversation a follow-up's model sees.

The eligibility of a queued session run (one at a time, in session order) and the
revision it starts from are decided where runs are claimed, in SQL (migration 0012).
"""
