"""Request bodies (checked) and response shapes (documented) of the API, described in French.

Why two kinds: request bodies are validated here with length limits, so that a malformed or
oversized request is refused in French before it costs a search. Responses are the service's
own JSON — the contracts of `fp-assistant ask --json`, `search --json`, `docs --json`,
`stats --json` — returned as the service builds them (fields only ever added); the response
models below only document those contracts on the OpenAPI page, they never filter them.
The longest question is a setting (`FP_MAX_QUESTION_CHARS`): the routes check it, and the
OpenAPI page shows its configured value.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

QUESTION_HARD_MAX = 100_000  # beyond any setting; the configured limit is checked by the routes
NAME_MAX = 200  # a fabrique, a territory, a year range, a type: short names
HISTORY_MAX = 20  # follow-ups use the last exchanges only


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FilterFields(_Body):
    """Filtres, tels qu'on les tape : un nom inconnu est refusé (400) avec la liste des choix."""

    fabrique: str | None = Field(
        None, max_length=NAME_MAX,
        description="Fabrique : identifiant (« senior-petite-ville ») ou intitulé, tel que "
        "`GET /api/stats` les liste.",
    )
    territory: str | None = Field(
        None, max_length=NAME_MAX, description="Territoire : l'un de ses noms (« Lorient », « CU d'Arras »)."
    )
    year: str | int | None = Field(
        None, description="Année (« 2019 ») ou période (« 2019-2021 »)."
    )
    doc_type: str | None = Field(
        None, max_length=NAME_MAX,
        description="Type de document : identifiant (« feuille_de_route ») ou nom français "
        "(« compte rendu », « cahier des charges »).",
    )


class SearchRequest(FilterFields):
    query: str = Field(
        ..., max_length=QUESTION_HARD_MAX,
        description="Texte cherché (au plus FP_MAX_QUESTION_CHARS caractères).",
        examples=["mobilité des personnes âgées"],
    )
    k: int = Field(5, ge=1, le=50, description="Nombre de passages renvoyés.")


class QuestionRequest(FilterFields):
    question: str = Field(
        ..., max_length=QUESTION_HARD_MAX,
        description="La question, en français (au plus FP_MAX_QUESTION_CHARS caractères).",
        examples=["Comment la mobilité des aînés est-elle organisée à Lorient ?"],
    )
    history: list[tuple[str, str]] = Field(
        default_factory=list, max_length=HISTORY_MAX,
        description="Échanges précédents de la conversation, du plus ancien au plus récent : "
        "[[question, réponse], …]. Une question de relance (« Et à Colmar ? ») est reformulée "
        "à partir de ces échanges avant la recherche.",
    )
    k: int | None = Field(
        None, ge=1, le=50, description="Passages lus pour répondre (par défaut : FP_ANSWER_K)."
    )
    stream: bool = Field(
        False,
        description="Réponse en flux Server-Sent Events (`text/event-stream`) : événements « piece » "
        "(morceaux du texte, au fil de l'écriture), puis « answer » (la réponse vérifiée et ses "
        "citations, dont le texte remplace les morceaux reçus), puis « done ». L'en-tête "
        "`Accept: text/event-stream` a le même effet.",
    )


class AskRequest(QuestionRequest):
    mode: Literal["answer", "compare"] = Field(
        "answer",
        description="« answer » : réponse citée ; « compare » : comparaison territoire par territoire.",
    )


class CompareRequest(QuestionRequest):
    """Une question à laquelle répondre territoire par territoire."""


class DraftRequest(_Body):
    territory: str = Field(..., min_length=1, max_length=NAME_MAX,
                           description="Territoire de la feuille de route.", examples=["Lorient"])
    fabrique: str | None = Field(None, max_length=NAME_MAX,
                                 description="Fabrique dont s'inspirer (identifiant ou intitulé).")
    theme: str | None = Field(None, max_length=500, description="Thème à privilégier (facultatif).")
    sections: list[str] | None = Field(
        None, max_length=20,
        description="Sections à rédiger, par identifiant (voir `GET /api/draft/sections`) ; "
        "toutes par défaut.",
    )
    format: Literal["json", "docx", "md"] = Field(
        "json", description="« json » : la feuille de route en JSON ; « docx » ou « md » : un fichier "
        "à télécharger (Word ou Markdown).",
    )


class FeedbackRequest(_Body):
    message_id: str = Field(
        ..., min_length=1, max_length=200,
        description="Identifiant de la réponse jugée, choisi par le client (un UUID, ou l'`id` "
        "« chatcmpl-… » d'une réponse OpenAI). Un second envoi avec le même identifiant met à jour l'avis.",
    )
    rating: Literal[0, 1] | None = Field(
        None, description="1 = 👍, 0 = 👎 ; absent : garde l'avis déjà donné (commentaire seul)."
    )
    comment: str | None = Field(None, max_length=5000, description="Commentaire libre.")
    question: str = Field("", max_length=QUESTION_HARD_MAX, description="La question posée.")
    rewritten: str = Field("", max_length=QUESTION_HARD_MAX,
                           description="La question réellement cherchée (champ `question` de la réponse).")
    mode: str = Field("", max_length=20, description="« answer » ou « compare ».")
    answer: str = Field("", max_length=50_000, description="Le texte de la réponse.")
    sources: list[str] = Field(default_factory=list, max_length=50,
                               description="Les sources citées (« Titre, p. 3 »).")
    backend: str = Field("", max_length=50, description="Moteur de réponse (champ `backend`).")
    filters: dict[str, Any] = Field(default_factory=dict, description="Filtres en vigueur.")


# --------------------------------------------------------------------------- response shapes (documentation)

class _Out(BaseModel):
    model_config = ConfigDict(extra="allow")


class ErrorOut(_Out):
    detail: str = Field(..., description="Le motif, en français.")


class HealthOut(_Out):
    status: str = Field(..., description="« ok » quand l'index est lisible.")
    documents: int | None = Field(None, description="Documents publics indexés.")


class PassageOut(_Out):
    rank: int = Field(..., description="Rang (1 = le plus pertinent).")
    source: str = Field(..., description="Fichier d'origine.")
    page: int = Field(..., description="Page (1 pour les formats sans pages).")
    score: float
    text: str = Field(..., description="Texte du passage.")
    title: str
    doc_id: str
    section: str = ""
    fabrique: str = ""
    territories: list[str] = Field(default_factory=list)
    doc_type: str = ""
    year: int | None = None


class CitationOut(_Out):
    n: int = Field(..., description="Numéro du marqueur [n] dans le texte.")
    source: str = Field(..., description="Fichier d'origine.")
    title: str
    page: int
    fabrique: str
    territories: list[str]
    doc_type: str
    excerpt: str = Field(..., description="L'extrait qui justifie l'affirmation.")
    doc_id: str
    year: int | None = None
    section: str = ""
    ocr: bool = Field(False, description="Page d'un PDF scanné dont le texte a été reconnu par OCR "
                      "(un mot peut être mal lu : vérifier sur le fichier).")


class LeadOut(_Out):
    title: str
    source: str
    page: int
    excerpt: str
    doc_id: str = ""
    fabrique: str = ""
    territories: list[str] = Field(default_factory=list)
    score: float = 0.0


class AnswerOut(_Out):
    """Le contrat de `fp-assistant ask --json`."""

    answer: str = Field(..., description="Texte de la réponse, avec les marqueurs [n] des citations.")
    grounded: bool = Field(..., description="Vrai si chaque affirmation est citée ; faux pour un refus.")
    citations: list[CitationOut]
    mode: str = Field(..., description="« answer » ou « compare ».")
    rows: list[dict[str, Any]] = Field(default_factory=list, description="Lignes de la comparaison.")
    leads: list[LeadOut] = Field(default_factory=list,
                                 description="Pistes proposées quand aucune réponse n'a été trouvée.")
    question: str = Field("", description="La question réellement cherchée (relance reformulée).")
    evidence: float | None = Field(None, description="Force des éléments trouvés (0 à 1).")
    backend: str = Field("extractive", description="Moteur de réponse.")
    notes: list[str] = Field(default_factory=list)


class DocumentOut(_Out):
    """Une ligne de `fp-assistant docs --json`."""

    doc_id: str
    path: str
    title: str
    fabrique: str
    fabrique_title: str
    fabrique_year: int | None = Field(None, description="Année de lancement de la fabrique, si connue.")
    doc_type: str
    year: int | None = Field(description="Année où le document est daté (réunion, validation, parution).")
    territories: list[str]
    visibility: str
    status: str
    chunks: int
    pages: int
    provenance: dict[str, str] = Field(default_factory=dict,
                                       description="D'où vient chaque métadonnée.")
    conflicts: list[str] = Field(default_factory=list)
    problems: list[str] = Field(default_factory=list)
    error: str = ""


class StatsOut(_Out):
    """Le contrat de `fp-assistant stats --json`, compté sur ce que la clé peut voir."""

    documents: int
    chunks: int
    pages: int
    failed: list[dict[str, Any]]
    fabriques: list[dict[str, Any]]
    doc_types: dict[str, int]
    years: dict[str, int]
    store: str


class RoadmapOut(_Out):
    """Le JSON de `fp-assistant draft --json` : sections citées, actions, sources numérotées."""

    territory: str
    fabrique: str
    fabrique_title: str
    theme: str
    created: str
    backend: str
    sections: list[dict[str, Any]]
    actions: list[dict[str, Any]]
    sources: list[dict[str, Any]]


class FileOutcomeOut(_Out):
    name: str = Field(..., description="Nom du fichier tel qu'envoyé.")
    status: str = Field(..., description="« ajouté », « mis à jour », « inchangé », « doublon », "
                        "« refusé » ou « en échec ».")
    message: str = Field("", description="Le motif d'un refus ou d'un échec, en français.")
    saved_as: str = Field("", description="Nom sous lequel le fichier est enregistré.")


class UploadOut(_Out):
    outcomes: list[FileOutcomeOut]
    indexed: int = Field(..., description="Fichiers indexés (ajoutés, mis à jour ou inchangés).")
    error: str = Field("", description="Pourquoi le lot n'a pas pu être indexé (verrou tenu…).")
    report: dict[str, Any] | None = Field(None, description="Bilan d'indexation (`ingest --json`).")


class DeleteOut(_Out):
    doc_id: str
    path: str
    removed: bool
    file_removed: bool = Field(..., description="Vrai si le fichier déposé a été supprimé aussi.")
    documents: int
    chunks: int


class FeedbackOut(_Out):
    message_id: str
    rating: int | None
    comment: str


class ModelOut(_Out):
    id: str
    object: str = "model"
    created: int
    owned_by: str


class ModelListOut(_Out):
    object: str = "list"
    data: list[ModelOut]


class ChatMessageOut(_Out):
    role: str
    content: str


class ChatChoiceOut(_Out):
    index: int
    message: ChatMessageOut
    finish_reason: str


class ChatCompletionOut(_Out):
    """Objet `chat.completion` d'OpenAI, plus `citations` et `fp_answer`."""

    id: str
    object: str = "chat.completion"
    created: int
    model: str
    choices: list[ChatChoiceOut]
    usage: dict[str, int]
    citations: list[CitationOut] = Field(..., description="Les sources numérotées de la réponse.")
    fp_answer: AnswerOut = Field(..., description="La réponse complète (contrat de `POST /api/ask`).")


class OpenAIErrorDetail(_Out):
    message: str = Field(..., description="Le motif, en français.")
    type: str
    param: str | None = None
    code: str | None = None


class OpenAIErrorOut(_Out):
    error: OpenAIErrorDetail


# --------------------------------------------------------------------------- fabriques' cards

class EvidenceOut(_Out):
    """Une phrase d'un document qui dit la valeur."""

    doc_id: str
    title: str = Field(..., description="Titre du document.")
    source: str = Field(..., description="Fichier d'origine (son nom seul pour une clé publique).")
    page: int
    sentence: str = Field(..., description="La phrase, telle que le document l'écrit.")
    visibility: str = Field(..., description="« public » ou « interne ».")


class CardValueOut(_Out):
    value: Any = Field(..., description="La valeur (« Jonzac », « 2019 », un enseignement…).")
    confidence: float | None = Field(None, description="Assurance de l'extraction (0 à 1).")
    evidence: list[EvidenceOut] = Field(default_factory=list, description="Où la valeur est lue.")
    departement: str | None = Field(None, description="Département d'un territoire.")
    region: str | None = Field(None, description="Région d'un territoire.")


class CardDocumentOut(_Out):
    doc_id: str
    title: str
    year: int | None = None


class FabriqueOut(_Out):
    """Le contrat de `fp-assistant fabrique ID --json`."""

    id: str = Field(..., description="Identifiant de la fabrique.")
    title: str = Field(..., description="Intitulé affiché.")
    fields: dict[str, list[CardValueOut]] = Field(..., description=(
        "title, theme, year, period, territories, prestataires, associations, partners, lessons : "
        "chacun une liste de valeurs (vide quand les documents lisibles par la clé n'en disent rien)."))
    documents: dict[str, list[CardDocumentOut]] = Field(..., description="Documents par type.")


class FabriqueListOut(_Out):
    """Le contrat de `fp-assistant fabriques --json`."""

    fabriques: list[FabriqueOut]
    filters: dict[str, Any] = Field(..., description=(
        "Filtres appliqués (theme, year, region) et choix possibles (available : themes, years, regions)."))
