"""How ``netmon library eval`` scores one item: through the scan job, as production would, or as before.

Three paths (``--as``):

- ``typed`` (the default of the CLI): a labelled message is scored exactly as the scan job scores text a
  pupil typed: it becomes one WebSocket message sent by the device (``ScanJob.for_websocket``) and goes
  through :func:`netmon.scan.job.scan_job` with the shipped risk model, so library, intent grammar and
  model combine by the job's own code (the model may raise a hit, or alone make a severity-2 finding).
  A benign page is scored as the job scores a response body: ``scan_job`` over a 200 response (HTML by
  its suffix, plain text otherwise), library alone, with the overlay's host scopes (no host here).
- ``page``: every item, messages included, through the job's page path: the library alone, no grammar,
  no model (what the same words score when a site shows them).
- ``library``: the matcher and grammar over the raw text, no job and no model: the figures this command
  gave before ``--as`` existed.

Evaluation budgets are generous (``EVAL_CPU_BUDGET``) so that a slow shared machine does not turn into
misses; everything else (body cap, hit cap, extraction) is the job's.
"""

from __future__ import annotations

from netmon.scan.findings import FlowContext, Hit
from netmon.scan.job import ScanJob, SupportsScan, scan_job
from netmon.scan.libeval_figures import Item
from netmon.scan.signal import Scores

PATHS = ("typed", "page", "library")
#: CPU seconds one evaluated item may use (the job's own default is 2 s, for live traffic).
EVAL_CPU_BUDGET = 120.0
_CONTEXT = FlowContext(time=0.0, client_ip="127.0.0.1", host="", url="", method="GET")
_HTML = (".html", ".htm", ".xhtml")

DESCRIPTIONS = {
    "typed": "messages as pupil-typed text through the scan job (library + grammar + model),"
    " benign pages as response bodies through the scan job (library alone)",
    "page": "every item as a response body through the scan job (library alone: no grammar, no model)",
    "library": "matcher and grammar over the raw text, no scan job, no model (the figures before --as)",
}


def typed_job(text: str) -> ScanJob:
    """One message the pupil's device sent: the job's pupil-typed path (grammar and model apply)."""
    # the fields ScanJob.for_websocket sets for a text frame from the client, plus the eval's budget
    return ScanJob(
        context=_CONTEXT, ws_message=text, ws_from_client=True, snapshot=False, cpu_budget=EVAL_CPU_BUDGET
    )


def page_job(item: Item) -> ScanJob:
    """One page a site sent back: the job's response path (library alone, host scopes)."""
    media = "text/html" if item.origin.lower().endswith(_HTML) else "text/plain"
    return ScanJob(
        context=_CONTEXT,
        response_status=200,
        response_headers=(("content-type", f"{media}; charset=utf-8"),),
        response_body=item.text.encode("utf-8"),
        snapshot=False,
        cpu_budget=EVAL_CPU_BUDGET,
    )


def _job_hits(job: ScanJob, matcher: SupportsScan, model: Scores | None) -> tuple[Hit, ...]:
    return tuple(h for f in scan_job(job, matcher, model).findings for h in f.hits)


def score(
    item: Item, matcher: SupportsScan, path: str, model: Scores | None = None
) -> tuple[tuple[Hit, ...], tuple[Hit, ...] | None]:
    """(hits, hits without the model) for one item on ``path``; the second is None where the model
    plays no part (pages, the ``page`` and ``library`` paths, or no model given)."""
    if path == "library":
        return matcher.scan(item.text), None
    if path == "page" or item.kind == "page":
        return _job_hits(page_job(item), matcher, None), None
    if path != "typed":
        raise ValueError(f"unknown evaluation path {path!r} (one of {', '.join(PATHS)})")
    job = typed_job(item.text)
    if model is None:
        return _job_hits(job, matcher, None), None
    return _job_hits(job, matcher, model), _job_hits(job, matcher, None)
