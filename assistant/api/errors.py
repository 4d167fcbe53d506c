"""Every error the API returns, in French and in the shape its client expects.

Why one module: a user of the REST routes reads `{"detail": "…"}`, an OpenAI client reads
`{"error": {"message": …, "type": …, "code": …}}` and raises the matching exception
(`openai.AuthenticationError` for a 401…). The same refusal (a missing key, a question too
long, an index locked by another ingest) must read the same in both, so the status and the
French sentence are decided once and only the envelope depends on the route. FastAPI's own
messages (validation errors, unknown routes) are English: they are translated here.

Under /v1 every refusal of the request itself is a 400, as OpenAI sends it: its clients map
400 to `BadRequestError` and read `code` (`context_length_exceeded` for a question or a
conversation over the limits, `unsupported_value` for a parameter the assistant cannot honour)
and `param` (the field at fault, `messages[0].role`); a 413 or 422 there would only raise a
generic `APIStatusError` that no client handles.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from assistant.access import AccessDenied
from assistant.service import StoreError

logger = logging.getLogger("fp_assistant.api")

OPENAI_PREFIX = "/v1"
INTERNAL_ERROR = (
    "Erreur interne du serveur : la requête n'a pas abouti. L'incident est consigné dans le journal "
    "du service ; réessayez ou prévenez l'administrateur."
)
# OpenAI's error `type` and `code` for each status, so that its clients raise the right class.
_OPENAI_KIND: dict[int, tuple[str, str | None]] = {
    400: ("invalid_request_error", None),
    401: ("authentication_error", "invalid_api_key"),
    403: ("permission_error", "insufficient_permissions"),
    404: ("invalid_request_error", "not_found"),
    405: ("invalid_request_error", "method_not_allowed"),
    413: ("invalid_request_error", "context_length_exceeded"),
    415: ("invalid_request_error", "unsupported_media_type"),
    422: ("invalid_request_error", "invalid_value"),
    503: ("server_error", "service_unavailable"),
}


# statuses an OpenAI client only knows as 400 (it has no class for 413 or 422)
_OPENAI_AS_400 = frozenset({413, 415, 422})


class ApiError(HTTPException):
    """An HTTP error with a French message and, for OpenAI clients, an error `code` and the
    `param` at fault."""

    def __init__(self, status: int, message: str, code: str | None = None, param: str | None = None) -> None:
        super().__init__(status_code=status, detail=message)
        self.code = code
        self.param = param


class RequestTooLarge(HTTPException):
    """413 with a French sentence: raised while a body is read (size middleware, upload form)."""

    def __init__(self, message: str) -> None:
        super().__init__(status_code=413, detail=message)


def is_openai_path(path: str) -> bool:
    return path == OPENAI_PREFIX or path.startswith(OPENAI_PREFIX + "/")


def error_body(path: str, status: int, message: str, *, code: str | None = None,
               param: str | None = None, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The JSON of an error: `{"detail": …}` on REST routes, OpenAI's envelope under /v1."""
    if is_openai_path(path):
        kind, default_code = _OPENAI_KIND.get(status, ("server_error", None))
        if status == 413:
            param = param or "messages"
        return {"error": {"message": message, "type": kind, "param": param, "code": code or default_code}}
    return {"detail": message, **(extra or {})}


def error_response(path: str, status: int, message: str, *, code: str | None = None,
                   param: str | None = None, extra: dict[str, Any] | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    if status == 401:
        headers = {"WWW-Authenticate": "Bearer", **(headers or {})}
    body = error_body(path, status, message, code=code, param=param, extra=extra)
    return JSONResponse(body, status_code=error_status(path, status), headers=headers)


def error_status(path: str, status: int) -> int:
    """The status sent: a 413, 415 or 422 is a 400 for OpenAI clients (its body keeps the code)."""
    return 400 if is_openai_path(path) and status in _OPENAI_AS_400 else status


# --------------------------------------------------------------------------- validation, in French

_FIELD_ROOTS = {"body", "query", "path", "header", "cookie"}


def _where(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc if str(p) not in _FIELD_ROOTS]
    return ".".join(parts)


def _param(loc: tuple[Any, ...] | list[Any]) -> str | None:
    """OpenAI's way of naming a field: `messages[0].content` (list positions in brackets)."""
    out = ""
    for p in loc:
        if str(p) in _FIELD_ROOTS:
            continue
        if isinstance(p, int):
            out += f"[{p}]"
        elif not str(p).isidentifier():  # a union member's tag (`str`, `list[ContentPart]`)
            continue
        else:
            out += ("." if out else "") + str(p)
    return out or None


def french_validation_message(err: dict[str, Any]) -> str:
    """One pydantic error as a French phrase (« question : texte trop long (au plus 2000 caractères) »)."""
    kind = str(err.get("type", ""))
    ctx = err.get("ctx") or {}
    messages = {
        "missing": "champ obligatoire manquant",
        "string_too_long": f"texte trop long (au plus {ctx.get('max_length')} caractères)",
        "string_too_short": f"texte trop court (au moins {ctx.get('min_length')} caractère(s))",
        "too_long": f"trop d'éléments (au plus {ctx.get('max_length')})",
        "too_short": f"pas assez d'éléments (au moins {ctx.get('min_length')})",
        "greater_than_equal": f"doit être supérieur ou égal à {ctx.get('ge')}",
        "less_than_equal": f"doit être inférieur ou égal à {ctx.get('le')}",
        "greater_than": f"doit être supérieur à {ctx.get('gt')}",
        "less_than": f"doit être inférieur à {ctx.get('lt')}",
        "int_parsing": "doit être un nombre entier",
        "int_type": "doit être un nombre entier",
        "int_from_float": "doit être un nombre entier",
        "float_parsing": "doit être un nombre",
        "float_type": "doit être un nombre",
        "string_type": "doit être un texte",
        "bool_parsing": "doit valoir true ou false",
        "bool_type": "doit valoir true ou false",
        "literal_error": "valeur non permise (choix : "
        + str(ctx.get("expected", "")).replace(" or ", " ou ") + ")",
        "enum": "valeur non permise (choix : " + str(ctx.get("expected", "")).replace(" or ", " ou ") + ")",
        "list_type": "doit être une liste",
        "tuple_type": "doit être une liste",
        "dict_type": "doit être un objet JSON",
        "model_type": "doit être un objet JSON",
        "model_attributes_type": "doit être un objet JSON",

        "json_type": "doit être du JSON",
        "extra_forbidden": "champ inconnu",
        "union_tag_invalid": "valeur non permise",
    }
    if kind == "json_invalid":  # loc is ("body", position); json's own message is English
        position = (err.get("loc") or ("", "?"))[-1]
        return f"corps JSON illisible (erreur au caractère {position})"
    if kind in messages:
        text = messages[kind]
    elif kind in ("value_error", "assertion_error"):  # our validators raise French messages
        text = str(err.get("msg", "")).removeprefix("Value error, ").removeprefix("Assertion failed, ")
    else:
        text = "valeur invalide"
    where = _where(err.get("loc") or ())
    return f"{where} : {text}" if where else text


def _validation_response(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = list(exc.errors())
    items = [{"loc": [str(p) for p in e.get("loc") or ()], "message": french_validation_message(e),
              "type": str(e.get("type", ""))} for e in errors]
    message = "Requête invalide : " + " ; ".join(i["message"] for i in items) + "."
    first = errors[0] if errors else {}
    # malformed JSON: its loc is a character position, not a field
    param = None if first.get("type") == "json_invalid" else _param(first.get("loc") or ())
    code = "invalid_json" if first.get("type") == "json_invalid" else None
    return error_response(request.url.path, 422, message, code=code, param=param, extra={"errors": items})


# --------------------------------------------------------------------------- handlers

def _http_message(request: Request, exc: HTTPException) -> str:
    """FastAPI and Starlette raise some HTTPExceptions with an English phrase: translate those."""
    try:
        phrase = HTTPStatus(exc.status_code).phrase
    except ValueError:
        phrase = ""
    detail = exc.detail
    if isinstance(detail, str) and detail and detail != phrase:
        return detail
    if exc.status_code == 404:
        return f"Adresse inconnue : {request.url.path}. La documentation de l'API est sur /docs."
    if exc.status_code == 405:
        return f"Méthode {request.method} non permise sur {request.url.path}."
    return f"Erreur HTTP {exc.status_code}."


def _sentence(message: str) -> str:
    """The service's messages are clauses (« question trop longue (…) »): make them sentences."""
    message = message.strip()
    return message[:1].upper() + message[1:]


def install_error_handlers(app: FastAPI) -> None:
    """Map what the service raises to HTTP: AccessDenied → 401/403, ValueError → 400 (its
    French message), StoreError → 503, validation → 422, anything else → 500 (logged)."""

    @app.exception_handler(AccessDenied)
    async def _denied(request: Request, exc: AccessDenied) -> JSONResponse:
        return error_response(request.url.path, exc.status, exc.message)

    @app.exception_handler(StoreError)
    async def _store(request: Request, exc: StoreError) -> JSONResponse:
        return error_response(request.url.path, 503, _sentence(str(exc) or "Index indisponible."),
                              headers={"Retry-After": "10"})

    @app.exception_handler(ValueError)
    async def _value(request: Request, exc: ValueError) -> JSONResponse:
        return error_response(request.url.path, 400, _sentence(str(exc) or "Requête invalide."))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _validation_response(request, exc)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        headers = dict(exc.headers or {})
        return error_response(request.url.path, exc.status_code, _http_message(request, exc),
                              code=getattr(exc, "code", None), param=getattr(exc, "param", None),
                              headers=headers or None)

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> JSONResponse:
        logger.error("erreur interne sur %s %s", request.method, request.url.path, exc_info=exc)
        return error_response(request.url.path, 500, INTERNAL_ERROR)
