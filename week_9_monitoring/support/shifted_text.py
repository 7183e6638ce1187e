"""Clearly shifted text for drift tests and the monitoring demo: what production might send instead of our data.

    python -m support.shifted_text domain 5                                 # software sentences (labelled, see below)
    python -m support.shifted_text language 5                               # French sentences
    python -m support.shifted_text garbled 5                                # ours, with typos and shuffled letters
    python -m support.shifted_text stream 20 --drift-at 10 --kind language  # the demo's stream

Three kinds of shift, each a different way the inputs can stop looking like the training data:

  domain    English from another world (servers, deployments, certificates): grammar the model
            knows, words it has never seen. Labelled: half are acceptable, half carry one
            error of the kinds bundle/offline_data.py makes (agreement, word order, a missing or a
            doubled word, the wrong verb form), so the retraining loop can learn the new domain.
  language  French: neither the words nor the grammar are the course's.
  garbled   the course's own sentences with letters dropped, inserted, swapped or shuffled.

`drifting_stream` yields in-distribution sentences first and shifted ones from `drift_at` on.
Its in-distribution sentences come from the held-out half of data/validation.csv (the rows with
an odd idx): the other half builds the drift reference (monitoring/drift.py), and a test window must never
overlap its reference, or the false-alarm rate measured on it would be too good to be true.

Everything is drawn from `random.Random(seed)`: the same seed gives the same sentences.
"""

from __future__ import annotations

import argparse
import random
import string
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from errors import CourseError, run_cli
from source import read_split
from support.ops_grammar import check_count, other_domain, other_domain_rows

KINDS = ("domain", "language", "garbled")
ShiftKind = Literal["domain", "language", "garbled"]
Half = Literal["reference", "holdout"]

# ---------------------------------------------------------------------------------------------
# The in-distribution sentences: data/validation.csv, split in two halves by idx.
# ---------------------------------------------------------------------------------------------


def validation_half(half: Half, data_dir: Path | None = None) -> list[dict]:
    """Rows {"sentence", "label", "idx"} of one half of validation.csv: even idx "reference", odd "holdout".

    monitoring/drift.py builds the model's reference predictions from the "reference" half; tests and the
    demo draw in-distribution windows from the "holdout" half. The rows were shuffled when the
    data was generated, so splitting by idx parity is as good as a random split, and simpler.
    """
    rows = read_split("validation", data_dir)
    parity = 0 if half == "reference" else 1
    return [row for row in rows if row["idx"] % 2 == parity]


# ---------------------------------------------------------------------------------------------
# Another language: French sentences from templates (subject, verb, object, place, adverb).
# ---------------------------------------------------------------------------------------------

FR_SUBJECTS = {
    "sg": "le chat|la fille|mon frère|ma voisine|le boulanger|notre professeur|Pierre|Sophie|cette femme|un enfant",
    "pl": "les enfants|mes amis|nos voisins|les oiseaux|ces étudiants|les chiens|mes parents|vos sœurs",
}
# Verbs as "3rd-singular/3rd-plural"; transitive ones take an object.
FR_TRANSITIVE = "mange/mangent regarde/regardent cherche/cherchent aime/aiment prépare/préparent achète/achètent"
FR_INTRANSITIVE = "dort/dorment chante/chantent arrive/arrivent travaille/travaillent danse/dansent attend/attendent"
FR_OBJECTS = "une pomme|le journal|la voiture|des fleurs|un gâteau|la musique|les fenêtres|du pain|une lettre".split(
    "|"
)
FR_PLACES = "dans la cuisine|près de la gare|au marché|sous la table|dans le jardin|à la maison|devant l'école".split(
    "|"
)
FR_ADVERBS = "souvent|toujours|aujourd'hui|lentement|encore|déjà|demain matin".split("|")


def other_language(n: int, seed: int = 0) -> list[str]:
    """`n` different French sentences ("Mes amis achètent du pain au marché.")."""
    check_count(n)
    rng = random.Random(seed)
    sentences: list[str] = []
    seen: set[str] = set()
    while len(sentences) < n:
        if len(seen) > 50 * n + 1000:
            raise CourseError(f"cannot make {n} different French sentences: ask for fewer")
        number = rng.choice(("sg", "pl"))
        subject = rng.choice(FR_SUBJECTS[number].split("|"))
        transitive = rng.random() < 0.6
        verb = rng.choice((FR_TRANSITIVE if transitive else FR_INTRANSITIVE).split()).split("/")
        words = [subject, verb[0] if number == "sg" else verb[1]]
        if transitive:
            words.append(rng.choice(FR_OBJECTS))
        if rng.random() < 0.6:
            words.append(rng.choice(FR_PLACES))
        if rng.random() < 0.4:
            words.append(rng.choice(FR_ADVERBS))
        question = rng.random() < 0.15
        text = ("Est-ce que " if question else "") + " ".join(words)
        text = text[0].upper() + text[1:] + (" ?" if question else ".")
        if text not in seen:
            sentences.append(text)
        seen.add(text)
    return sentences


# ---------------------------------------------------------------------------------------------
# Garbled text: the course's own sentences with character-level noise.
# ---------------------------------------------------------------------------------------------


def garble_word(rng: random.Random, word: str) -> str:
    """One random edit: drop, insert, replace or swap a letter, or shuffle the inner letters."""
    edit = rng.choice(("drop", "insert", "replace", "swap", "shuffle"))
    i = rng.randrange(len(word))
    letter = rng.choice(string.ascii_lowercase)
    if edit == "drop" and len(word) > 1:
        return word[:i] + word[i + 1 :]
    if edit == "insert":
        return word[:i] + letter + word[i:]
    if edit == "swap" and len(word) > 2:
        i = min(i, len(word) - 2)
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    if edit == "shuffle" and len(word) > 3:
        inner = list(word[1:-1])
        rng.shuffle(inner)
        return word[0] + "".join(inner) + word[-1]
    return word[:i] + letter + word[i + 1 :]


def garbled(n: int, seed: int = 0, rate: float = 0.6, data_dir: Path | None = None) -> list[str]:
    """`n` held-out validation sentences in which each word is garbled with probability `rate`.

    Every sentence has at least one garbled word, so none is left in distribution by chance.
    """
    check_count(n)
    rng = random.Random(seed)
    source = [row["sentence"] for row in validation_half("holdout", data_dir)]
    sentences = []
    for _ in range(n):
        words = rng.choice(source).split()
        chosen = [i for i in range(len(words)) if rng.random() < rate] or [rng.randrange(len(words))]
        for i in chosen:
            original = words[i]
            while (noisy := garble_word(rng, original)) == original:
                pass
            words[i] = noisy
        sentences.append(" ".join(words))
    return sentences


# ---------------------------------------------------------------------------------------------
# Dispatch and the demo stream.
# ---------------------------------------------------------------------------------------------


def check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise CourseError(f"unknown kind of shift {kind!r}: use one of {', '.join(KINDS)}")


def shifted(kind: ShiftKind, n: int, seed: int = 0) -> list[str]:
    """`n` shifted sentences of one kind: "domain", "language" or "garbled"."""
    check_kind(kind)
    generators = {"domain": other_domain, "language": other_language, "garbled": garbled}
    return generators[kind](n, seed)


def drifting_stream(n: int, drift_at: int, kind: ShiftKind, seed: int = 0) -> Iterator[str]:
    """`n` sentences: held-out validation sentences before position `drift_at`, shifted ones (`kind`) from it on.

    The in-distribution part walks through the held-out half in a shuffled order, starting
    again (reshuffled) when it runs out.
    """
    check_count(n)
    check_kind(kind)
    if not 0 <= drift_at <= n:
        raise CourseError(f"drift_at={drift_at} is outside the stream of {n} sentences: use 0 <= drift_at <= n")
    rng = random.Random(seed)
    holdout = [row["sentence"] for row in validation_half("holdout")]
    order: list[str] = []
    for _ in range(drift_at):
        if not order:
            order = holdout[:]
            rng.shuffle(order)
        yield order.pop()
    yield from shifted(kind, n - drift_at, seed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("kind", choices=[*KINDS, "stream"])
    parser.add_argument("n", type=int, help="how many sentences")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--drift-at", type=int, default=0, help="stream only: where the shift starts")
    parser.add_argument("--stream-kind", "--kind", dest="stream_kind", choices=KINDS, default="domain")
    args = parser.parse_args()
    if args.kind == "stream":
        for sentence in drifting_stream(args.n, args.drift_at, args.stream_kind, args.seed):
            print(sentence)
    elif args.kind == "domain":
        for row in other_domain_rows(args.n, args.seed):
            print(f"{row['label']}  {row['kind'] or 'ok':<12}  {row['sentence']}")
    else:
        print("\n".join(shifted(args.kind, args.n, args.seed)))


if __name__ == "__main__":
    run_cli(main)
