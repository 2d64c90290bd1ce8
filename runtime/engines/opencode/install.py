"""Install and locate the pinned OpenCode binary (docs/opencode.md section 1).

CI and operators run::

    runwright opencode install [--dir DIR]

which installs the npm package ``opencode-ai@1.18.33`` into ``DIR`` (default:
``RUNWRIGHT_OPENCODE_INSTALL_DIR``, else ``<repo>/.cache/opencode``) and prints the binary's
path. Re-running it is cheap when the pinned version is already there.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from runtime.settings import Settings

PACKAGE = "opencode-ai"
PINNED_VERSION = "1.18.33"

# The platform binary (the postinstall hardlinks it into opencode-ai/bin; calling the
# platform package directly also works when npm skips install scripts), then npm's shim.
_CANDIDATES = (
    Path("node_modules/opencode-linux-x64/bin/opencode"),
    Path("node_modules/.bin/opencode"),
)


class OpenCodeNotInstalled(Exception):
    """The pinned OpenCode binary is not where settings say it is."""


def default_install_dir() -> Path:
    """``<repo>/.cache/opencode``: the repository root is three levels above this package."""
    return Path(__file__).resolve().parents[3] / ".cache" / "opencode"


def install_dir(settings: Settings) -> Path:
    """The configured install directory (``opencode_install_dir``) or the default."""
    return settings.opencode_install_dir or default_install_dir()


def locate_binary(settings: Settings) -> Path:
    """The OpenCode executable to run.

    Returns:
        ``settings.opencode_binary`` if set, else the first existing candidate under the
        install directory.

    Raises:
        OpenCodeNotInstalled: no executable was found (the message says how to install).
    """
    if settings.opencode_binary is not None:
        if os.access(settings.opencode_binary, os.X_OK):
            return settings.opencode_binary
        raise OpenCodeNotInstalled(f"RUNWRIGHT_OPENCODE_BINARY={settings.opencode_binary}")
    base = install_dir(settings)
    for candidate in _CANDIDATES:
        path = base / candidate
        if os.access(path, os.X_OK):
            return path
    raise OpenCodeNotInstalled(
        f"opencode is not installed under {base}; run `runwright opencode install`"
    )


def installed_version(base: Path) -> str | None:
    """The ``opencode-ai`` version recorded in ``base``'s node_modules, or None."""
    manifest = base / "node_modules" / PACKAGE / "package.json"
    try:
        return str(json.loads(manifest.read_text())["version"])
    except (OSError, ValueError, KeyError):
        return None


def install(base: Path) -> Path:
    """Install ``opencode-ai@PINNED_VERSION`` into ``base`` (blocking; for CLI use).

    Returns:
        The binary's path.

    Raises:
        subprocess.CalledProcessError: npm or the binary's ``--version`` failed.
        OpenCodeNotInstalled: npm succeeded but no binary was found.
    """
    base.mkdir(parents=True, exist_ok=True)
    if installed_version(base) != PINNED_VERSION:
        manifest = base / "package.json"
        if not manifest.exists():
            manifest.write_text(json.dumps({"name": "runwright-opencode", "private": True}))
        subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--save-exact",
             f"{PACKAGE}@{PINNED_VERSION}"],
            cwd=base,
            check=True,
        )  # fmt: skip
    for candidate in _CANDIDATES:
        path = base / candidate
        if os.access(path, os.X_OK):
            out = subprocess.run([str(path), "--version"], check=True, capture_output=True)
            version = out.stdout.decode().strip()
            if version != PINNED_VERSION:
                raise OpenCodeNotInstalled(f"{path} reports {version}, want {PINNED_VERSION}")
            return path
    raise OpenCodeNotInstalled(f"npm installed {PACKAGE} but no binary was found under {base}")
