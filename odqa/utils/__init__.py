"""Small shared helpers (atomic file writes, argument parsing, logging)."""
