"""The fabriques' cards over HTTP: `GET /api/fabriques` and `GET /api/fabriques/{id}`.

Why a router of its own: the cards are a page of their own in every face (`fp-assistant
fabriques`, the app's « Fabriques » page), and their routes return the service's JSON as is —
the contract of `fp-assistant fabriques --json` and `fabrique ID --json` — so the three faces
show the same card. What a card says to a key is decided by the service from that key's role
(a public key reads only what public documents say); no route filters.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query

from assistant.api import schemas
from assistant.api.auth import CallerDep, ServiceDep
from assistant.api.rest import ERRORS

router = APIRouter()


@router.get("/api/fabriques", tags=["Fabriques"], summary="Fiches des fabriques", response_model=None,
            responses={200: {"model": schemas.FabriqueListOut,
                             "description": "Les fiches que la clé peut lire et les filtres (contrat de "
                                            "`fp-assistant fabriques --json`)."}, **ERRORS})
def fabriques(
    caller: CallerDep, service: ServiceDep,
    theme: Annotated[str | None, Query(max_length=schemas.NAME_MAX, description=(
        "Mots du titre ou du thème de la fabrique (« mobilité »)."))] = None,
    year: Annotated[str | None, Query(max_length=schemas.NAME_MAX, description=(
        "Année d'édition de la fabrique, ou comprise dans sa période (« 2019 »)."))] = None,
    region: Annotated[str | None, Query(max_length=schemas.NAME_MAX, description=(
        "Région de l'un de ses territoires (« Bretagne ») ; une région inconnue est refusée (400) "
        "avec la liste des choix."))] = None,
) -> dict[str, Any]:
    """Chaque fabrique : titre, thème, édition, territoires (département, région), prestataires,
    associations d'élus, partenaires, enseignements — chaque valeur avec les phrases qui la disent
    (document, page) — et ses documents par type. Une clé `public` ne lit que ce que disent les
    documents publics."""
    return service.fabriques(caller, theme=theme or None, year=year or None, region=region or None)


@router.get("/api/fabriques/{fabrique}", tags=["Fabriques"], summary="Fiche d'une fabrique",
            response_model=None,
            responses={200: {"model": schemas.FabriqueOut,
                             "description": "La fiche (contrat de `fp-assistant fabrique ID --json`)."},
                       404: {"model": schemas.ErrorOut,
                             "description": "Aucune fabrique lisible par la clé ne porte ce nom ; le "
                                            "motif liste celles qu'elle peut lire."},
                       **ERRORS})
def fabrique(
    caller: CallerDep, service: ServiceDep,
    fabrique: Annotated[str, Path(max_length=schemas.NAME_MAX, description=(
        "Identifiant (« senior-petite-ville ») ou intitulé, même partiel."))],
) -> dict[str, Any]:
    """La fiche d'une fabrique, chaque valeur avec sa source."""
    try:
        return service.fabrique(caller, fabrique)
    except ValueError as exc:
        if getattr(exc, "status", None) == 404:  # unknown to this key: absent, not a bad request
            message = str(exc).strip()
            raise HTTPException(404, message[:1].upper() + message[1:]) from exc
        raise
