"""Cross-area closed forms: pairs whose two families live in different modules."""
