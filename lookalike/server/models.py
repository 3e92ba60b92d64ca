"""The shapes of the API's answers (pydantic models), for the OpenAPI schema and response checking.

The routes return plain dicts; FastAPI checks them against these models and documents them at
``/docs``. Every error has the shape :class:`ErrorBody`.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

__all__ = [
    "ERROR_RESPONSES",
    "EXAMPLES_RESPONSES",
    "SEARCH_RESPONSES",
    "DuplicateGroup",
    "DuplicateMember",
    "DuplicatesPage",
    "ErrorBody",
    "ErrorDetail",
    "Hit",
    "ItemsPage",
    "SearchPage",
    "Stats",
    "TagCount",
    "TagFacets",
]


class ErrorDetail(BaseModel):
    """What went wrong: a stable code, a message for people, and the HTTP status again."""

    code: str = Field(description="stable machine-readable code, e.g. 'not_found', 'not_an_image'")
    message: str = Field(description="what happened, for people")
    status: int


class ErrorBody(BaseModel):
    """Every error answer: ``{"error": {"code", "message", "status"}}``."""

    error: ErrorDetail


class Hit(BaseModel):
    """One item in a list of results."""

    id: Any
    name: str = Field(description="a short display name (the file name of the image)")
    score: float | None = Field(None, description="similarity, higher is more alike")
    distance: float | None = Field(None, description="distance in the column's metric, smaller is nearer")
    metadata: dict[str, Any] = Field(description="the row's columns, vectors left out")
    thumbnail_url: str
    image_url: str


class SearchPage(BaseModel):
    """One page of search results, with the query as the server understood it."""

    query: dict[str, Any]
    offset: int
    limit: int
    has_more: bool
    results: list[Hit]


class ItemsPage(BaseModel):
    """One page of the table's items in id order."""

    total: int
    offset: int
    limit: int
    has_more: bool
    results: list[Hit]


class DuplicateMember(Hit):
    """A member of a duplicate group and how it relates to the group's keeper."""

    keeper: bool
    match: str = Field(
        description='how this member relates to the keeper: "keeper", "identical file", "same picture" or "similar"'
    )
    detail: str = Field(
        description='what changed, e.g. "resized, format change" (empty when unknown; "vectors only (…)" '
        "when the pixels could not be compared)"
    )


class DuplicateGroup(BaseModel):
    """Copies of one picture, the suggested keeper first."""

    keeper: Any = Field(description="the id of the suggested keeper (listed first)")
    size: int
    exact: bool = Field(description="every member has the same content")
    kind: str = Field(description='the weakest member match: "identical file", "same picture" or "similar"')
    diameter: float = Field(description="the largest cosine distance between any two members")
    reason: str
    members: list[DuplicateMember]


class DuplicatesPage(BaseModel):
    """One page of duplicate groups."""

    threshold: float | None
    exact: bool
    similar: bool
    total_groups: int
    offset: int
    limit: int
    has_more: bool
    groups: list[DuplicateGroup]


class Stats(BaseModel):
    """What the server serves: the table, its columns, model and metric."""

    table: str
    rows: int
    primary_key: str
    columns: list[str]
    vector_column: str
    dimensions: int | None
    metric: str
    model: str | None
    multimodal: bool
    engine: str
    image_column: str | None
    fulltext_column: str | None = Field(
        None, description="the column mode=hybrid|fulltext searches (null: only mode=vector)"
    )
    tag_column: str | None = Field(None, description="the column of each picture's tags (null: no tags)")
    photo_filters: list[str] = Field(
        default_factory=list, description="the photo filters this table can answer (tag, since, near...)"
    )
    duplicates_available: bool
    thumbnails: dict[str, int]
    token_required: bool
    version: str


class TagCount(BaseModel):
    """One tag facet: a tag and how many pictures carry it."""

    tag: str
    count: int


class TagFacets(BaseModel):
    """The most frequent tags of the table, most frequent first (ties by name)."""

    column: str | None = Field(description="the tag column counted (null: the table has no tags)")
    tags: list[TagCount]


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (400, 401, 403, 404, 413, 415, 500, 502, 503)
}
"""The error answers every API route documents (``responses=`` of a route)."""

SEARCH_RESPONSES: dict[int | str, dict[str, Any]] = {**ERROR_RESPONSES, 422: {"model": ErrorBody}}
"""The error answers of routes that list results: the usual ones, and 422 for a photo filter, a search
mode or a number of examples the request or the table cannot have."""
EXAMPLES_RESPONSES = SEARCH_RESPONSES
"""The multi-example search's error answers (422 also for too many examples)."""
