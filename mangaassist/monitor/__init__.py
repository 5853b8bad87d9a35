"""Monitor stage."""
