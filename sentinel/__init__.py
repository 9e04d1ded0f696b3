"""sentinel: the domain layer — what each security is worth as of a day.

Nothing in this package imports ``engine``, ``strategies`` or ``cli``; every read of
stored data goes through :class:`sentinel.db.Store`, which bounds it by an
as-of date.
"""

__version__ = "0.1.0"
