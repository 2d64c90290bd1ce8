"""Everything that belongs to a run (docs/design.md sections 2-4 and 9).

- :mod:`~runtime.runs.states`: the one transition table.
- :mod:`~runtime.runs.lifecycle`: the run's rules as a plain object returning effects.
- :mod:`~runtime.runs.actor`: the RunActor that carries those effects out.
- :mod:`~runtime.runs.supervisor`: one actor per live run, slots, restarts.
- :mod:`~runtime.runs.service`: what HTTP handlers call; owns the moving parts.
- :mod:`~runtime.runs.events`, :mod:`~runtime.runs.writer`, :mod:`~runtime.runs.broker`:
  the event envelope, the batched writer and the live fan-out.
- :mod:`~runtime.runs.leases`: who owns a running run.
- :mod:`~runtime.runs.errors`: typed run errors (mapped to HTTP in ``web/errors.py``).
"""
