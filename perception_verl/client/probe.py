"""The start-up probe of one judge URL: ``/health`` answers 200 and ``/v1/models`` serves the model."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import aiohttp

from perception_verl.client.chat_config import ERROR_BODY_BYTES
from perception_verl.client.dialects import dialect_of_models
from perception_verl.client.replies import read_bounded, redirect_note

Found = tuple[str | None, str | None]
"""(dialect, owned_by) a server's model list reports."""


async def check_url(
    session: aiohttp.ClientSession, url: str, model: str, redact: Callable[[str], str], limit: float
) -> tuple[str | None, Found | None]:
    """(problem or None, what the model list reports) of ``url``, bounded by ``limit`` seconds."""
    try:
        return await asyncio.wait_for(probe_url(session, url, model, redact), timeout=limit)
    except asyncio.TimeoutError:
        return f"no answer to the health check within {limit:.3g} s (timeout)", None


async def probe_url(
    session: aiohttp.ClientSession, url: str, model: str, redact: Callable[[str], str]
) -> tuple[str | None, Found | None]:
    """One probe of ``url`` (see :func:`check_url`); every text from the server goes through ``redact``."""
    try:
        async with session.get(f"{url}/health", allow_redirects=False) as resp:
            if resp.status != 200:
                return f"GET /health returned HTTP {resp.status}{redirect_note(resp)}", None
        async with session.get(f"{url}/v1/models", allow_redirects=False) as resp:
            if resp.status != 200:
                return f"GET /v1/models returned HTTP {resp.status}{redirect_note(resp)}", None
            raw = await read_bounded(resp, ERROR_BODY_BYTES * 16)
        if raw is None:
            return f"GET /v1/models answered more than {ERROR_BODY_BYTES * 16} bytes (not read further)", None
    except aiohttp.ClientConnectorError as err:
        return f"connection refused or host unreachable ({redact(str(err.os_error))})", None
    except aiohttp.ClientError as err:
        return f"health request failed ({type(err).__name__}: {redact(str(err))})", None
    try:
        payload = json.loads(raw)
        served = [str(m["id"]) for m in payload["data"]]
    except (ValueError, KeyError, TypeError):
        return "GET /v1/models did not return an OpenAI model list", None
    found = dialect_of_models(payload, model)
    if model not in served:
        return redact(f"model {model!r} not served; served: {served}"), found
    return None, found
