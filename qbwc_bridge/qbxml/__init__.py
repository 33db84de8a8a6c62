"""qbxml."""
