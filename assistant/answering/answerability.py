"""Does the evidence speak of what the question is about? Otherwise refuse, naming what is missing.

A question about « la Fabrique prospective sur l'intelligence artificielle dans les mairies »
shares its frame with hundreds of passages (fabrique, pistes, mairies, territoires), and
similarity scores reward that frame: the closest passages look close and answer nothing. So
before composing, the question's key elements are read, and each must be found in the
passages retrieved for it:

- names (places, organisations, programmes: capitalised words after the first, « … »): by
  their words, or as the same territory (« Arras » in a document of the « CU d'Arras »);
- content terms (what is neither frame nor grammar: « dessalement », « hôpitaux »): by their
  stem or a synonym, or, for a paraphrase in everyday words (« le sable recule » for a
  passage on « l'érosion du trait de côte »), by the similarity of the term to the best
  sentences retrieved (`support`, calibrated across fabriques, never on reported questions).

The words that frame any question of this corpus (Fabrique prospective, séminaire,
territoire, pistes, calendrier…) are never key elements: every passage has them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from assistant.answering.frtext import GENERIC, STOPWORDS, content_stems, fold, stem, synonyms_of, words

# The frame of questions asked to this corpus: said by every passage, so they tell nothing.
_FRAME_WORDS = """
fabrique fabriques prospective prospectives seminaire seminaires local locaux intersite intersites
territoire territoires territorial territoriale commune communes ville villes collectivite collectivites
intercommunalite intercommunalites agglomeration metropole calendrier elu elus elue elues maire maires
demarche demarches piste pistes projet projets enseignement enseignements feuille feuilles route routes
cahier cahiers charge charges compte comptes rendu rendus synthese syntheses publication publications
prestataire prestataires groupe groupes travail comite pilotage copil agence anct etat annee annees
participant participants acteur acteurs partenaire partenaires mener mene menee menees mettre mis mise
place places retenir retenu retenue retenues retenus envisager envisage envisagee envisagees imaginer
imagine imaginee imaginees identifier identifie identifiee identifiees concret concrete concretes
concrets principal principale principales principaux proposer propose proposee proposees proposition
propositions objectif objectifs enjeu enjeux question questions reponse reponses sujet sujets theme
themes autre autres ailleurs different differents differente differentes comparer comparaison
mesure mesures initiative initiatives strategie strategies politique politiques public publique
publics publiques dispositif dispositifs programme programmes lors cadre etude etudes document
documents rapport rapports quoi dire dit disent faire fait font aborde abordee abordes traite traitee
traites traiter gere geree gerer apporter apporte permis permettre cours premier premiere deuxieme
troisieme quatrieme dernier derniere quel quelle quels quelles comment pourquoi combien ete etre avoir
y a-t-il existe existent
devant derriere apres avant pendant depuis chez vers contre entre sous dessus dessous quand lorsque
aussi encore deja toujours jamais souvent bien mieux mal beaucoup trop tres vraiment surtout notamment
chaque tel telle tels telles meme memes ainsi donc alors puis aujourd hui demain hier
"""
FRAME = frozenset(stem(w) for w in _FRAME_WORDS.split()) | frozenset(stem(w) for w in GENERIC)
# Capitalised words that are frame, not names
_FRAME_NAMES = frozenset(fold(w) for w in "Fabrique Fabriques Prospective Prospectives ANCT État Etat "
                         "Agence Comment Quel Quelle Quels Quelles Pourquoi Combien Qui Que Quoi Où "
                         "Est Y Existe Selon Dans En Pour Sur Lors Au Aux Le La Les Un Une Des".split())
_CONNECTORS = frozenset("de du des d la le l les et sur en".split())
_OF = frozenset("de du des d".split())


@dataclass(frozen=True)
class Element:
    text: str  # as the question writes it
    stems: frozenset[str]
    kind: str  # "nom" | "terme"
    phrase: str = ""  # the noun phrase it belongs to (« usine de dessalement »), for messages

    @property
    def shown(self) -> str:
        return self.phrase or self.text


def key_elements(question: str) -> list[Element]:
    """Names first (runs of capitalised words, quoted names), then content terms."""
    from ingest.gazetteer import Gazetteer

    ws = words(question)
    found = [m.name for m in Gazetteer.default().find(question, title=question)]
    names: list[Element] = []
    used: set[str] = set()
    i = 0
    while i < len(ws):
        w = ws[i]
        if (w[:1].isupper() and fold(w) not in _FRAME_NAMES
                and (i > 0 or _place_first(ws, found))):
            run = [w]
            j = i + 1
            while j < len(ws):
                if ws[j][:1].isupper() and fold(ws[j]) not in _FRAME_NAMES:
                    run.append(ws[j])
                elif (fold(ws[j]) in _CONNECTORS and j + 1 < len(ws) and ws[j + 1][:1].isupper()
                      and fold(ws[j + 1]) not in _FRAME_NAMES):
                    run.append(ws[j])
                else:
                    break
                j += 1
            stems = frozenset(stem(x) for x in run if fold(x) not in _CONNECTORS)
            if stems:
                names.append(Element(_as_written(question, run), stems, "nom"))
                used |= stems
            i = j
            continue
        i += 1
    for place in _places(question, ws, found):
        stems = frozenset(stem(w) for w in place.split() if fold(w) not in _CONNECTORS)
        if any(fold(n.text) == fold(place) for n in names):
            continue
        if stems and not stems <= used:  # « du Pays basque »: a name the capitals cut short
            names = [n for n in names if not n.stems < stems]
            names.append(Element(place, stems, "nom"))
            used |= stems
    verbs = frozenset(_verbs(question))
    key = [i for i, w in enumerate(ws) if _is_term(w, used, verbs)]
    terms = []
    seen: set[str] = set()
    for i in key:
        s = stem(ws[i])
        if s in seen:
            continue
        seen.add(s)
        terms.append(Element(ws[i], frozenset({s}), "terme", _phrase(question, ws, i, used, verbs)))
    return names + terms


def _place_first(ws: list[str], found: list[str]) -> bool:
    """Is the question's first word a place (« Mulhouse : quelles actions… ? »)? Every first
    word has a capital, so only the official list of communes and EPCI (`found` in the
    question) can tell a name from « Comment » or « Plan »."""
    first = fold(ws[0])
    return any(fold(name).replace("-", " ").split(" ")[0] == first for name in found)


def _places(question: str, ws: list[str], found: list[str]) -> list[str]:
    """The communes and EPCI the official list found in the question, by their short name
    (« pays basque » for « la communauté d'agglomération du Pays basque »), as the question
    writes them: a place is a name even when the question does not capitalise all its words."""
    from ingest.gazetteer import Gazetteer

    folded = [fold(w).replace("-", " ") for w in ws]
    out = []
    for name in found:
        core = Gazetteer.cores(name)[-1]
        for i in range(len(ws)):  # as the question writes it (« Pays basque »)
            j = i
            while j < len(ws) and len(" ".join(folded[i:j])) < len(core):
                j += 1
            if " ".join(folded[i:j]) == core:
                out.append(_as_written(question, ws[i:j]))
                break
    return out


# Verbs of a question say what is asked (« organisent-ils », « a-t-elle prévu », « pour
# éviter »), not what about: the passages that answer use other verbs.
_INVERTED = re.compile(r"\b([\w']+)-(?:t-)?(?:il|ils|elle|elles|on)\b", re.I)
_AFTER_AUX = re.compile(
    r"\b(?:(?:a|ont|est|sont|avait|avaient|aura|auront)-(?:t-)?(?:il|ils|elle|elles|on)|a|ont|avait|avaient"
    r"|a\s+[ée]t[ée]|ont\s+[ée]t[ée]|été)\s+([\w']+)",
    re.I,
)
_INFINITIVE = re.compile(
    r"\b(?:pour|comment|faut-il|peut-on|doit-on|faire|afin\s+de|d')\s*([\w']+(?:er|ir|re))\b", re.I
)


# « Que deviennent les filets… ? », « Que prévoit la commune… ? »: after an opening « que », a verb
_AFTER_QUE = re.compile(r"^\s*(?:que|qu['’])\s*([\w']+)", re.I)


def _verbs(question: str) -> set[str]:
    found = {m.group(1) for rx in (_INVERTED, _AFTER_AUX, _INFINITIVE, _AFTER_QUE)
             for m in rx.finditer(question)}
    return {fold(w.split("'")[-1]) for w in found}


def _is_term(w: str, used: set[str], verbs: frozenset[str] = frozenset()) -> bool:
    f = fold(w)
    if f in STOPWORDS or f.isdigit() or len(f) < 3 or f in verbs:
        return False
    s = stem(w)
    return s not in FRAME and s not in used and bool(content_stems(w, generic=True))


def _phrase(question: str, ws: list[str], i: int, used: set[str], verbs: frozenset[str]) -> str:
    """The run of key words around word i, joined by « de », « des », « du »: the thing
    the question asks about, as it says it (« usine de dessalement »)."""
    lo = hi = i
    def term(j: int) -> bool:
        return _is_term(ws[j], used, verbs)

    while lo - 2 >= 0 and fold(ws[lo - 1]) in _OF and term(lo - 2):
        lo -= 2
    while lo - 1 >= 0 and term(lo - 1):
        lo -= 1
    while hi + 1 < len(ws) and term(hi + 1):
        hi += 1
    while hi + 2 < len(ws) and fold(ws[hi + 1]) in _OF and term(hi + 2):
        hi += 2
    return _as_written(question, ws[lo:hi + 1]) if hi > lo else ""


def _as_written(question: str, run: list[str]) -> str:
    """The name as the question spells it (« Saint-Malo », « Wallis-et-Futuna »)."""
    pattern = r"[\s'’-]*".join(re.escape(w) for w in run)
    m = re.search(pattern, question)
    return m.group(0) if m else " ".join(run)


# « la Fabrique alimentation durable », « la Fabrique prospective sur les temporalités »,
# « la démarche prospective sur les très grandes communautés », « Fabrique « X » »
_ASKED_FABRIQUE = re.compile(
    r"\b(?:fabriques?(?:\s+prospectives?)?|(?:d[ée]marches?|[ée]tudes?)\s+prospectives?)\s+"
    r"(?:(?:sur|concernant|consacr[ée]e?s?\s+(?:à|au|aux)|d[ée]di[ée]e?s?\s+(?:à|au|aux)|portant\s+sur)\s+)?"
    r"(?:«\s*(?P<quoted>[^»]{3,200})»|(?P<bare>[^?,;:.!«»]{3,200}))",
    re.IGNORECASE,
)
# where a bare fabrique name stops: the verb of the question
_NAME_STOP = re.compile(
    r"(?:^|\s)(?:[\w']+-t-\w+|[\w']+-(?:elle|il|elles|ils)|a|ont|est|sont|avait|avaient|fait|font)(?=\s|$)",
    re.I,
)


def asked_fabrique(question: str) -> str:
    """The fabrique a question names, as it names it (« alimentation durable »), or ""."""
    from ingest.fabriques import content_stems as name_stems

    for m in _ASKED_FABRIQUE.finditer(question):
        name = m.group("quoted") or _NAME_STOP.split(m.group("bare") or "", maxsplit=1)[0]
        name = name.strip(" '\"")
        if name_stems(name):
            return name
    return ""


def fabrique_present(name: str, titles: Sequence[str]) -> bool:
    """Does one of these fabrique titles (or document titles) hold the named fabrique?
    Its content words, for the most part, must be there: « la Fabrique sur l'alimentation
    dans les quartiers prioritaires » is not « la nature dans les quartiers prioritaires ».
    Words of one family count as one (« ruralité », « ruraux »: a shared stem of 5 letters)."""
    from ingest.fabriques import content_stems as name_stems

    # an acronym (« QPV ») cannot be checked against a title that spells it out: it is left
    # aside, unless the name is nothing else
    acronyms = {fold(w) for w in re.findall(r"\b[A-ZÉ]{2,6}\b", name)}
    asked = name_stems(name)
    asked = frozenset(a for a in asked if a not in acronyms) or asked
    if not asked:
        return True

    def held(stem_: str, bag: frozenset[str]) -> bool:
        return stem_ in bag or any(len(_common_prefix(stem_, b)) >= 5 for b in bag if b[:1] == stem_[:1])

    return any(sum(held(a, bag) for a in asked) >= 0.8 * len(asked)
               for bag in (name_stems(t) for t in titles if t))


def _family(stem_: str, bag: set[str]) -> bool:
    """A word of the same family in the bag: stems that differ only by their last letters
    (« conduisent » / « conduit », « ruralité » / « ruraux »), five letters shared at least."""
    if len(stem_) < 5:
        return False
    return any(len(_common_prefix(stem_, b)) >= max(5, min(len(stem_), len(b)) - 2)
               for b in bag if b[:2] == stem_[:2])


def _common_prefix(a: str, b: str) -> str:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return a[:n]


@dataclass
class Support:
    element: Element
    value: float  # 1.0 said in the passages' words, 0.0 a name they never give, else the best cosine


def supports(
    question: str,
    passage_texts: Sequence[str],
    passage_contexts: Sequence[str],
    sentence_vectors: np.ndarray | None,
    embed_query: Callable[[str], np.ndarray] | None,
    same_territory: Callable[[str, str], bool] | None = None,
    territories: Sequence[str] = (),
    titles: Sequence[str] = (),
) -> list[Support]:
    """How much the retrieved passages speak of each key element of the question.

    `passage_contexts` are what a passage is about beyond its words (title, section,
    territories, fabrique); `titles` the titles of the passages' documents and fabriques,
    which alone can hold a named fabrique (a section « relier nature, emploi et alimentation »
    beside the title « La nature dans les quartiers prioritaires » does not make it a fabrique
    on food); `sentence_vectors` the embedded best sentences, which a term
    absent by its words may still be close to. Kept apart from the decision so that the
    evaluation can calibrate the cosine that counts without recomputing anything.
    """
    elements = key_elements(question)
    fabrique = asked_fabrique(question)
    if not elements and not fabrique:
        return []
    joined = [f"{t} {c}" for t, c in zip(passage_texts, passage_contexts, strict=True)]
    folded = [fold(t) for t in joined]
    stems: set[str] = set()
    for t in joined:
        stems.update(content_stems(t, generic=True))
    out = []
    if fabrique:
        # a fabrique the question names is one of the fabriques the passages come from
        from ingest.fabriques import named_fabriques

        # and « Fabrique « X » » in the text
        titles = [*titles, *(n for t in passage_texts for n in named_fabriques(t))]
        el = Element(fabrique, frozenset(), "fabrique")
        out.append(Support(el, 1.0 if fabrique_present(fabrique, titles) else 0.0))
    for el in elements:
        if el.kind == "nom":
            key = fold(el.text)
            present = (any(key in t for t in folded) or el.stems <= stems
                       or bool(same_territory and any(same_territory(el.text, t) for t in territories)))
            out.append(Support(el, 1.0 if present else 0.0))
        elif any(synonyms_of(s) & stems or _family(s, stems) for s in el.stems):
            out.append(Support(el, 1.0))
        elif embed_query is not None and sentence_vectors is not None and len(sentence_vectors):
            out.append(Support(el, float(np.max(sentence_vectors @ embed_query(el.text)))))
        else:
            out.append(Support(el, 0.0))
    return out


def first_absent(found: Sequence[Support], support: float, close: bool = False) -> str:
    """The sentence naming the first key element the passages do not speak of, or "".

    `close`: the question as a whole is close to a retrieved sentence; its terms absent by
    their words are then taken as said in other words (« le sable recule » for a passage on
    « l'érosion du trait de côte »). Names and fabriques must be there in any case."""
    for s in found:
        if s.element.kind == "fabrique" and s.value < 1.0:
            return f"Le corpus ne contient pas de Fabrique « {s.element.text} »."
        if s.element.kind == "nom" and s.value < 1.0:
            return f"Les documents trouvés ne mentionnent pas « {s.element.text} »."
        if s.element.kind == "terme" and s.value < support and not close:
            shown = s.element.shown
            of = "d'" if fold(shown[:1]) in "aeiouyh" else "de "
            return f"Aucun des passages trouvés ne parle {of}« {shown} »."
    return ""
