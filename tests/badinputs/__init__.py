"""Bad-input cases for the ingest reliability tests (generated on the fly, never committed)."""
