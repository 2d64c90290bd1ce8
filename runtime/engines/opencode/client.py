"""A small async client for OpenCode's official HTTP API (docs/opencode.md section 4).

Every call names the instance with ``?directory=<abs path>`` and carries HTTP basic auth
when a password is configured (``OPENCODE_SERVER_PASSWORD`` on the server). Errors are
translated at this boundary: :class:`OpenCodeHTTPError` for a status >= 400,
:class:`OpenCodeConnectionError` for transport failures and bad JSON (the httpx error is
kept as ``__cause__``).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx


class OpenCodeError(Exception):
    """Base class of errors talking to an OpenCode server."""


class OpenCodeHTTPError(OpenCodeError):
    """OpenCode answered with HTTP status >= 400; ``status`` and ``body`` (text) kept."""

    def __init__(self, method: str, path: str, status: int, body: str) -> None:
        super().__init__(f"OpenCode {method} {path} returned HTTP {status}: {body[:500]}")
        self.status = status
        self.body = body


class OpenCodeConnectionError(OpenCodeError):
    """OpenCode could not be reached, dropped the connection or sent something unreadable."""


class OpenCodeClient:
    """Calls to one OpenCode server. Use from the asyncio loop only.

    Args:
        base_url: e.g. ``http://127.0.0.1:4096`` (no trailing path).
        password: basic-auth password, or None for an unsecured server.
        username: basic-auth user name (OpenCode's default is ``opencode``).
        request_timeout: seconds for a whole ordinary request.
        connect_timeout: seconds to establish a connection.
    """

    def __init__(
        self,
        base_url: str,
        *,
        password: str | None = None,
        username: str = "opencode",
        request_timeout: float = 20.0,
        connect_timeout: float = 5.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        auth = httpx.BasicAuth(username, password) if password else None
        # One connection per live /event stream: no pool cap, so runs never wait on each other.
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            auth=auth,
            timeout=httpx.Timeout(request_timeout, connect=connect_timeout),
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=32),
            headers={"Accept": "application/json"},
        )
        self._connect_timeout = connect_timeout

    async def aclose(self) -> None:
        """Close every pooled connection."""
        await self._http.aclose()

    # -- plumbing ----------------------------------------------------------------------------

    async def _call(
        self,
        method: str,
        path: str,
        *,
        directory: str | None = None,
        body: Any = None,
        seconds: float | None = None,
    ) -> Any:
        params = {"directory": directory} if directory is not None else None
        extra: dict[str, Any] = {}
        if seconds is not None:
            extra["timeout"] = httpx.Timeout(seconds, connect=self._connect_timeout)
        try:
            response = await self._http.request(method, path, params=params, json=body, **extra)
        except httpx.HTTPError as exc:
            raise OpenCodeConnectionError(f"OpenCode {method} {path} failed: {exc!r}") from exc
        if response.status_code >= 400:
            raise OpenCodeHTTPError(method, path, response.status_code, response.text)
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise OpenCodeConnectionError(f"OpenCode {method} {path}: invalid JSON") from exc

    # -- endpoints ---------------------------------------------------------------------------

    async def health(self, *, seconds: float | None = None) -> dict[str, Any]:
        """``GET /global/health`` -> ``{"healthy": true, "version": "1.18.33"}``.

        Args:
            seconds: overall time limit instead of the client's request timeout.
        """
        result = await self._call("GET", "/global/health", seconds=seconds)
        return result if isinstance(result, dict) else {}

    async def providers(
        self, directory: str, *, seconds: float | None = None
    ) -> dict[str, list[str]]:
        """``GET /config/providers``: the providers the directory's instance loaded.

        The first call for a directory boots its instance (more than 10 s measured), hence
        ``seconds`` (overall limit) instead of the request timeout.

        Returns:
            ``{provider_id: [model_key, ...]}``.
        """
        result = await self._call("GET", "/config/providers", directory=directory, seconds=seconds)
        out: dict[str, list[str]] = {}
        for provider in (result or {}).get("providers", []):
            out[str(provider.get("id"))] = list((provider.get("models") or {}).keys())
        return out

    async def dispose_instance(self, directory: str, *, seconds: float | None = None) -> None:
        """``POST /instance/dispose``: the next call reloads the directory's config."""
        await self._call("POST", "/instance/dispose", directory=directory, seconds=seconds)

    async def create_session(
        self, directory: str, *, title: str, permission: list[dict[str, str]]
    ) -> dict[str, Any]:
        """``POST /session`` with a title (no title LLM call) and a permission ruleset.

        Returns:
            The Session object (``{"id": "ses_…", "directory": …, …}``).
        """
        body = {"title": title, "permission": permission}
        result = await self._call("POST", "/session", directory=directory, body=body)
        if not isinstance(result, dict) or not result.get("id"):
            raise OpenCodeConnectionError(f"OpenCode POST /session returned no id: {result!r}")
        return result

    async def prompt_async(
        self, directory: str, session_id: str, *, text: str, provider_id: str, model_id: str
    ) -> None:
        """``POST /session/{id}/prompt_async`` (answers 204 at once; work runs upstream)."""
        body = {
            "parts": [{"type": "text", "text": text}],
            "model": {"providerID": provider_id, "modelID": model_id},
        }
        await self._call(
            "POST", f"/session/{session_id}/prompt_async", directory=directory, body=body
        )

    async def messages(self, directory: str, session_id: str) -> list[dict[str, Any]]:
        """``GET /session/{id}/message`` -> ``[{"info": {...}, "parts": [...]}, ...]``."""
        result = await self._call("GET", f"/session/{session_id}/message", directory=directory)
        return result if isinstance(result, list) else []

    async def status(self, directory: str) -> dict[str, dict[str, Any]]:
        """``GET /session/status`` -> ``{session_id: {"type": "busy"|"retry"|"idle"}}``.

        Idle sessions are usually absent.
        """
        result = await self._call("GET", "/session/status", directory=directory)
        return result if isinstance(result, dict) else {}

    async def abort(self, directory: str, session_id: str) -> bool:
        """``POST /session/{id}/abort`` -> whether OpenCode accepted the abort."""
        result = await self._call("POST", f"/session/{session_id}/abort", directory=directory)
        return result is not False

    async def reply_permission(
        self, directory: str, request_id: str, reply: str, message: str | None = None
    ) -> None:
        """``POST /permission/{id}/reply`` with ``once``, ``always`` or ``reject`` (and, for
        a rejection, the ``message`` the model reads)."""
        body: dict[str, Any] = {"reply": reply}
        if message:
            body["message"] = message
        await self._call("POST", f"/permission/{request_id}/reply", directory=directory, body=body)

    async def reject_question(self, directory: str, request_id: str) -> None:
        """``POST /question/{id}/reject``: nobody answers a model's question mid-run."""
        await self._call("POST", f"/question/{request_id}/reject", directory=directory)

    async def events(self, directory: str) -> AsyncIterator[dict[str, Any]]:
        """``GET /event``: yield each frame's JSON object ``{"id", "type", "properties"}``.

        Frames carry only ``data:`` lines (no ``event:`` names); the first is
        ``server.connected``, then ``server.heartbeat`` every 10 s. The stream has no read
        timeout: the caller watches for silence.

        Raises:
            OpenCodeHTTPError: the server refused the stream.
            OpenCodeConnectionError: the connection failed or dropped, or a frame was not
                a JSON object.
        """
        timeout = httpx.Timeout(None, connect=self._connect_timeout)
        request = self._http.build_request(
            "GET",
            "/event",
            params={"directory": directory},
            headers={"Accept": "text/event-stream"},
            timeout=timeout,
        )
        try:
            response = await self._http.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise OpenCodeConnectionError(f"OpenCode GET /event failed: {exc!r}") from exc
        try:
            if response.status_code >= 400:
                body = (await response.aread()).decode(errors="replace")
                raise OpenCodeHTTPError("GET", "/event", response.status_code, body)
            data: list[str] = []
            async for line in response.aiter_lines():
                if line.startswith("data:"):
                    data.append(line[5:].lstrip())
                elif not line and data:
                    yield _frame("\n".join(data))
                    data = []
        except httpx.HTTPError as exc:
            raise OpenCodeConnectionError(f"OpenCode event stream dropped: {exc!r}") from exc
        finally:
            await response.aclose()
        raise OpenCodeConnectionError("OpenCode event stream ended")


def _frame(text: str) -> dict[str, Any]:
    try:
        frame = json.loads(text)
    except ValueError as exc:
        raise OpenCodeConnectionError(
            f"OpenCode sent an invalid event frame: {text[:200]}"
        ) from exc
    if not isinstance(frame, dict):
        raise OpenCodeConnectionError(f"OpenCode sent a non-object event frame: {text[:200]}")
    return frame
