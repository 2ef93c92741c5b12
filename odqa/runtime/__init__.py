"""How a model runs on the CPU, below everything that runs one: the int8 engines (:mod:`.quantization`).

The reader (``odqa.reader``) and dense retrieval's encoder (``odqa.dense``) both use them, so they live
beneath both; nothing here imports from the reader, the retrievers or the pipeline.
"""
