"""Coordination between the nodes (``runwright serve`` processes) sharing one Postgres
(docs/design.md section 9): the LISTEN/NOTIFY channels and each node's listener."""
