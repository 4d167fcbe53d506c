"""The REST routes: search, ask, compare, draft, documents, stats, uploads, feedback, health.

Why they are thin: each one checks its input, calls the one matching `Service` method with
the caller its key stands for, and returns the service's JSON as is — the same contracts as
`fp-assistant … --json`, so a script can move from the CLI to HTTP without rewriting its
parsing. What a caller sees (a public key never sees an internal document, in any list,
count, citation or lead) is decided by the service from that caller; no route filters.

Blocking work never runs on the event loop: plain `def` routes run in FastAPI's thread pool,
`async def` ones (the streaming ones) hand their service call to `run_in_threadpool`.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.responses import FileResponse, JSONResponse
from starlette.concurrency import run_in_threadpool

from assistant.access import Caller
from assistant.api import schemas
from assistant.api.auth import CallerDep, ServiceDep, app_settings, require_write
from assistant.api.streaming import answer_events, progress_events, sse_event, sse_response, wants_stream
from assistant.api.upload_form import read_files
from assistant.service import Service, sanitize_filename

ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": schemas.ErrorOut, "description": "Requête refusée (filtre inconnu, question vide…)."},
    401: {"model": schemas.ErrorOut, "description": "Clé d'accès manquante, inconnue ou révoquée."},
    413: {"model": schemas.ErrorOut, "description": "Requête ou question trop volumineuse."},
    422: {"description": "Corps de requête invalide."},
    503: {"model": schemas.ErrorOut, "description": "Index indisponible (verrou d'une autre indexation…)."},
}
ADMIN_ERRORS: dict[int | str, dict[str, Any]] = {
    **ERRORS, 403: {"model": schemas.ErrorOut, "description": "Réservé aux clés admin."},
}
SSE_DOC = {"text/event-stream": {"schema": {"type": "string"}, "example": (
    'event: piece\ndata: {"text": "D\'après les documents du corpus :\\n"}\n\n'
    'event: answer\ndata: {"answer": "…", "citations": […], …}\n\nevent: done\ndata: {}\n\n')}}
DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
EXPORT_TYPES = {"docx": DOCX_TYPE, "md": "text/markdown; charset=utf-8"}

Uploader = Annotated[Caller, Depends(require_write("ajouter des documents"))]
Remover = Annotated[Caller, Depends(require_write("supprimer des documents"))]
FeedbackReader = Annotated[Caller, Depends(require_write("exporter les avis"))]

router = APIRouter()


def check_question(request: Request, text: str) -> None:
    """The configured longest question (`FP_MAX_QUESTION_CHARS`), refused in French (413);
    the question is kept for the request log (written only with FP_LOG_QUESTIONS)."""
    request.state.question = text
    limit = app_settings(request).max_question_chars
    if len(text) > limit:
        raise HTTPException(413, f"Question trop longue : {len(text)} caractères, au plus {limit} "
                                 "(réglage FP_MAX_QUESTION_CHARS).")


def _filters(service: Service, caller: Caller, body: schemas.FilterFields) -> Any:
    return service.filters(caller, fabrique=body.fabrique, territory=body.territory, year=body.year,
                           doc_type=body.doc_type)


def attachment(filename: str) -> str:
    """`Content-Disposition` for a download: an ASCII name every client accepts, plus the
    accented name for those that read RFC 5987."""
    safe = sanitize_filename(filename)
    return f"attachment; filename=\"{safe}\"; filename*=UTF-8''{quote(filename, safe='')}"


# --------------------------------------------------------------------------- service

@router.get("/health", tags=["Service"], summary="État du service", response_model=schemas.HealthOut,
            response_model_exclude_none=True)
def health(service: ServiceDep) -> dict[str, Any]:
    """Sans clé : « ok » et le nombre de documents publics indexés. Pour les sondes de
    supervision ; n'écrit qu'une ligne de débogage dans le journal."""
    return {"status": "ok", "documents": len(service.records(Caller("public", "health")))}


# --------------------------------------------------------------------------- questions

@router.post("/api/search", tags=["Questions"], summary="Chercher des passages", response_model=None,
             responses={200: {"model": list[schemas.PassageOut],
                              "description": "Les passages, du plus pertinent au moins pertinent "
                                             "(contrat de `fp-assistant search --json`)."}, **ERRORS})
def search(body: schemas.SearchRequest, request: Request, caller: CallerDep,
           service: ServiceDep) -> list[dict[str, Any]]:
    """Recherche hybride (sens et mots) dans les documents que la clé peut voir."""
    check_question(request, body.query)
    passages = service.search(body.query, caller, filters=_filters(service, caller, body), k=body.k)
    return [p.as_json() for p in passages]


async def _answer(request: Request, body: schemas.QuestionRequest, mode: str, caller: Caller,
                  service: Service) -> Response:
    check_question(request, body.question)
    filters = await run_in_threadpool(_filters, service, caller, body)
    history = [(q, a) for q, a in body.history] or None
    if wants_stream(body.stream, request.headers.get("accept")):
        # retrieval (and so a bad filter or a locked index) fails here, before the 200 is sent
        stream = await run_in_threadpool(service.ask_stream, body.question, caller, mode=mode,
                                         filters=filters, history=history, k=body.k)
        return sse_response(answer_events(stream))
    answer = await run_in_threadpool(service.ask, body.question, caller, mode=mode, filters=filters,
                                     history=history, k=body.k)
    return JSONResponse(answer.as_json())


ANSWER_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": schemas.AnswerOut, "content": SSE_DOC,
          "description": "La réponse citée (contrat de `fp-assistant ask --json`), ou son flux SSE."},
    **ERRORS,
}


@router.post("/api/ask", tags=["Questions"], summary="Poser une question", response_model=None,
             responses=ANSWER_RESPONSES)
async def ask(body: schemas.AskRequest, request: Request, caller: CallerDep,
              service: ServiceDep) -> Response:
    """Une réponse en français dont chaque affirmation renvoie par [n] à une source citée, ou,
    si le corpus ne permet pas de répondre, un refus avec les pistes les plus proches. Avec
    `history`, une relance (« Et à Colmar ? ») est comprise dans le fil de la conversation."""
    return await _answer(request, body, body.mode, caller, service)


@router.post("/api/compare", tags=["Questions"], summary="Comparer les territoires", response_model=None,
             responses=ANSWER_RESPONSES)
async def compare(body: schemas.CompareRequest, request: Request, caller: CallerDep,
                  service: ServiceDep) -> Response:
    """La même question, réponse groupée territoire par territoire (`rows`) : `POST /api/ask`
    avec `mode` « compare »."""
    return await _answer(request, body, "compare", caller, service)


# --------------------------------------------------------------------------- drafting

@router.post("/api/draft", tags=["Rédaction"], summary="Rédiger un projet de feuille de route",
             response_model=None,
             responses={200: {"model": schemas.RoadmapOut,
                              "content": {DOCX_TYPE: {"schema": {"type": "string", "format": "binary"}},
                                          "text/markdown": {"schema": {"type": "string"}}},
                              "description": "La feuille de route en JSON, ou le fichier Word / "
                                             "Markdown en pièce jointe."}, **ERRORS})
def draft(body: schemas.DraftRequest, caller: CallerDep,
          service: ServiceDep) -> Response:
    """Un projet de feuille de route pour un territoire, dont chaque élément cite ses sources
    (les documents du territoire et de sa fabrique que la clé peut voir)."""
    roadmap = service.draft(body.territory, caller, fabrique=body.fabrique, theme=body.theme,
                            sections=body.sections)
    if body.format == "json":
        return JSONResponse(roadmap.as_json())
    data = service.export(roadmap, body.format)
    return Response(data, media_type=EXPORT_TYPES[body.format], headers={
        "Content-Disposition": attachment(f"feuille-de-route-{body.territory}.{body.format}")})


@router.get("/api/draft/sections", tags=["Rédaction"], summary="Sections d'une feuille de route",
            responses=ERRORS)
def draft_sections(_caller: CallerDep) -> dict[str, str]:
    """Identifiant → titre de chaque section, dans l'ordre (valeurs de `sections`)."""
    return Service.draft_sections()


# --------------------------------------------------------------------------- documents

@router.get("/api/documents", tags=["Documents"], summary="Lister les documents", response_model=None,
            responses={200: {"model": list[schemas.DocumentOut],
                             "description": "Les documents que la clé peut voir (contrat de "
                                            "`fp-assistant docs --json`)."}, **ERRORS})
def documents(
    caller: CallerDep, service: ServiceDep,
    fabrique: Annotated[str | None, Query(max_length=schemas.NAME_MAX, description=(
        "Fabrique : identifiant, intitulé ou « non renseignée »."))] = None,
    territory: Annotated[str | None, Query(max_length=schemas.NAME_MAX,
                                           description="Territoire : l'un de ses noms.")] = None,
) -> list[dict[str, Any]]:
    """Chaque document indexé, ses métadonnées et d'où elles viennent."""
    return service.documents(caller, fabrique or None, territory or None)


@router.get("/api/documents/{doc_id}/file", tags=["Documents"], summary="Télécharger un document",
            response_class=FileResponse,
            responses={200: {"content": {"application/octet-stream": {}},
                             "description": "Le fichier d'origine."},
                       404: {"model": schemas.ErrorOut, "description": "Document inconnu ou fichier absent."},
                       **ERRORS})
def document_file(doc_id: str, caller: CallerDep,
                  service: ServiceDep) -> FileResponse:
    """Le fichier d'origine d'un document (pour ouvrir une source citée)."""
    path = service.document_file(caller, doc_id)
    if path is None:
        raise HTTPException(404, f"Document inconnu ou fichier introuvable : « {doc_id} ».")
    return FileResponse(path, headers={"Content-Disposition": attachment(path.name)})


@router.get("/api/stats", tags=["Documents"], summary="Statistiques de l'index", response_model=None,
            responses={200: {"model": schemas.StatsOut, "description": "Documents et passages par "
                             "fabrique, type et année (contrat de `fp-assistant stats --json`)."}, **ERRORS})
def stats(caller: CallerDep, service: ServiceDep) -> dict[str, Any]:
    """Ce que l'index contient, compté sur les documents que la clé peut voir."""
    return service.stats(caller)


def _upload_json(result: Any) -> dict[str, Any]:
    return {
        "outcomes": [{"name": o.name, "status": o.status, "message": o.message, "saved_as": o.saved_as}
                     for o in result.outcomes],
        "indexed": len(result.indexed),
        "error": result.error,
        "report": result.report.as_json() if result.report is not None else None,
    }


UPLOAD_BODY = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["files"],
    "properties": {"files": {"type": "array", "items": {"type": "string", "format": "binary"},
                             "description": "Un ou plusieurs fichiers : PDF, DOCX, ODT, PPTX, ODP, HTML, "
                                            "Markdown, texte."}},
}}}}}


@router.post("/api/documents", tags=["Documents"], summary="Ajouter des documents (admin)",
             response_model=None, openapi_extra=UPLOAD_BODY,
             responses={200: {"model": schemas.UploadOut, "content": {"text/event-stream": {
                 "schema": {"type": "string"}}},
                 "description": "Le sort de chaque fichier ; avec `stream=true`, des événements « progress » "
                                "{done, total, file} puis « result »."},
                 415: {"model": schemas.ErrorOut,
                       "description": "Le corps n'est pas un formulaire multipart."},
                 **ADMIN_ERRORS})
async def upload(
    request: Request,
    caller: Uploader,
    service: ServiceDep,
    stream: Annotated[bool, Query(description="Suivre l'indexation en Server-Sent Events.")] = False,
) -> Response:
    """Dépôt de fichiers (champ `files`, multipart/form-data), vérifiés puis indexés : le type est
    reconnu à son contenu, pas à son nom ; chaque fichier reçoit un statut (« ajouté », « refusé »…)
    et un motif en français. Au plus FP_UPLOAD_MAX_FILES fichiers de FP_UPLOAD_MAX_MB chacun :
    au-delà, la requête est refusée (413) sans être lue davantage."""
    settings = app_settings(request)
    files = await read_files(request, max_files=settings.upload_max_files,
                             max_bytes=settings.upload_max_bytes)
    if wants_stream(stream, request.headers.get("accept")):
        def result_events(result: Any) -> list[str]:
            return [sse_event("result", _upload_json(result)), sse_event("done", {})]

        return sse_response(progress_events(lambda progress: service.upload(files, caller, progress=progress),
                                            result_events))
    result = await run_in_threadpool(service.upload, files, caller)
    body = _upload_json(result)
    if result.error:  # the batch could not run (another ingest holds the lock): nothing was kept
        return JSONResponse({"detail": result.error, **body}, status_code=503, headers={"Retry-After": "10"})
    return JSONResponse(body)


@router.delete("/api/documents/{doc_id}", tags=["Documents"], summary="Retirer un document (admin)",
               response_model=None,
               responses={200: {"model": schemas.DeleteOut,
                                "description": "Le document est retiré de l'index."},
                          404: {"model": schemas.ErrorOut, "description": "Document inconnu."},
                          **ADMIN_ERRORS})
def delete_document(doc_id: str, caller: Remover,
                    service: ServiceDep) -> dict[str, Any]:
    """Retire un document de l'index ; un fichier déposé par l'API ou l'application est supprimé
    avec lui (sinon la prochaine réindexation le ramènerait)."""
    done = service.delete(doc_id, caller)
    if done is None:
        raise HTTPException(404, f"Document inconnu : « {doc_id} ».")
    return done


# --------------------------------------------------------------------------- feedback

@router.post("/api/feedback", tags=["Avis"], summary="Donner son avis sur une réponse",
             response_model=schemas.FeedbackOut, responses=ERRORS)
def feedback(body: schemas.FeedbackRequest, caller: CallerDep,
             service: ServiceDep) -> dict[str, Any]:
    """👍/👎 et commentaire sur une réponse, gardés avec leur contexte pour l'équipe qui
    améliore l'assistant. Toute clé peut donner son avis."""
    fields = body.model_dump(exclude={"message_id"})
    entry = service.record_feedback(caller, body.message_id, **fields)
    return {"message_id": entry.message_id, "rating": entry.rating, "comment": entry.comment}


@router.get("/api/feedback.csv", tags=["Avis"], summary="Exporter les avis (admin)",
            response_class=Response,
            responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}},
                             "description": "Les avis en CSV (séparateur « ; », UTF-8 avec BOM, "
                                            "pour Excel)."},
                       **ADMIN_ERRORS})
def feedback_csv(caller: FeedbackReader,
                 service: ServiceDep) -> Response:
    """Tous les avis, une ligne par réponse jugée."""
    return Response(service.feedback_csv(caller), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": attachment("avis-fp-assistant.csv")})
