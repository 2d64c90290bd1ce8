"""Postgres storage for Runwright: pool, embedded server, migrations and repositories.

Only this package executes SQL. Queries live in ``queries/*.sql`` as named statements and
driver errors are translated into :mod:`storage.errors` at this boundary.
"""
