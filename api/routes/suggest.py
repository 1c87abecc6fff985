import asyncio
import contextvars
import os
import time
from concurrent.futures import ThreadPoolExecutor

import orjson
from fastapi import APIRouter, Depends, Request, Response

from api.auth import require_api_key
from api.deps import SettingsDep
from api.errors import ApiError, responses
from api.schemas import MAX_TOP_K, LimitsResponse, SuggestRequest, SuggestResponse, Turn
from assist.config import Settings
from assist.suggestlog import SuggestionRecord, customer_ref, new_request_id, quantize

router = APIRouter(prefix="/v1", tags=["suggest"], dependencies=[Depends(require_api_key)])


def pipeline_executor(threads: int) -> ThreadPoolExecutor | None:
    """The pipeline's own threads (ASSIST_SUGGEST_THREADS): two requests' ONNX encodes (which release the GIL)
    overlap on two cores, as on the event loop they could not. A plain executor hop costs a fraction of
    anyio's to_thread; a few threads per core keep both cores busy while one request holds the GIL, more
    would only queue inside the process. None (-1): the pipeline runs on the event loop, which saves the
    two thread hops (bench/README.md, "HTTP overhead") and serves one request at a time."""
    if threads < 0:
        return None
    return ThreadPoolExecutor(max_workers=threads or 2 * (os.cpu_count() or 1), thread_name_prefix="assist-suggest")


def check_turns(turns: list[Turn], s: Settings) -> None:
    """The configured conversation limits (422): the schema has the fixed rules, these come from Settings."""
    if len(turns) > s.max_turns:
        raise ApiError(422, "too_many_turns", f"conversation: at most {s.max_turns} turns, got {len(turns)}; send the latest ones")
    for n, turn in enumerate(turns):
        if len(turn.text) > s.max_turn_chars:
            raise ApiError(422, "turn_too_long", f"conversation.{n}.text: at most {s.max_turn_chars} characters, got {len(turn.text)}")


def log_suggestion(writer, request_id: str, session_id: str | None, customer: dict, result, seconds: float, model: str,
                   arm: str | None = None) -> None:
    """What the request path pays for the suggestion log: one record and a queue append (the store is
    written by the writer's thread). bench/suggestion_log.py times exactly this."""
    escalate = result.intent.escalate or result.emotion.escalate
    writer.put(SuggestionRecord(
        request_id, session_id, customer_ref(customer), result.query.text, result.intent.name, result.intent.confidence,
        result.abstained, escalate, tuple(a.article_id for a in result.answers), tuple(t.template_id for t in result.templates),
        result.top_similarity, round(seconds * 1000, 3), result.index_version, model, arm, vector=quantize(result.query_vector)))


@router.post(
    "/suggest",
    response_model=SuggestResponse,
    summary="Suggestions for a live conversation",
    responses=responses(400, 401, 413, 415, 422, 500, 503),
)
async def suggest(body: SuggestRequest, request: Request) -> Response:
    """Intent, emotion, ranked KB answers and filled reply templates for the conversation so far."""
    # A valid request usually does not get here: api.fastpath.FastSuggest answers it before routing, with
    # the same checks and `run_suggest`. This route documents the operation and answers every other case.
    return await run_suggest(body, request.app.state)


async def run_suggest(body: SuggestRequest, state) -> Response:
    """The configured limits (ApiError), one index snapshot for the whole request (IndexNotFound while none),
    then the pipeline on its executor."""
    check_turns(body.conversation, state.settings)
    loaded = state.service.require()
    if state.pipeline is None:
        return _suggest(body, loaded, state.metrics, state.suggestion_log)
    run = contextvars.copy_context().run  # as anyio's to_thread would: the request's context goes along
    return await asyncio.get_running_loop().run_in_executor(state.pipeline, run, _suggest, body, loaded, state.metrics, state.suggestion_log)


def _suggest(body: SuggestRequest, loaded, metrics, writer) -> Response:
    """The pipeline and what depends on its result, in a pipeline thread (or on the loop with ASSIST_SUGGEST_THREADS=-1)."""
    start = time.perf_counter()
    suggester, arm = loaded.suggester_for(body.session_id)
    result = suggester.suggest(
        [{"role": t.role, "text": t.text} for t in body.conversation], body.customer, body.top_k
    )
    seconds = time.perf_counter() - start
    escalate = result.intent.escalate or result.emotion.escalate
    metrics.observe_suggestion(seconds, result.intent.name, escalate, result.abstained)
    request_id = new_request_id()
    if writer is not None:
        log_suggestion(writer, request_id, body.session_id, body.customer, result, seconds, loaded.index.embedder.model_id, arm)
    # Encoded here: `Suggestion.to_dict` is the documented shape (the schema tests hold it to
    # SuggestResponse), so FastAPI's second validation of every field on the way out is skipped.
    return Response(orjson.dumps({**result.to_dict(), "request_id": request_id, "arm": arm}), media_type="application/json")


@router.get("/limits", response_model=LimitsResponse, summary="The configured request limits",
            responses=responses(401, 500))
def limits(settings: SettingsDep) -> dict:
    """What a client must respect so /v1/suggest and /v1/feedback accept its requests (the sidebar reads it at start)."""
    return {
        "max_turns": settings.max_turns, "max_turn_chars": settings.max_turn_chars,
        "max_body_bytes": settings.max_body_bytes, "max_top_k": MAX_TOP_K, "default_top_k": settings.suggest.answers,
    }
