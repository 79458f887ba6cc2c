"""Data for the multi-label walkthrough of docs/flow.md: support tickets with several tags.

``python examples/multilabel_data.py DIR`` writes ``DIR-data/pool.csv`` (600 tickets: id,
channel, minutes open, and the ticket's text), ``DIR-data/seed-labels.csv`` (the tags of 40
of them, as a JSON list: ``["billing", "urgent"]``) and ``DIR-data/truth.csv`` (every
ticket's tags, which the walkthrough's "labelers" know). A ticket holds each of the tags
billing, bug, feature and urgent at random, and its text mixes words of its tags with
neutral ones, so the tags can be learned from the text.

``python examples/multilabel_data.py DIR --answer QUEUE.parquet`` writes
``DIR-data/answers-N.csv``: the true tags of the items of an exported queue generation, as
a labeling team would give them in the app.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

TAGS = ["billing", "bug", "feature", "urgent"]
#: How often each tag is held, and the words that give it away.
SHARE = {"billing": 0.35, "bug": 0.4, "feature": 0.3, "urgent": 0.25}
WORDS = {
    "billing": ["invoice", "charged", "refund", "payment", "card"],
    "bug": ["crash", "error", "broken", "fails", "freezes"],
    "feature": ["please", "add", "option", "would", "like"],
    "urgent": ["asap", "immediately", "critical", "blocked", "today"],
}
ALL_WORDS = [w for words in WORDS.values() for w in words]
NEUTRAL = ["the", "app", "account", "my", "since", "yesterday", "team", "thanks", "page"]


def tickets(n: int = 600, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    held = np.column_stack([rng.random(n) < SHARE[t] for t in TAGS])
    rows = []
    for i, row in enumerate(held):
        own = [w for t, h in zip(TAGS, row, strict=True) if h for w in rng.choice(WORDS[t], 2)]
        # A word of another tag now and then, so that no tag is given away for certain.
        stray = list(rng.choice(ALL_WORDS, 1)) if rng.random() < 0.3 else []
        words = [*own, *stray, *rng.choice(NEUTRAL, 4)]
        rows.append(
            {
                "id": f"T{i:04d}",
                "channel": rng.choice(["web", "mail", "phone"]),
                "minutes_open": round(float(rng.gamma(2.0, 30.0) * (2 if row[3] else 1)), 1),
                "text": " ".join(rng.permutation(words)),
                "label": json.dumps([t for t, h in zip(TAGS, row, strict=True) if h]),
            }
        )
    return pd.DataFrame(rows)


def write(project: Path) -> Path:
    folder = project.with_name(project.name + "-data")
    folder.mkdir(parents=True, exist_ok=True)
    frame = tickets()
    frame.drop(columns="label").to_csv(folder / "pool.csv", index=False)
    frame[["id", "label"]].iloc[:40].to_csv(folder / "seed-labels.csv", index=False)
    frame[["id", "label"]].to_csv(folder / "truth.csv", index=False)
    print(f"wrote {folder}/pool.csv (600 tickets), seed-labels.csv (40), truth.csv")
    return folder


def answer(project: Path, queue: Path) -> Path:
    folder = project.with_name(project.name + "-data")
    truth = pd.read_csv(folder / "truth.csv").set_index("id")
    items = pd.read_parquet(queue)["item_id"]
    n = len(list(folder.glob("answers-*.csv"))) + 1
    path = folder / f"answers-{n}.csv"
    truth.loc[items].reset_index().to_csv(path, index=False)
    print(f"wrote {path} ({len(items)} answers)")
    return path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("project", type=Path, help="the project folder the data is for")
    parser.add_argument("--answer", type=Path, help="an exported queue generation to answer")
    args = parser.parse_args(argv)
    if args.answer:
        answer(args.project, args.answer)
    else:
        write(args.project)
    return 0


if __name__ == "__main__":
    sys.exit(main())
