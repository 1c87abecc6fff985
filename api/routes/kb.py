"""Read-only views of the served index version's KB snapshot: articles, templates, intents."""

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Depends, Path

from api.auth import require_api_key
from api.deps import LoadedDep
from api.errors import ApiError, responses
from api.schemas import ArticleOut, IntentsOut, TemplateDetailOut

router = APIRouter(prefix="/v1", tags=["knowledge base"], dependencies=[Depends(require_api_key)])

ItemId = Annotated[str, Path(max_length=200, description="the id from the KB front matter")]


@router.get("/articles/{article_id}", response_model=ArticleOut, summary="One published article",
            responses=responses(401, 404, 422, 500, 503))
def get_article(article_id: ItemId, loaded: LoadedDep) -> dict:
    article = loaded.articles.get(article_id)
    if article is None:
        raise ApiError(404, "not_found", f"no published article {article_id!r} in index {loaded.version}")
    return {**asdict(article), "index_version": loaded.version}


@router.get("/templates/{template_id}", response_model=TemplateDetailOut, summary="One reply template",
            responses=responses(401, 404, 422, 500, 503))
def get_template(template_id: ItemId, loaded: LoadedDep) -> dict:
    template = loaded.templates.get(template_id)
    if template is None:
        raise ApiError(404, "not_found", f"no template {template_id!r} in index {loaded.version}")
    return {**asdict(template), "index_version": loaded.version}


@router.get("/intents", response_model=IntentsOut, summary="The intents the service detects",
            responses=responses(401, 500, 503))
def list_intents(loaded: LoadedDep) -> dict:
    return {"index_version": loaded.version, "intents": [asdict(i) for i in loaded.index.kb.intents]}
