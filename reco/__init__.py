"""reco-db: a recommender that lives inside PostgreSQL (item2vec + text CNN + pgvector)."""

__version__ = "0.1.0"
