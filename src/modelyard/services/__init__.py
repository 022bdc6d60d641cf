"""Use cases: the only layer that joins storage, versioning, catalog and metadata."""
