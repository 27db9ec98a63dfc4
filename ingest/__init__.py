"""Turn article files into cleaned, chunked, embedded passages in Chroma."""
