"""reco-db: a recommender inside PostgreSQL (item2vec, text CNN, pgvector)."""

__version__ = "0.1.0"
