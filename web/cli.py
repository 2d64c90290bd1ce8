"""The ``runwright`` command line: serve, migrate, and the admin set-up commands.

Every command reads the same settings as the server (``DATABASE_URL``, or the embedded
Postgres under ``RUNWRIGHT_DATA_DIR``), so the CLI and a running server see the same data.
Create/add commands print the new id alone on stdout; messages go to stderr.
Exit codes: 0 success, 1 failure (bad settings, missing rows, duplicates), 2 usage error.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import re
import signal
import subprocess
import sys
import uuid
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from runtime.egress import EgressRefused
from runtime.logs import configure_logging
from runtime.model_credentials import key_context
from runtime.secret_box import load_secret_box
from runtime.settings import ENV_NAME, Settings, SettingsError, load_settings
from storage import models as models_repo
from storage import tenancy
from storage.database import Database
from storage.embedded import EmbeddedPostgres
from storage.errors import ForeignKeyViolation, StorageError, UniqueViolation
from storage.migrate import apply_migrations
from storage.models import BindingSpec
from storage.tenancy import ORG_ROLES
from web.tokens import DEFAULT_TTL_SECONDS, mint_token, resolve_jwt_secret


class CliError(Exception):
    """An expected failure: printed as ``error: <message>``, exit code 1."""


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``runwright`` console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        settings = load_settings()
        configure_logging(
            level=settings.log_level if args.command == "serve" else logging.WARNING,
            log_format=settings.log_format,
            node_id=settings.node_id,
        )
        result = args.handler(args, settings)
    except (SettingsError, CliError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except StorageError as exc:
        print(f"error: database: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    if result is not None:
        print(result)
    return 0


# --- parser ------------------------------------------------------------------------------


def _uuid(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a UUID: {value!r}") from None


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {value!r}") from None
    if number <= 0:
        raise argparse.ArgumentTypeError("must be positive")
    return number


def _port(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port: {value!r}") from None
    if not 0 <= number <= 65535:
        raise argparse.ArgumentTypeError("must be 0..65535")
    return number


def _workers(value: str) -> int:
    if not value.isdigit() or not 1 <= int(value) <= 64:
        raise argparse.ArgumentTypeError(f"not a worker count 1..64: {value!r}")
    return int(value)


def build_parser() -> argparse.ArgumentParser:
    """The argparse tree; every command and sub-command has ``--help``."""
    parser = argparse.ArgumentParser(
        prog="runwright",
        description="Runwright: hosting service for coding-agent runs.",
        epilog="Settings come from RUNWRIGHT_* variables and DATABASE_URL (see README).",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the HTTP server (Hypercorn)")
    serve.add_argument("--host", help="bind address (default: RUNWRIGHT_HOST)")
    serve.add_argument("--port", type=_port, help="port (default: RUNWRIGHT_PORT)")
    serve.add_argument(
        "--workers", type=_workers,
        help="server processes behind the port, each its own node (default: RUNWRIGHT_WORKERS)",
    )  # fmt: skip
    # A worker of `serve --workers N`: serve on the parent's listening socket (web/workers.py).
    serve.add_argument("--listen-fd", type=int, help=argparse.SUPPRESS)
    serve.set_defaults(handler=cmd_serve)

    migrate = commands.add_parser("migrate", help="apply pending database migrations")
    migrate.set_defaults(handler=cmd_migrate)

    tenant = commands.add_parser("tenant", help="manage tenants")
    tenant_cmds = tenant.add_subparsers(dest="tenant_command", metavar="ACTION", required=True)
    tenant_create = tenant_cmds.add_parser("create", help="create a tenant; prints its id")
    tenant_create.add_argument("--name", required=True)
    tenant_create.add_argument("--slug", help="unique slug (default: derived from --name)")
    tenant_create.set_defaults(handler=cmd_tenant_create)

    user = commands.add_parser("user", help="manage users")
    user_cmds = user.add_subparsers(dest="user_command", metavar="ACTION", required=True)
    user_create = user_cmds.add_parser("create", help="create a user; prints its id")
    user_create.add_argument("--email", required=True)
    user_create.add_argument(
        "--platform-admin", action="store_true", help="may act in every tenant"
    )
    user_create.set_defaults(handler=cmd_user_create)

    member = commands.add_parser("member", help="manage tenant memberships")
    member_cmds = member.add_subparsers(dest="member_command", metavar="ACTION", required=True)
    member_add = member_cmds.add_parser("add", help="add a user to a tenant")
    member_add.add_argument("--tenant", required=True, type=_uuid, metavar="TENANT_ID")
    member_add.add_argument("--user", required=True, type=_uuid, metavar="USER_ID")
    member_add.add_argument("--role", required=True, choices=ORG_ROLES)
    member_add.set_defaults(handler=cmd_member_add)

    model = commands.add_parser("model", help="manage the model registry")
    model_cmds = model.add_subparsers(dest="model_command", metavar="ACTION", required=True)
    model_add = model_cmds.add_parser("add", help="register a chat model; prints its id")
    owner = model_add.add_mutually_exclusive_group(required=True)
    owner.add_argument("--tenant", type=_uuid, metavar="TENANT_ID", help="a tenant's model")
    owner.add_argument("--global", dest="is_global", action="store_true", help="a global model")
    model_add.add_argument("--name", required=True)
    model_add.add_argument("--provider", required=True, help="e.g. openai, local")
    model_add.add_argument("--provider-model-id", required=True, metavar="ID")
    model_add.add_argument("--base-url", required=True, metavar="URL")
    key = model_add.add_mutually_exclusive_group()
    key.add_argument(
        "--api-key-env",
        metavar="VAR",
        help="global models only: an environment variable in "
        "RUNWRIGHT_MODEL_KEY_ENV_ALLOWLIST holding the API key",
    )
    key.add_argument(
        "--api-key-stdin",
        action="store_true",
        help="read the API key from standard input (stored encrypted; never an argument)",
    )
    model_add.add_argument(
        "--default", action="store_true", help="make it the default at its level"
    )
    model_add.set_defaults(handler=cmd_model_add)

    token = commands.add_parser("token", help="print a bearer token for a user")
    token.add_argument("--user", required=True, type=_uuid, metavar="USER_ID")
    token.add_argument("--tenant", required=True, type=_uuid, metavar="TENANT_ID")
    token.add_argument(
        "--role", choices=ORG_ROLES, help="org_role claim (default: the user's membership role)"
    )
    token.add_argument("--ttl", type=_positive_int, default=DEFAULT_TTL_SECONDS, metavar="SECONDS")
    token.set_defaults(handler=cmd_token)

    opencode = commands.add_parser("opencode", help="manage the OpenCode engine")
    opencode_cmds = opencode.add_subparsers(dest="opencode_command", metavar="SUBCOMMAND")
    oc_install = opencode_cmds.add_parser(
        "install",
        help="install the pinned opencode-ai npm package (needs npm); prints the binary path",
    )
    oc_install.add_argument(
        "--dir", type=Path, default=None,
        help="install directory (default: RUNWRIGHT_OPENCODE_INSTALL_DIR, else .cache/opencode)",
    )  # fmt: skip
    oc_install.set_defaults(handler=cmd_opencode_install)

    demo = commands.add_parser(
        "demo",
        help="run a real coding-agent run end to end on this machine and stream it",
        description="Start the service (embedded Postgres, local model), create a tenant, "
        "a user and an app, run the native agent on it and print its events live.",
    )
    demo.add_argument("--prompt", default=None, help="what to ask the agent (has a default)")
    demo.add_argument(
        "--all-tools", action="store_true",
        help="offer the model every toolpack tool, not only read_file_range and edit_file "
        "(the bundled model then reads about 2,400 prompt tokens instead of 730, and "
        "rarely edits)",
    )  # fmt: skip
    demo.set_defaults(handler=cmd_demo)

    return parser


# --- handlers ----------------------------------------------------------------------------


# CPython's collector thresholds for the server process (docs/benchmarks.md, "Garbage
# collection"). With the defaults (700, 10, 10) objects that live a few milliseconds (request
# and event objects) survive young collections, reach the old generation and, while the heap
# grows (runs being created), trigger full collections of the whole heap every few seconds:
# 100-300 ms on the loop's thread with 1,000 live runs. A 50,000-object young generation lets
# them die young; the old generation is still collected (CPython's own 25 % rule decides).
GC_THRESHOLDS = (50_000, 20, 10)


def cmd_serve(args: argparse.Namespace, settings: Settings) -> None:
    """Serve the app with Hypercorn until SIGINT/SIGTERM; with ``--workers N`` > 1, run N
    such processes behind the port under a supervising parent (web/workers.py)."""
    workers = args.workers or settings.workers
    if workers > 1 and args.listen_fd is None:
        from web.workers import WorkersFailed, run_workers

        try:
            status = run_workers(
                settings, args.host or settings.host, args.port or settings.port, workers
            )
        except WorkersFailed as exc:
            raise CliError(str(exc)) from None
        if status:
            raise CliError("serve --workers stopped after a failure (see the log above)")
        return
    gc.set_threshold(*GC_THRESHOLDS)
    from hypercorn.asyncio import serve

    from web.app import create_app
    from web.server import hypercorn_config
    from web.services import build_services

    bind = (
        f"fd://{args.listen_fd}"
        if args.listen_fd is not None
        else f"{args.host or settings.host}:{args.port or settings.port}"
    )
    config = hypercorn_config(bind, settings)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        services = build_services(settings)

        async def shutdown() -> None:
            # Drain the runs before Hypercorn closes connections and the lifespan stops:
            # live runs get the grace period, the rest are handed back, streams end.
            await stop.wait()
            await services.runs.drain()

        app = create_app(settings, services=services)
        await serve(app, config, shutdown_trigger=shutdown)  # type: ignore[arg-type]

    asyncio.run(run())


def cmd_opencode_install(args: argparse.Namespace, settings: Settings) -> str:
    """Install (or verify) the pinned OpenCode server; prints the binary path."""
    from runtime.engines.opencode.install import OpenCodeNotInstalled, install, install_dir

    try:
        return str(install(args.dir or install_dir(settings)))
    except (OSError, subprocess.CalledProcessError, OpenCodeNotInstalled) as exc:
        raise CliError(f"opencode install failed: {exc}") from None


def cmd_demo(args: argparse.Namespace, settings: Settings) -> None:
    """The README's main-job command; exit 1 with a fix when a step fails."""
    from web.demo import DEFAULT_PROMPT, DEMO_TOOLS, DemoError, run_demo

    tools = None if args.all_tools else DEMO_TOOLS
    try:
        final = asyncio.run(run_demo(settings, args.prompt or DEFAULT_PROMPT, tools=tools))
    except DemoError as exc:
        raise CliError(str(exc)) from None
    if final["status"] not in ("completed", "paused"):
        raise CliError(f"the run ended {final['status']}: {final['error']}")


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> None:
    """Apply pending migrations and report which (stderr)."""

    async def run(db: Database) -> None:
        return None

    _with_database(settings, run, announce_migrations=True)


def cmd_tenant_create(args: argparse.Namespace, settings: Settings) -> str:
    slug = args.slug or _slugify(args.name)
    if not slug:
        raise CliError("cannot derive a slug from --name; pass --slug")

    async def run(db: Database) -> str:
        try:
            created = await tenancy.create_tenant(db, name=args.name, slug=slug)
        except UniqueViolation:
            raise CliError(f"a tenant with slug {slug!r} already exists") from None
        return str(created.id)

    return _with_database(settings, run)


def cmd_user_create(args: argparse.Namespace, settings: Settings) -> str:
    async def run(db: Database) -> str:
        try:
            created = await tenancy.create_user(
                db, email=args.email, is_platform_admin=args.platform_admin
            )
        except UniqueViolation:
            raise CliError(f"a user with email {args.email!r} already exists") from None
        return str(created.id)

    return _with_database(settings, run)


def cmd_member_add(args: argparse.Namespace, settings: Settings) -> None:
    async def run(db: Database) -> None:
        try:
            await tenancy.add_membership(
                db, tenant_id=args.tenant, user_id=args.user, org_role=args.role
            )
        except UniqueViolation:
            raise CliError("the user is already a member of that tenant") from None
        except ForeignKeyViolation:
            raise CliError("no such tenant or user") from None
        # A membership has no id of its own: nothing on stdout, a note on stderr.
        print(f"added user {args.user} to tenant {args.tenant} as {args.role}", file=sys.stderr)
        return None

    _with_database(settings, run)


def cmd_model_add(args: argparse.Namespace, settings: Settings) -> str:
    """Register a model; the same credential and egress rules as ``POST /admin/models``
    (docs/security.md): a tenant model names no variable and its endpoint passes the egress
    policy; a global model's variable must be allowed; a key is read from stdin, sealed."""
    if args.api_key_env is not None:
        if not args.is_global:
            raise CliError(
                "tenant models cannot take their key from the server's environment; "
                "use --api-key-stdin"
            )
        if not ENV_NAME.match(args.api_key_env) or not settings.key_env_allowed(args.api_key_env):
            raise CliError(
                f"--api-key-env {args.api_key_env} is not in RUNWRIGHT_MODEL_KEY_ENV_ALLOWLIST"
            )
    api_key = None
    if args.api_key_stdin:
        api_key = sys.stdin.readline().strip()
        if not api_key:
            raise CliError("--api-key-stdin: no key on standard input")
    model_id = uuid.uuid4()

    async def run(db: Database) -> str:
        if not args.is_global:
            try:
                await settings.egress_policy().resolve(args.base_url)
            except EgressRefused as exc:
                raise CliError(f"--base-url is {exc}: {exc.reason}") from None
        sealed = None
        if api_key is not None:
            box = await asyncio.to_thread(load_secret_box, settings.secrets_key, settings.data_dir)
            sealed = box.seal(api_key, context=key_context(model_id, args.base_url))
        binding = BindingSpec(
            provider=args.provider,
            provider_model_id=args.provider_model_id,
            base_url=args.base_url,
            api_key_env=args.api_key_env,
            api_key_ciphertext=sealed,
        )
        try:
            model, _ = await models_repo.create_model(
                db,
                model_id=model_id,
                tenant_id=None if args.is_global else args.tenant,
                name=args.name,
                is_default=args.default,
                bindings=[binding],
            )
        except ForeignKeyViolation:
            raise CliError(f"no such tenant: {args.tenant}") from None
        return str(model.id)

    return _with_database(settings, run)


def cmd_token(args: argparse.Namespace, settings: Settings) -> str:
    async def run(db: Database) -> str:
        user = await tenancy.get_user(db, args.user)
        if user is None:
            raise CliError(f"no such user: {args.user}")
        role = args.role
        if role is None:
            membership = await tenancy.get_membership(db, tenant_id=args.tenant, user_id=user.id)
            if membership is None and not user.is_platform_admin:
                raise CliError("the user is not a member of that tenant (pass --role anyway)")
            role = membership.org_role if membership else None
        secret = resolve_jwt_secret(settings)
        return mint_token(
            secret,
            subject=user.id,
            tenant_id=args.tenant,
            org_role=role,
            platform_admin=user.is_platform_admin,
            ttl_seconds=args.ttl,
        )

    return _with_database(settings, run)


# --- helpers -----------------------------------------------------------------------------


def _slugify(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:64]


def _with_database(
    settings: Settings,
    work: Callable[[Database], Awaitable[Any]],
    *,
    announce_migrations: bool = False,
) -> Any:
    """Open the server's database (migrating it), run ``work``, close it.

    Deliberately not :class:`web.services.Services`: the CLI needs the database only, not
    the runtime components (and their imports) the server starts.
    """

    async def run() -> Any:
        embedded = None
        dsn = settings.database_url
        if dsn is None:
            embedded = EmbeddedPostgres(settings.data_dir)
            dsn = await asyncio.to_thread(embedded.start)
        try:
            db = await Database.connect(dsn, min_size=1, max_size=2)
            try:
                applied = await apply_migrations(db)
                if announce_migrations:
                    message = f"applied: {', '.join(applied)}" if applied else "up to date"
                    print(message, file=sys.stderr)
                return await work(db)
            finally:
                await db.close()
        finally:
            if embedded is not None:
                await asyncio.to_thread(embedded.stop)

    return asyncio.run(run())


if __name__ == "__main__":
    sys.exit(main())
