"""A LangChain retriever over an assist index, so LangChain chains can use our hybrid search."""

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict

from assist.index.search import Index


class AssistRetriever(BaseRetriever):
    """`AssistRetriever(index=load_index(...), k=5, mode="hybrid").invoke("退款多久到账")`."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    index: Index
    k: int = 5
    mode: str = "hybrid"
    kind: str | None = "article"
    one_per_article: bool = True

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        hits = self.index.search(query, k=self.k * 4 if self.one_per_article else self.k, mode=self.mode, kind=self.kind)
        docs, seen = [], set()
        for hit in hits:
            c = hit.chunk
            if self.one_per_article and c.article_id in seen:
                continue
            seen.add(c.article_id)
            question = c.text if c.question else None
            if question is not None:  # a FAQ question matched: the document is its article's first section
                c = self.index.lead_section(c.article_id) or c
            metadata = {
                "chunk_id": c.chunk_id, "article_id": c.article_id, "kind": c.kind, "title": c.title,
                "heading_path": list(c.heading_path), "score": hit.score, "index_version": self.index.version,
                "matched_question": question,
            }
            # The heading path gives a chain the section's context, as it gives the encoder (embed_text).
            docs.append(Document(page_content=c.embed_text, metadata=metadata, id=c.chunk_id))
            if len(docs) == self.k:
                break
        return docs
