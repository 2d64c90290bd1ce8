"""One blueprint per resource; each module exposes ``blueprint(...)`` built by create_app."""
