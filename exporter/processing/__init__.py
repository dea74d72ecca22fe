"""The consume loop and its helpers: stage timing, the visibility keeper.

It sees only the `Store` and `Source` protocols, a metrics dataclass and a tracer.
"""
