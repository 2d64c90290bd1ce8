-- The engine's result of a completed session, recorded before the run is finalised
-- (issue 10, exactly-once effects): {"kind": "completed", "output": {...}, "saw_text": bool}.
-- A run whose actor or process stopped after this was written is finalised from it (auto-
-- apply, terminal events, status) without running its engine again.
ALTER TABLE agent_runs ADD COLUMN engine_outcome jsonb;
