"""What a page of the app needs for one run: the service door, who is using the app, and
the index as this user may see it.

The service (embedding model, Chroma client) is built once per process and configuration
(`st.cache_resource`); the registry rows are read per run, so a page always shows the index
as it is now (after an upload). Who the user is comes from `FP_APP_ACCESS`: `local` (the
configured audience, `FP_AUDIENCE`: interne = every right, public = read-only public) or
`key` (the user types an API key and gets its role, as over HTTP).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import streamlit as st

from assistant.access import Caller
from assistant.config import Settings
from assistant.service import Service, get_service


@dataclass
class AppContext:
    """Everything a page needs for one run."""

    service: Service
    caller: Caller
    settings: Settings
    records: list[Any]
    options: Any  # catalog.IndexOptions
    ingest_running: bool

    @property
    def public(self) -> bool:
        return self.caller.audience == "public"


@st.cache_resource(show_spinner="Chargement du modèle et de l'index…")
def _service(_settings: Settings, key: str) -> Service:
    service = get_service(_settings)
    service.store  # noqa: B018 - open the index now: a StoreError shows on the page at once
    return service


def service_for(settings: Settings) -> Service:
    service = _service(settings, settings.model_dump_json())  # one per configuration
    service.settings = settings
    return service


def open_context(settings: Settings, caller: Caller) -> AppContext:
    """Resources for this run; raises `StoreError` when the index cannot be opened."""
    service = service_for(settings)
    records = service.records(caller)
    from assistant.catalog import index_options

    return AppContext(
        service=service, caller=caller, settings=settings, records=records,
        options=index_options(records, caller.audience), ingest_running=service.ingest_running(),
    )
