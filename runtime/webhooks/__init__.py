"""Completion webhooks (issue 12 item 5): the signing scheme and the delivery worker.

``signing``: per-tenant secrets and the ``Runwright-Signature`` header (what a receiver
verifies); ``delivery``: the supervised task that claims due outbox rows and POSTs them.
The outbox rows themselves are written with a run's status (the trigger of migration 0011).
"""
