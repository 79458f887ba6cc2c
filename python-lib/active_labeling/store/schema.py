"""The store's tables. Append-only where history matters: nothing here is updated in place.

- ``label_events``: every labeling action, never rewritten; ``current_labels`` is a view.
  A reviewer's decision is an event too: ``review`` says which (``accepted``,
  ``corrected``: status ``labeled`` with the decided label; ``sent_back``: status
  ``undone``, the item goes back to labeling); labelers' events leave it empty.
- ``item_state``: each item's current state (``store.item_state``: events replayed as a
  stack, undo pops, a send-back empties it, a review decision sits on top with status
  ``reviewed``), kept in the same transaction as every append and rebuilt from
  ``label_events`` when missing, so that "is this item labeled?" is a key lookup.
- ``label_suspects``: the labels a model's out-of-fold probabilities doubt (confident
  learning, ``flow.label_errors``), one row per suspect and model version;
  ``label_error_runs``: one row per model version scored.
- ``queue`` and ``queue_generations``: each query-sampler run adds a generation.
- ``dataset_<name>`` tables hold imported datasets (``item_id`` first, then the columns).
- ``store_meta``: key/value pairs, the schema version and the labeling guide
  (``labeling.guide``: the task and the guidance per class, one JSON value).
- ``metrics``, ``stopping_advice`` and ``monitoring_samples``: what the monitoring recipe
  appends at each run (``flow.monitoring``); ``scenario_runs``: one row per scenario run
  (``flow.scenarios``), inserted as ``running`` and given its outcome when it ends.
"""

from __future__ import annotations

SCHEMA_VERSION = 3

DDL = [
    "CREATE TABLE IF NOT EXISTS store_meta (key VARCHAR PRIMARY KEY, value VARCHAR)",
    "CREATE SEQUENCE IF NOT EXISTS label_event_ids START 1",
    """
    CREATE TABLE IF NOT EXISTS label_events (
        event_id BIGINT PRIMARY KEY DEFAULT nextval('label_event_ids'),
        dataset VARCHAR NOT NULL,
        item_id VARCHAR NOT NULL,
        label VARCHAR,
        status VARCHAR NOT NULL CHECK (status IN ('labeled', 'skipped', 'undone')),
        annotator VARCHAR NOT NULL,
        session VARCHAR,
        comment VARCHAR,
        created_at TIMESTAMPTZ NOT NULL DEFAULT current_timestamp,
        lead_time_ms BIGINT,
        model_version VARCHAR,
        queue_score DOUBLE
    )
    """,
    # A reviewer's decision (schema 3): accepted, corrected or sent_back; labelers' events
    # and those of stores written before it leave it empty.
    "ALTER TABLE label_events ADD COLUMN IF NOT EXISTS review VARCHAR",
    # Each item's current state, written in the same transaction as its events
    # (store.item_state): 'labeled' gives the label, 'skipped' none, 'undone' means the
    # item is back as if never touched, 'reviewed' gives a reviewer's decision (final). Undo
    # pops the latest action: undoing a relabel brings the earlier label back.
    """
    CREATE TABLE IF NOT EXISTS item_state (
        dataset VARCHAR NOT NULL,
        item_id VARCHAR NOT NULL,
        event_id BIGINT NOT NULL,
        status VARCHAR NOT NULL,
        label VARCHAR,
        annotator VARCHAR NOT NULL,
        created_at TIMESTAMPTZ NOT NULL,
        PRIMARY KEY (dataset, item_id)
    )
    """,
    """
    CREATE OR REPLACE VIEW current_labels AS
    SELECT dataset, item_id, label, annotator, created_at, event_id
    FROM item_state
    WHERE status IN ('labeled', 'reviewed')
    """,
    # Labeled or skipped, and not undone since: what the handout must not give out again.
    """
    CREATE OR REPLACE VIEW touched_items AS
    SELECT dataset, item_id FROM item_state WHERE status <> 'undone'
    """,
    "CREATE SEQUENCE IF NOT EXISTS queue_generation_ids START 1",
    """
    CREATE TABLE IF NOT EXISTS queue_generations (
        generation_id BIGINT PRIMARY KEY,
        queue VARCHAR NOT NULL,
        dataset VARCHAR NOT NULL,
        strategy VARCHAR NOT NULL,
        model_name VARCHAR,
        model_version VARCHAR,
        params VARCHAR,
        pool_rows BIGINT NOT NULL,
        n_items BIGINT NOT NULL,
        created_at TIMESTAMPTZ NOT NULL
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS queue (
        generation_id BIGINT NOT NULL,
        item_id VARCHAR NOT NULL,
        score DOUBLE,
        rank INTEGER NOT NULL,
        strategy VARCHAR NOT NULL,
        model_version VARCHAR,
        created_at TIMESTAMPTZ NOT NULL
    )
    """,
    # Leases live here, not in the server's memory: a restart neither loses nor duplicates
    # work. One row per leased item; an expired row is free for anyone.
    """
    CREATE TABLE IF NOT EXISTS leases (
        dataset VARCHAR NOT NULL,
        item_id VARCHAR NOT NULL,
        annotator VARCHAR NOT NULL,
        generation_id BIGINT,
        score DOUBLE,
        model_version VARCHAR,
        leased_at TIMESTAMPTZ NOT NULL,
        expires_at TIMESTAMPTZ NOT NULL,
        PRIMARY KEY (dataset, item_id)
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS users (
        name VARCHAR PRIMARY KEY,
        role VARCHAR NOT NULL CHECK (role IN ('labeler', 'reviewer', 'admin')),
        password_hash VARCHAR NOT NULL,
        created_at TIMESTAMPTZ NOT NULL DEFAULT current_timestamp
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS api_tokens (
        token_hash VARCHAR PRIMARY KEY,
        name VARCHAR NOT NULL,
        created_at TIMESTAMPTZ NOT NULL DEFAULT current_timestamp
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS web_sessions (
        session_hash VARCHAR PRIMARY KEY,
        name VARCHAR NOT NULL,
        csrf_token VARCHAR NOT NULL,
        created_at TIMESTAMPTZ NOT NULL,
        expires_at TIMESTAMPTZ NOT NULL
    )
    """,
    # Monitoring (flow.monitoring): long form, one row per metric and model version; a
    # metric broken down (by class, by annotator) says how in ``details`` (JSON).
    """
    CREATE TABLE IF NOT EXISTS metrics (
        dataset VARCHAR NOT NULL,
        metric VARCHAR NOT NULL,
        value DOUBLE,
        model_name VARCHAR NOT NULL,
        model_version VARCHAR NOT NULL,
        n_labels BIGINT NOT NULL,
        computed_at TIMESTAMPTZ NOT NULL,
        details VARCHAR
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS stopping_advice (
        dataset VARCHAR NOT NULL,
        advice VARCHAR NOT NULL CHECK (advice IN ('continue', 'stop', 'check')),
        reasons VARCHAR NOT NULL,
        model_name VARCHAR NOT NULL,
        model_version VARCHAR NOT NULL,
        n_labels BIGINT NOT NULL,
        computed_at TIMESTAMPTZ NOT NULL
    )
    """,
    # Each rule's vote (JSON list: rule, vote, decides, stuck), for the dashboard; stores
    # written before it get the column, empty, when next opened for writing.
    "ALTER TABLE stopping_advice ADD COLUMN IF NOT EXISTS votes VARCHAR",
    # The fixed random sample of a dataset on which contradictions are measured: drawn once
    # per (dataset, size, seed) and reused for every model version.
    """
    CREATE TABLE IF NOT EXISTS monitoring_samples (
        dataset VARCHAR NOT NULL,
        size BIGINT NOT NULL,
        random_state BIGINT NOT NULL,
        position BIGINT NOT NULL,
        item_id VARCHAR NOT NULL
    )
    """,
    # Likely label errors (flow.label_errors): the labels a model version's out-of-fold
    # probabilities doubt, ranked (1: the most doubtful). label_event_id is the item's state
    # event when it was scored: a suspect is open while the item's state is still that event.
    """
    CREATE TABLE IF NOT EXISTS label_suspects (
        dataset VARCHAR NOT NULL,
        model_name VARCHAR NOT NULL,
        model_version VARCHAR NOT NULL,
        item_id VARCHAR NOT NULL,
        label_event_id BIGINT NOT NULL,
        label VARCHAR NOT NULL,
        suggested VARCHAR NOT NULL,
        self_confidence DOUBLE NOT NULL,
        rank INTEGER NOT NULL,
        marked_at TIMESTAMPTZ NOT NULL
    )
    """,
    # One row per model version whose labels were scored (with or without suspects).
    """
    CREATE TABLE IF NOT EXISTS label_error_runs (
        dataset VARCHAR NOT NULL,
        model_name VARCHAR NOT NULL,
        model_version VARCHAR NOT NULL,
        n_labels BIGINT NOT NULL,
        n_suspects BIGINT NOT NULL,
        cv_folds INTEGER NOT NULL,
        scored_at TIMESTAMPTZ NOT NULL
    )
    """,
    "CREATE SEQUENCE IF NOT EXISTS scenario_run_ids START 1",
    # label_events_seen: the largest label event id when the run started; "every N new
    # labels" counts labeled events after it.
    """
    CREATE TABLE IF NOT EXISTS scenario_runs (
        run_id BIGINT PRIMARY KEY,
        scenario VARCHAR NOT NULL,
        trigger VARCHAR NOT NULL,
        status VARCHAR NOT NULL
            CHECK (status IN ('running', 'succeeded', 'failed', 'skipped')),
        started_at TIMESTAMPTZ NOT NULL,
        finished_at TIMESTAMPTZ,
        duration_s DOUBLE,
        error VARCHAR,
        steps VARCHAR,
        label_events_seen BIGINT NOT NULL
    )
    """,
]
