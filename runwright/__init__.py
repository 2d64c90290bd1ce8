"""Runwright's client-side package: :mod:`runwright.client` talks to a Runwright server over
HTTP. It imports nothing from the server's packages (``web``, ``runtime``, ``storage``)."""
