"""Build the FastAPI application: routes, key checks, limits, request log, French documentation.

Why a factory: tests and deployments each build the app over their own settings and service
(`create_app(settings, service)`), and uvicorn can build it from the environment
(`uvicorn assistant.api.app:create_app --factory`). The OpenAPI page at /docs is the API's
user documentation, so it is written in French, states the configured limits, and describes
errors with the shapes the API really returns.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from starlette.concurrency import run_in_threadpool

from assistant.access import ROLE_LABELS
from assistant.api import fabriques, openai_compat, rest, schemas
from assistant.api.errors import install_error_handlers, is_openai_path
from assistant.api.middleware import AccessLogMiddleware, BodyLimitMiddleware, size_text
from assistant.config import Settings, get_settings
from assistant.service import Service, get_service

logger = logging.getLogger("fp_assistant.api")

TITLE = "Assistant Fabriques Prospectives — API"
VERSION = "1.0"

TAGS = [
    {"name": "Questions", "description": "Recherche de passages, réponses citées et comparaisons entre "
                                         "territoires, sur les documents que la clé peut voir."},
    {"name": "Rédaction", "description": "Projets de feuille de route cités, en JSON, Word ou Markdown."},
    {"name": "Documents",
     "description": "Ce que l'index contient ; ajout et retrait de documents (clé admin)."},
    {"name": "Fabriques", "description": "Fiches des fabriques : titre, édition, territoires, partenaires, "
                                         "enseignements, chaque valeur avec sa source."},
    {"name": "Avis", "description": "👍/👎 des utilisateurs sur les réponses ; export CSV (clé admin)."},
    {"name": "Compatibilité OpenAI",
     "description": "Les mêmes réponses par le protocole OpenAI (`base_url` = `…/v1`), pour les "
                    "clients de chat existants."},
    {"name": "Service", "description": "Supervision (sans clé)."},
]


def _description(settings: Settings) -> str:
    roles = "\n".join(f"- `{role}` — {label}" for role, label in ROLE_LABELS.items())
    return f"""
Assistant documentaire hors ligne des **Fabriques Prospectives** (ANCT) : recherche dans le corpus,
réponses en français dont chaque affirmation cite sa source, comparaisons entre territoires, projets
de feuille de route. Les réponses ne viennent que des documents indexés ; quand ils ne permettent
pas de répondre, l'assistant le dit et propose les passages les plus proches.

## Accès

Chaque requête (sauf `GET /health`) porte une clé d'accès dans l'en-tête :

    Authorization: Bearer fpa_…

Les clés sont créées par l'administrateur de l'index (`fp-assistant keys add --name NOM --role ROLE`) ;
une clé absente, inconnue ou révoquée reçoit **401**, un rôle insuffisant **403**. Rôles :

{roles}

Une clé `public` ne voit jamais un document marqué `visibility: interne` : ni dans les passages,
ni dans les citations, les pistes, les comparaisons, les feuilles de route, les listes ou les comptes.

## Limites

- question : au plus **{settings.max_question_chars} caractères** (réglage `FP_MAX_QUESTION_CHARS`) ;
- corps d'une requête JSON : au plus **{settings.api_max_request_kb} Ko** (`FP_API_MAX_REQUEST_KB`) ;
- dépôt de documents : au plus **{settings.upload_max_files} fichiers** de
  **{size_text(settings.upload_max_bytes)}** chacun (`FP_UPLOAD_MAX_FILES`, `FP_UPLOAD_MAX_MB`).

Au-delà, la requête est refusée (**413**) sans être lue davantage.

## Contrat JSON

Les réponses reprennent les contrats de la ligne de commande, dont les champs ne font que
s'ajouter : `POST /api/search` = `fp-assistant search --json`, `POST /api/ask` = `ask --json`,
`GET /api/documents` = `docs --json`, `GET /api/stats` = `stats --json`, `POST /api/draft` =
`draft --json`. Une réponse porte son texte (`answer`, avec des marqueurs `[n]`), ses `citations`
numérotées (fichier, titre, page, extrait), et `grounded` (faux pour un refus, qui liste ses `leads`).

Les erreurs sont en français : `{{"detail": "…"}}` (400 requête refusée, 401, 403, 404, 413,
422 corps invalide, 503 index indisponible — par exemple pendant une autre indexation) ; sous
`/v1`, l'enveloppe d'OpenAI `{{"error": {{"message": "…", "type": "…", "code": "…"}}}}`.

## Flux (Server-Sent Events)

`POST /api/ask` et `POST /api/compare` avec `"stream": true` (ou `Accept: text/event-stream`)
envoient des événements `piece` `{{"text": …}}` au fil du texte, puis `answer` (la réponse vérifiée,
citations comprises, dont le texte remplace les morceaux reçus), puis `done`.
`POST /api/documents?stream=true` envoie des événements `progress` `{{"done", "total", "file"}}`
puis `result`.

## Clients OpenAI

    from openai import OpenAI
    client = OpenAI(base_url="http://hôte:port/v1", api_key="fpa_…")
    r = client.chat.completions.create(model="fp-assistant",
                                       messages=[{{"role": "user", "content": "…"}}])

Modèles : `fp-assistant` (réponse citée) et `fp-assistant-compare` (comparaison territoire par
territoire). Le dernier message `user` est la question, les échanges précédents servent aux
relances, les messages `system` sont ignorés. Le texte se termine par la liste « Sources : » ; les
citations sont aussi dans le champ `citations` de la réponse (et du dernier morceau d'un flux, qui
n'envoie que le texte vérifié), la réponse complète dans `fp_answer`.
"""


def _french_openapi(app: FastAPI, settings: Settings) -> dict[str, Any]:
    """FastAPI's schema, with its English boilerplate replaced: response descriptions, the 422
    shape (ours, French), and the configured longest question."""
    if app.openapi_schema:
        return app.openapi_schema
    spec = get_openapi(title=app.title, version=app.version, description=app.description,
                       routes=app.routes, tags=app.openapi_tags, openapi_version=OPENAPI_VERSION)
    components = spec.setdefault("components", {}).setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    components["ValidationErrorOut"] = {
        "title": "ValidationErrorOut", "type": "object", "required": ["detail"],
        "properties": {
            "detail": {"type": "string", "description": "Le motif, en français."},
            "errors": {"type": "array", "description": "Chaque champ refusé et pourquoi.",
                       "items": {"type": "object", "properties": {
                           "loc": {"type": "array", "items": {"type": "string"}},
                           "message": {"type": "string"}, "type": {"type": "string"}}}},
        },
    }
    for path, path_item in spec.get("paths", {}).items():
        shape = "OpenAIErrorOut" if is_openai_path(path) else "ValidationErrorOut"
        for operation in path_item.values():
            for status, response in (operation.get("responses") or {}).items():
                if response.get("description") == "Successful Response":
                    response["description"] = "Réponse réussie."
                if status == "422":
                    response["description"] = "Corps de requête invalide (motif en français)."
                    response["content"] = {"application/json": {
                        "schema": {"$ref": f"#/components/schemas/{shape}"}}}
    questions = (("SearchRequest", "query"), ("AskRequest", "question"), ("CompareRequest", "question"))
    for model, field in questions:
        prop = components.get(model, {}).get("properties", {}).get(field)
        if prop is not None:
            prop["maxLength"] = settings.max_question_chars
    app.openapi_schema = as_openapi_30(spec)
    return app.openapi_schema


# The bundled Swagger UI (swagger-ui-bundle, Swagger UI 4.15) reads OpenAPI 3.0 only: with
# FastAPI's 3.1 it showed « Unable to render this definition » and no operation at all.
OPENAPI_VERSION = "3.0.3"


def as_openapi_30(node: Any) -> Any:
    """The few JSON Schema 2020-12 forms pydantic writes, in their OpenAPI 3.0 spelling: an
    optional value (`anyOf` with `{"type": "null"}`) is `nullable`, `examples` is `example`,
    `const` is a one-value `enum`."""
    if isinstance(node, list):
        return [as_openapi_30(x) for x in node]
    if not isinstance(node, dict):
        return node
    out = {k: as_openapi_30(v) for k, v in node.items()}
    variants = out.get("anyOf")
    if isinstance(variants, list) and {"type": "null"} in variants:
        rest = [v for v in variants if v != {"type": "null"}]
        out.pop("anyOf")
        if len(rest) == 1:
            out = {**rest[0], **out}  # the field's own title, default, description stay
        else:
            out["anyOf"] = rest
        out["nullable"] = True
    if isinstance(out.get("examples"), list) and "type" in out:  # a schema's examples, not a media type's
        examples = out.pop("examples")
        if examples:
            out["example"] = examples[0]
    if "const" in out:
        out["enum"] = [out.pop("const")]
    return out


def _warm_up(service: Service) -> None:
    """Load the model and open the index before the first request (uvicorn runs this before it
    opens its port), so that no user waits for them. An index not built yet is not created."""
    try:
        _ = service.embeddings
        if (Path(service.settings.store) / "index.sqlite3").is_file():
            _ = service.store
    except Exception as exc:  # noqa: BLE001 - the routes will say why (503) on each request
        logger.warning("index non ouvert au démarrage : %s", exc)


def create_app(settings: Settings | None = None, service: Service | None = None) -> FastAPI:
    """The API over `service` (by default the process's service for `settings`, itself by
    default read from the environment)."""
    if settings is None:
        settings = service.settings if service is not None else get_settings()
    if service is None:
        service = get_service(settings)
    ready = service

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(_warm_up, ready)
        yield

    app = FastAPI(
        lifespan=lifespan,
        title=TITLE,
        version=VERSION,
        description=_description(settings),
        openapi_tags=TAGS,
        docs_url=None,  # served below from local files: FastAPI's default page loads them from a CDN
        redoc_url=None,
        responses={500: {"model": schemas.ErrorOut, "description": "Erreur interne du serveur."}},
    )
    app.state.settings = settings
    app.state.service = service
    install_error_handlers(app)
    app.include_router(rest.router)
    app.include_router(fabriques.router)
    app.include_router(openai_compat.router)
    # the last added runs first: the log sees every request, the 413s of the size guard included
    app.add_middleware(BodyLimitMiddleware, settings=settings)
    app.add_middleware(AccessLogMiddleware, settings=settings)
    app.openapi = lambda: _french_openapi(app, settings)  # type: ignore[method-assign]
    _offline_docs(app)
    return app


def _offline_docs(app: FastAPI) -> None:
    """The documentation page with Swagger UI's files from the `swagger-ui-bundle` package:
    the machines this runs on often have no internet access, and a CDN page would be blank."""
    import swagger_ui_bundle
    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.responses import HTMLResponse
    from fastapi.staticfiles import StaticFiles

    app.mount("/docs-static", StaticFiles(directory=swagger_ui_bundle.swagger_ui_path), name="docs-static")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json", title=f"{TITLE} — documentation",
            swagger_js_url="/docs-static/swagger-ui-bundle.js", swagger_css_url="/docs-static/swagger-ui.css",
            swagger_favicon_url="/docs-static/favicon-32x32.png",
            swagger_ui_parameters={"defaultModelsExpandDepth": 0},
        )
