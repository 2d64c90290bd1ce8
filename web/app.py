"""The Quart application factory.

``create_app(settings)`` builds every component (no import-time singletons), registers the
blueprints and hooks the lifespan: components start in ``before_serving`` in the order listed
by :func:`web.services.build_services` and stop in reverse in ``after_serving``.
"""

from __future__ import annotations

from quart import Quart
from quart_schema import Info, QuartSchema

from runtime.settings import Settings
from web.auth import Authorizer
from web.errors import install_error_handlers
from web.header_limits import install_header_limit
from web.keepalive import install_body_drain
from web.openapi import RunwrightOpenAPI
from web.request_context import install_request_context
from web.routes import (
    admin_runs,
    agent_settings,
    apps,
    checkpoints,
    docs,
    health,
    metrics,
    models,
    runs,
    sessions,
    usage,
    viewer,
    webhooks,
)
from web.security_headers import install_security_headers
from web.services import Services, build_services
from web.validation import install_validation

API_TITLE = "Runwright"
API_VERSION = "0.1.0"


def create_app(settings: Settings, *, services: Services | None = None) -> Quart:
    """Build the app for ``settings``.

    Args:
        services: pre-built components (tests, or a caller adding lifespan steps first);
            default: :func:`web.services.build_services`.

    Returns:
        The Quart app; serve it with Hypercorn, or ``app.test_app()`` in tests so the
        lifespan runs.
    """
    services = services or build_services(settings)
    authz = Authorizer(services)

    app = Quart("runwright")
    install_header_limit(app)  # first: nothing else runs for an oversized request
    install_validation(app)  # before blueprints: rules use the ``uuid`` converter
    install_error_handlers(app)
    install_body_drain(app)
    install_security_headers(app)
    install_request_context(app)
    QuartSchema(
        app,
        info=Info(title=API_TITLE, version=API_VERSION),
        security_schemes={
            "bearer": {"type": "http", "scheme": "bearer", "bearer_format": "JWT"},
            # GET /metrics only: RUNWRIGHT_METRICS_TOKEN, not a JWT.
            "metrics_token": {"type": "http", "scheme": "bearer"},
        },
        security=[{"bearer": []}],
        # Our own /docs (web/routes/docs.py) serves Swagger UI offline; quart-schema's pages
        # load from CDNs.
        swagger_ui_path=None,
        redoc_ui_path=None,
        scalar_ui_path=None,
        openapi_provider_class=RunwrightOpenAPI,
    )
    # After QuartSchema, which installs its own JSON provider: keep the models' field order.
    app.json.sort_keys = False  # type: ignore[attr-defined]

    app.register_blueprint(health.blueprint(services))
    app.register_blueprint(docs.blueprint(API_TITLE))
    app.register_blueprint(metrics.blueprint(services))
    app.register_blueprint(apps.blueprint(services, authz))
    app.register_blueprint(models.blueprint(services, authz))
    app.register_blueprint(runs.blueprint(services, authz))
    app.register_blueprint(agent_settings.blueprint(services, authz))
    app.register_blueprint(sessions.blueprint(services, authz))
    app.register_blueprint(checkpoints.blueprint(services, authz))
    app.register_blueprint(admin_runs.blueprint(services, authz))
    app.register_blueprint(webhooks.blueprint(services, authz))
    app.register_blueprint(usage.blueprint(services, authz))
    app.register_blueprint(viewer.blueprint())

    app.before_serving(services.lifespan.start)
    app.after_serving(services.lifespan.stop)
    return app
