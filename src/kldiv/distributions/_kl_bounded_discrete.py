"""Closed forms among the bounded-support and discrete families."""
