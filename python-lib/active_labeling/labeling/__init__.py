"""The labeling service the web app calls: handout under leases, label events, auth.

It must never update a label event in place, never hand one item to two labelers at once,
and never acknowledge a write before its commit.
"""
