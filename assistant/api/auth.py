"""Who is calling: the Bearer key of each request turned into a `Caller`, or a refusal.

Why here and nowhere else: the rule « no valid key, no answer » must hold for every route
but the health probe, and the role must reach the service untouched — the service decides
what a role sees (a public key never sees an internal document) and may do. A route only
declares `Depends(current_caller)`, or `Depends(require_write("…"))` for the admin routes;
the latter refuses (403) before the request body is read, so an upload by a read-only key
costs nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPBearer

from assistant import access
from assistant.access import AccessDenied, Caller
from assistant.config import Settings
from assistant.service import Service

# Declared for the OpenAPI page (its « Authorize » button); the header is read by `parse_bearer`.
bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="CleAcces",
    bearerFormat="fpa_…",
    description=(
        "Clé d'accès créée par l'administrateur de l'index (`fp-assistant keys add --name NOM --role "
        "public|interne|admin`), envoyée dans l'en-tête `Authorization: Bearer fpa_…`. Le rôle de la "
        "clé décide des documents visibles (public : documents publics seulement) et des droits "
        "(admin : ajout et suppression de documents, export des avis)."
    ),
)


def get_service(request: Request) -> Service:
    """The app's service (one per app: the model and the index are opened once)."""
    return request.app.state.service


def app_settings(request: Request) -> Settings:
    """The settings the app was built with (limits, logging)."""
    return request.app.state.settings


def current_caller(request: Request, _scheme: object = Security(bearer_scheme)) -> Caller:
    """The caller of a valid key; 401 (French) if the key is missing, unknown or revoked.

    A plain function: FastAPI runs it in its thread pool, so the key lookup (SQLite) never
    blocks the event loop.
    """
    secret = access.parse_bearer(request.headers.get("authorization"))
    caller = get_service(request).authenticate(secret)
    if caller is None:
        raise AccessDenied.unauthenticated()
    request.state.caller = caller  # for the request log
    return caller


CallerDep = Annotated[Caller, Depends(current_caller)]
ServiceDep = Annotated[Service, Depends(get_service)]


def require_write(action: str) -> Callable[..., Caller]:
    """A dependency admitting only a caller who may write; `action` is the French infinitive
    shown in the 403 (« ajouter des documents »)."""

    def admin_caller(caller: CallerDep) -> Caller:
        access.require_write(caller, action)
        return caller

    return admin_caller
