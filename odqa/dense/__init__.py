"""Dense retrieval building blocks: the dual encoder (:mod:`odqa.dense.encoder`) and faiss indexes
(:mod:`odqa.dense.vector_index`). The retriever itself is ``odqa.retrieval.dense.DenseRetriever``."""
