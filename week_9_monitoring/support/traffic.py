"""Traffic for a running API: familiar sentences, then shifted ones, one POST /predict each.

    python -m support.traffic --sentences 200 --drift-at 100 --kind language   # to http://127.0.0.1:8000

Start the API first, logging the text of each prediction, so that the drift check has events
to read (it needs at least 50 in a window):

    EVENTS_FILE=logs/events.jsonl LOG_TEXT=true uvicorn app:app --port 8000

The stream is support/shifted_text.py's: held-out validation sentences up to `--drift-at`,
then text of the chosen kind. `make demo` sends the same stream.
"""

from __future__ import annotations

import argparse

import httpx
from tqdm import tqdm

from errors import CourseError, run_cli
from support.shifted_text import KINDS, drifting_stream

DEFAULT_URL = "http://127.0.0.1:8000"


def send_stream(url: str, sentences: list[str]) -> int:
    """POST each sentence to `url`/predict in order; returns how many the API answered."""
    with httpx.Client(base_url=url, timeout=30, trust_env=False) as client:
        for sentence in tqdm(
            sentences, desc="sending sentences", unit="sentence", disable=None
        ):  # None: a terminal only
            try:
                answer = client.post("/predict", json={"text": sentence})
            except httpx.TransportError as error:
                raise CourseError(
                    f"cannot reach the API at {url} ({type(error).__name__}): start it first, e.g. "
                    "`EVENTS_FILE=logs/events.jsonl LOG_TEXT=true uvicorn app:app --port 8000`"
                ) from error
            if answer.status_code != 200:
                raise CourseError(f"the API answered {answer.status_code} to {sentence!r}: {answer.text}")
    return len(sentences)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=DEFAULT_URL, help=f"the API (default {DEFAULT_URL})")
    parser.add_argument("--sentences", type=int, default=200, help="how many to send (default 200)")
    parser.add_argument("--drift-at", type=int, help="the first shifted sentence (default: half way)")
    parser.add_argument("--kind", default="language", choices=KINDS, help="the shift (default language)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.drift_at is None:
        args.drift_at = args.sentences // 2
    sent = send_stream(args.url, list(drifting_stream(args.sentences, args.drift_at, args.kind, args.seed)))
    print(f"sent {sent} sentences to {args.url}: {args.drift_at} familiar, then {sent - args.drift_at} {args.kind}")


if __name__ == "__main__":
    run_cli(main)
