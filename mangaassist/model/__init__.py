"""Model stage."""
