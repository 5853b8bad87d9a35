"""Admin routes: deploy (blue/green), rollback, shadow on/off, behind a bearer token.

The token is read once at start-up from the environment variable named by
``admin_token_env`` (default ``MANGAASSIST_ADMIN_TOKEN``) or from ``admin_token_file``. With
neither set, admin is off and every admin route answers 401 saying how to turn it on. The
token is compared in constant time and never logged (no request header is).

Routes (JSON bodies; ``bundle`` is a bundle folder on the server's disk, ``version`` a
registry version when the server was started with ``--registry``)::

    POST   /admin/deploy     {"bundle": "..."} | {"version": "v3"}
    POST   /admin/rollback
    POST   /admin/shadow     {"bundle" | "version": ..., "share": 1.0}
    DELETE /admin/shadow
"""

from __future__ import annotations

import asyncio
import hmac
import os
from pathlib import Path

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from mangaassist.errors import UserError
from mangaassist.serve import switch
from mangaassist.serve.schemas import ApiError
from mangaassist.serve.settings import ServeSettings


class Target(BaseModel):
    """Which model: a bundle folder, or a version of the server's registry."""

    model_config = ConfigDict(extra="forbid")
    bundle: str | None = None
    version: str | None = None
    share: float = Field(1.0, ge=0.0, le=1.0, description="shadow: share of requests scored")


def read_token(s: ServeSettings) -> str | None:
    """The admin token, or None (admin off)."""
    if s.admin_token_file:
        path = Path(s.admin_token_file)
        if not path.is_file():
            raise UserError(f"admin_token_file={path}: no such file")
        token = path.read_text().strip()
    else:
        token = os.environ.get(s.admin_token_env, "").strip()
    return token or None


def resolve_target(s: ServeSettings, target: Target) -> Path:
    """The bundle folder a deploy or shadow request names (a run is exported first)."""
    from mangaassist.serve.cli import resolve_bundle  # may export in a child process

    if (target.bundle is None) == (target.version is None):
        raise ApiError(422, "bundle_or_version", 'send exactly one of "bundle" or "version"')
    if target.bundle is not None:
        return resolve_bundle(target.bundle, None)
    if not s.registry:
        raise ApiError(422, "no_registry", "this server has no registry: send a bundle path")
    from mangaassist.release.registry import Registry

    return resolve_bundle(str(Registry(s.registry).path(target.version)), None)


async def _target(request: Request, target: Target) -> Path:
    """The bundle an admin request names, resolved off the event loop; 422 if it is bad."""
    try:
        return await asyncio.to_thread(resolve_target, request.app.state.settings, target)
    except UserError as err:
        raise ApiError(422, "bad_target", str(err)) from err


def admin_router(token: str | None, env_name: str) -> APIRouter:
    """The admin routes, each checking ``Authorization: Bearer <token>``."""

    async def authorized(request: Request) -> None:
        if token is None:
            raise ApiError(
                401, "admin_disabled", f"admin is off: start the server with ${env_name}"
            )
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            raise ApiError(401, "unauthorized", "missing or wrong bearer token", "authorization")

    router = APIRouter(prefix="/admin", tags=["admin"])

    @router.post("/deploy")
    async def deploy(target: Target, request: Request) -> dict:
        """Load, check and switch to a model (blue/green); blue keeps serving on a refusal."""
        await authorized(request)
        return await switch.deploy(request.app.state.runtime, await _target(request, target))

    @router.post("/rollback")
    async def rollback(request: Request) -> dict:
        """Return to the model that served before the last switch."""
        await authorized(request)
        try:
            return await switch.rollback(request.app.state.runtime)
        except UserError as err:
            raise ApiError(409, "nothing_to_roll_back", str(err)) from err

    @router.post("/shadow")
    async def shadow_on(target: Target, request: Request) -> dict:
        """Score a candidate on a share of requests, off the critical path."""
        await authorized(request)
        bundle = await _target(request, target)
        return await switch.set_shadow(request.app.state.runtime, bundle, target.share)

    @router.delete("/shadow")
    async def shadow_off(request: Request) -> dict:
        """Stop the shadow."""
        await authorized(request)
        return await switch.set_shadow(request.app.state.runtime, None)

    return router
