"""Fact questions answered from the fabriques' cards, beside the same questions answered from
passages alone (issue #27 item 3).

Which questions: those of the gold sets that `card_answers.asked_field` reads as asking one
field of a fabrique (its prestataire, territories, association of élus, partners, edition).
For each: the answer through the service (card line first when the card has the field) and
the usual answer of the same passages, scored the same way as `eval` (`lead`: the first
citation holds an expected term; `cite`: one does), with retrieval alone (`top1`, `top3`) as
the floor. The rule that routes a question was written while reading these gold questions:
these are figures on what it was written on, not held-out ones.
"""

from __future__ import annotations

from typing import Any

from assistant.evaluation.gold import GoldQuestion, holds_term


def card_fact_report(service: Any, questions: list[GoldQuestion],
                     unanswerable: list[str] | None = None) -> dict[str, Any]:
    """`unanswerable`: questions the corpus does not answer; none may open with a card line."""
    from assistant.card_answers import asked_field
    from assistant.retriever import answer_context

    caller = service.local_caller()
    retriever = service.retriever(caller)
    answerer = service.answerer()
    rows: list[dict[str, Any]] = []
    wrongly: list[str] = []  # unanswerable questions the card answered all the same
    for text in unanswerable or []:
        if asked_field(text) and service.ask(text, caller).text.startswith("D'après la fiche"):
            wrongly.append(text)
    for q in questions:
        fact = asked_field(q.question)
        if fact is None or not q.answerable:
            continue
        passages = answer_context(retriever, q.question, q.to_filters(), service.settings, None)
        plain = answerer.answer(q.question, passages)
        carded = service.ask(q.question, caller, filters=q.to_filters())
        from_card = carded.text.startswith("D'après la fiche")

        def scored(ans: Any, terms: list[str] = q.expect_terms) -> tuple[bool, bool]:
            held = [holds_term(c.excerpt, terms) for c in ans.citations] if ans.grounded else []
            return bool(held[:1]) and held[0], any(held)

        held3 = [holds_term(p.text, q.expect_terms) for p in passages[:3]]
        rows.append({"id": q.id, "field": fact.field, "from_card": from_card,
                     "top1": bool(held3[:1]) and held3[0], "top3": any(held3),
                     "lead_plain": scored(plain)[0], "cite_plain": scored(plain)[1],
                     "lead": scored(carded)[0], "cite": scored(carded)[1]})
    n = max(len(rows), 1)

    def share(key: str) -> float:
        return round(sum(r[key] for r in rows) / n, 3)

    return {"questions": len(rows), "from_card": sum(r["from_card"] for r in rows),
            "top1": share("top1"), "top3": share("top3"),
            "lead_passages": share("lead_plain"), "cite_passages": share("cite_plain"),
            "lead": share("lead"), "cite": share("cite"), "rows": rows,
            "unanswerable_answered_from_card": wrongly}


def render(report: dict[str, Any]) -> str:
    lines = [f"Questions factuelles sur une fabrique : {report['questions']} (réponse tirée de la fiche : "
             f"{report['from_card']}) — chiffres sur les questions qui ont servi à écrire la règle",
             f"  recherche seule : top1 {report['top1']:.3f}  top3 {report['top3']:.3f}",
             f"  passages seuls  : lead {report['lead_passages']:.3f}  cite {report['cite_passages']:.3f}",
             f"  avec la fiche   : lead {report['lead']:.3f}  cite {report['cite']:.3f}",
             f"  questions sans réponse auxquelles la fiche a répondu : "
             f"{len(report['unanswerable_answered_from_card'])}"]
    for r in report["rows"]:
        card = "oui" if r["from_card"] else "non"
        lines.append(f"    {r['id']:<14} {r['field']:<13} fiche={card}  lead {int(r['lead_plain'])}→"
                     f"{int(r['lead'])}  cite {int(r['cite_plain'])}→{int(r['cite'])}")
    return "\n".join(lines)
