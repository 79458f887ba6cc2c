"""The project store: datasets, label events, queue generations, in one DuckDB file.

It must never update or delete a label event, and every multi-statement write runs in one
transaction.
"""

from active_labeling.store.connection import connect, transaction

__all__ = ["connect", "transaction"]
