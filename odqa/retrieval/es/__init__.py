"""Elasticsearch as an odqa retriever: nori BM25, dense kNN and hybrids on a cluster.

One module per job: ``connection`` (client, auth from the environment, errors that say what to
check), ``schema`` (index settings and mappings), ``queries`` (search bodies), ``indexing`` (bulk
loading with retries, count check, alias swap) and ``retriever`` (the ``Retriever`` itself).
The client is imported only when a cluster is actually used: ``pip install "odqa[elasticsearch]"``.
"""
