"""lookalike: find images that look alike — by image or by words — and find duplicates.

Quick start::

    import lookalike
    from lookalike import EmbeddingFunction, TableModel, Field

    client = lookalike.connect("photos.db")
    embed = EmbeddingFunction("local/clip-vit-b-32")
    class Photo(TableModel):
        __tablename__ = "photos"
        id: int = Field(primary_key=True)
        path: str = Field()
        vec: list[float] = embed.VectorField(source_field="path")
    table = client.create_table(schema=Photo, if_exists="overwrite")
    table.bulk_insert([Photo(path="cat.jpg"), Photo(path="dog.jpg")])
    table.search("orange tabby cat").limit(3).to_list()
"""

from lookalike.aio import AsyncClient, connect_async
from lookalike.builder import SearchHit
from lookalike.client import Client, TiDBClient, connect
from lookalike.copy import copy_table
from lookalike.duplicates import DuplicateGroup, find_duplicates
from lookalike.embeddings import BaseEmbeddingFunction, EmbeddingFunction, register_provider
from lookalike.engines.base import register_engine
from lookalike.errors import (
    AuthenticationError,
    BulkInsertError,
    ColumnChoiceError,
    ConfigurationError,
    ConnectionFailedError,
    EmbeddingError,
    EngineError,
    FilterError,
    ImageInputError,
    LookalikeError,
    MissingDependencyError,
    ModelNotFoundError,
    ProviderError,
    SchemaError,
    TableNotFoundError,
    VectorError,
)
from lookalike.examples import Example
from lookalike.folders import IndexReport, index_paths
from lookalike.hybrid import HybridSearch, HybridSearchResult
from lookalike.metadata import photo_filter, tag_counts
from lookalike.rerank import BaseReranker, Reranker, register_reranker
from lookalike.results import ExecuteResult, FailedItem, InsertResult, QueryResult, RowDict
from lookalike.schema import (
    DISTANCE_METRICS,
    VECTOR,
    DistanceMetric,
    Field,
    FullTextField,
    FullTextIndex,
    TableModel,
    TagsField,
    VectorField,
    VectorIndex,
)
from lookalike.search import Search, SearchResult, VectorColumns
from lookalike.session import Session
from lookalike.table import Table
from lookalike.text_search import TextSearch, TextSearchResult

__version__ = "0.1.0"

__all__ = [
    "DISTANCE_METRICS",
    "VECTOR",
    "AsyncClient",
    "AuthenticationError",
    "BaseEmbeddingFunction",
    "BaseReranker",
    "BulkInsertError",
    "Client",
    "ColumnChoiceError",
    "ConfigurationError",
    "ConnectionFailedError",
    "DistanceMetric",
    "DuplicateGroup",
    "EmbeddingError",
    "EmbeddingFunction",
    "EngineError",
    "Example",
    "ExecuteResult",
    "FailedItem",
    "Field",
    "FilterError",
    "FullTextField",
    "FullTextIndex",
    "HybridSearch",
    "HybridSearchResult",
    "ImageInputError",
    "IndexReport",
    "InsertResult",
    "LookalikeError",
    "MissingDependencyError",
    "ModelNotFoundError",
    "ProviderError",
    "QueryResult",
    "Reranker",
    "RowDict",
    "SchemaError",
    "Search",
    "SearchHit",
    "SearchResult",
    "Session",
    "Table",
    "TableModel",
    "TableNotFoundError",
    "TagsField",
    "TextSearch",
    "TextSearchResult",
    "TiDBClient",
    "VectorColumns",
    "VectorError",
    "VectorField",
    "VectorIndex",
    "__version__",
    "connect",
    "connect_async",
    "copy_table",
    "find_duplicates",
    "index_paths",
    "photo_filter",
    "register_engine",
    "register_provider",
    "register_reranker",
    "tag_counts",
]
