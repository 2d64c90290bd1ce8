"""The tenant-wide run list: ``GET /admin/coding-agent/runs`` (issue 12 item 4).

Runs of every app of the caller's tenant, with the filters and cursors of the per-app list
(:mod:`web.run_listing`). The contract 9 chain without an app (steps 1-4): the tenant is
the one the chain selects (``X-Tenant-ID``), and only its runs are listed.
"""

from __future__ import annotations

from quart import Blueprint, Response
from quart_schema import document_querystring, document_response, tag

from web import run_listing
from web.auth import Authorizer
from web.schemas.common import document_errors
from web.schemas.run_lists import RunListHeaders, TenantRunListQuery
from web.schemas.runs import RunResponse
from web.services import Services
from web.validation import parse_query

READ = "apps.read"


def blueprint(services: Services, authz: Authorizer) -> Blueprint:
    """The ``/admin/coding-agent/runs`` blueprint."""
    bp = Blueprint("admin_runs", __name__, url_prefix="/admin/coding-agent/runs")

    @bp.get("")
    @tag(["runs"])
    @document_querystring(TenantRunListQuery)
    @document_response(list[RunResponse], 200, RunListHeaders)  # type: ignore[arg-type]
    @document_errors(401, 403, 422)
    async def list_tenant_runs() -> Response:
        """The tenant's runs across its apps, newest first; same filters, paging headers
        and errors as the per-app list, plus ``app_id`` (an app of another tenant lists
        nothing)."""
        ctx = await authz.tenant_admin(READ)
        query = parse_query(TenantRunListQuery)
        return await run_listing.list_page(
            services, query, tenant_id=ctx.tenant_id, app_id=query.app_id, scope_app_id=None
        )

    return bp
