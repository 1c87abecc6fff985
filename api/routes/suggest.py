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


class Placement:
    """Where each /v1/suggest pipeline runs (ASSIST_SUGGEST_THREADS).

    In the pipeline's own threads two requests' ONNX encodes (which release the GIL) overlap on two cores,
    as on the event loop they could not; but the hop into a thread and back costs a request about 0.4 ms
    (bench/README.md, "HTTP overhead"). So a request alone on the worker runs on the event loop, and the
    threads take over while the worker has company: a request that arrived while the loop was busy with
    an inline one (seen when the loop next reads its sockets), or one that finds others in the threads.
    Company keeps the threads on for `window` seconds after it was last seen. (A yield before deciding
    would see requests read in the same loop turn, but costs every request about 0.15 ms.)
    threads -1: no threads, always on the event loop (one request at a time per worker)."""

    def __init__(self, threads: int, window: float = 0.5):
        self.executor = None if threads < 0 else ThreadPoolExecutor(
            max_workers=threads or 2 * (os.cpu_count() or 1), thread_name_prefix="assist-suggest")
        self.window = window
        self.busy = 0  # requests between `enter` and `leave`
        self.arrivals = 0
        self._company_until = 0.0

    def enter(self) -> None:
        self.busy += 1
        self.arrivals += 1

    def leave(self) -> None:
        self.busy -= 1

    def inline(self) -> bool:
        """Run this request on the event loop? (asked right after `enter`)"""
        now = time.monotonic()
        if self.busy > 1:
            self._company_until = now + self.window
        return self.busy == 1 and now >= self._company_until

    def ran_inline(self, turns: int = 3) -> None:
        """After an inline run: requests that came while it held the loop are read in the next turns."""
        seen, loop = self.arrivals, asyncio.get_running_loop()

        def check(left: int) -> None:
            if self.arrivals > seen:
                self._company_until = time.monotonic() + self.window
            elif left:
                loop.call_soon(check, left - 1)

        loop.call_soon(check, turns)

    def shutdown(self) -> None:
        if self.executor is not None:
            self.executor.shutdown(wait=False)


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
    then the pipeline where `Placement` puts it: on the event loop or in the pipeline's threads."""
    check_turns(body.conversation, state.settings)
    loaded = state.service.require()
    placement = state.placement
    if placement.executor is None:
        return _suggest(body, loaded, state.metrics, state.suggestion_log)
    placement.enter()
    try:
        if placement.inline():
            response = _suggest(body, loaded, state.metrics, state.suggestion_log)
            placement.ran_inline()
            return response
        run = contextvars.copy_context().run  # as anyio's to_thread would: the request's context goes along
        return await asyncio.get_running_loop().run_in_executor(
            placement.executor, run, _suggest, body, loaded, state.metrics, state.suggestion_log)
    finally:
        placement.leave()


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
