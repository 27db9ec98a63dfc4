"""Question answering over news articles: settings, embedder and index shared by entry points."""
