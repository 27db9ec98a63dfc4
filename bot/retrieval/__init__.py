"""Retrieval: dense and lexical search fused (retriever, lexical), translations folded
(translations), and the passages the model reads (context); its records are in records."""
