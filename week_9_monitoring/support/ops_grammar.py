"""Another domain for the drift tests: a small grammar of software operations, with labelled errors.

Its content words (servers, deployments, certificates...) are all new to the course grammar; only
function words (the, a, is, has, will, in...) are shared, as in real life. Half the sentences are
acceptable, half carry one error of the kinds bundle/offline_data.py makes (agreement, word order,
a missing or a doubled word, the wrong verb form), so the retraining loop can learn the new domain.
support/shifted_text.py uses it for the "domain" shift.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace

from errors import CourseError

# ---------------------------------------------------------------------------------------------
# Another domain: a small grammar of software operations. Its content words are all new to the
# course grammar; only function words (the, a, is, has, will, in...) are shared, as in real life.
# ---------------------------------------------------------------------------------------------

# Nouns as "singular/plural".
OPS_PEOPLE = "engineer/engineers developer/developers operator/operators admin/admins tester/testers".split()
OPS_SYSTEMS = (
    "server/servers database/databases cluster/clusters container/containers scheduler/schedulers "
    "worker/workers proxy/proxies node/nodes replica/replicas pipeline/pipelines"
).split()
OPS_OBJECTS = (
    "manifest/manifests certificate/certificates request/requests query/queries backup/backups "
    "token/tokens endpoint/endpoints release/releases dependency/dependencies snapshot/snapshots "
    "schema/schemas packet/packets"
).split()
OPS_PLACES = "firewall gateway datacenter region namespace subnet outage upgrade rollout migration".split()
OPS_ADJECTIVES = "stale remote primary legacy flaky redundant internal expired nightly idle".split()
OPS_ADVERBS = "automatically overnight twice silently manually immediately".split()
OPS_PREPOSITIONS = "after during behind inside across within".split()
# Verbs as "base 3sg past participle ing".
OPS_PEOPLE_VERBS = """
deploy deploys deployed deployed deploying
restart restarts restarted restarted restarting
configure configures configured configured configuring
patch patches patched patched patching
monitor monitors monitored monitored monitoring
upgrade upgrades upgraded upgraded upgrading
debug debugs debugged debugged debugging
rotate rotates rotated rotated rotating
"""
OPS_SYSTEM_VERBS = """
reject rejects rejected rejected rejecting
cache caches cached cached caching
process processes processed processed processing
replicate replicates replicated replicated replicating
compress compresses compressed compressed compressing
throttle throttles throttled throttled throttling
"""
OPS_INTRANSITIVE = """
crash crashes crashed crashed crashing
fail fails failed failed failing
reboot reboots rebooted rebooted rebooting
stall stalls stalled stalled stalling
recover recovers recovered recovered recovering
"""
OPS_MODALS = "will should might must".split()
OPS_DET_SINGULAR = "the this every our each".split()  # "a"/"an" is added by `indefinite`
OPS_DET_PLURAL = "the these all several our".split()
NUMBER_SPECIFIC = {"a", "an", "this", "every", "each", "these", "all", "several"}
AUX = {"be": {"sg": "is", "pl": "are"}, "have": {"sg": "has", "pl": "have"}}
OPS_TENSES = ("present", "past", "modal", "perfect", "progressive")
ERROR_KINDS = ("agreement", "word_order", "missing_word", "doubled_word", "verb_form")


def check_count(n: int) -> None:
    if n < 0:
        raise CourseError(f"cannot make {n} sentences: ask for 0 or more")


def parse_verbs(table: str) -> list[tuple[str, ...]]:
    """Each line of a verb table as the tuple (base, 3sg, past, participle, ing)."""
    return [tuple(line.split()) for line in table.strip().splitlines()]


PEOPLE_VERBS, SYSTEM_VERBS, INTRANSITIVE_VERBS = map(
    parse_verbs, (OPS_PEOPLE_VERBS, OPS_SYSTEM_VERBS, OPS_INTRANSITIVE)
)
VERB_FORMS = ("base", "3sg", "past", "pp", "ing")


@dataclass(frozen=True)
class Word:
    """One word with what the corruptions need: its tag, number, and for verbs all its forms."""

    text: str
    tag: str  # DET ADJ N V AUX MODAL PREP ADV
    number: str | None = None
    forms: tuple[str, ...] | None = None  # a verb's (base, 3sg, past, pp, ing); a noun's (sg, pl)
    form: str | None = None  # which verb form `text` is
    finite: bool = False


def indefinite(next_word: str) -> str:
    return "an" if next_word[0] in "aeiou" else "a"


def ops_noun_phrase(rng: random.Random, nouns: list[str], number: str | None = None) -> tuple[list[Word], str]:
    """ "the stale backups", "an idle worker": determiner, maybe an adjective, noun."""
    number = number or rng.choice(("sg", "pl"))
    pair = tuple(rng.choice(nouns).split("/"))
    words = []
    if rng.random() < 0.4:
        words.append(Word(rng.choice(OPS_ADJECTIVES), "ADJ"))
    words.append(Word(pair[0] if number == "sg" else pair[1], "N", number, pair))
    if number == "sg":
        determiner = rng.choice(OPS_DET_SINGULAR + ["a"])
        determiner = indefinite(words[0].text) if determiner == "a" else determiner
    else:
        determiner = rng.choice(OPS_DET_PLURAL)
    return [Word(determiner, "DET", number), *words], number


def ops_sentence(rng: random.Random) -> list[Word]:
    """One grammatical software-operations sentence, as tagged words."""
    people = rng.random() < 0.5
    subject, number = ops_noun_phrase(rng, OPS_PEOPLE if people else OPS_SYSTEMS)
    if people:
        verbs, transitive = PEOPLE_VERBS, True
    else:
        transitive = rng.random() < 0.5
        verbs = SYSTEM_VERBS if transitive else INTRANSITIVE_VERBS
    forms = rng.choice(verbs)
    tense = rng.choice(OPS_TENSES)
    if tense == "present":
        form = "3sg" if number == "sg" else "base"
        predicate = [Word(forms[VERB_FORMS.index(form)], "V", number, forms, form, finite=True)]
    elif tense == "past":
        predicate = [Word(forms[2], "V", None, forms, "past", finite=True)]
    else:
        if tense == "modal":
            auxiliary, form = Word(rng.choice(OPS_MODALS), "MODAL"), "base"
        else:
            key, form = ("have", "pp") if tense == "perfect" else ("be", "ing")
            auxiliary = Word(AUX[key][number], "AUX", number, (AUX[key]["sg"], AUX[key]["pl"]), finite=True)
        predicate = [auxiliary, Word(forms[VERB_FORMS.index(form)], "V", None, forms, form)]
    words = subject + predicate
    if transitive:
        words += ops_noun_phrase(rng, OPS_OBJECTS)[0]
    if rng.random() < 0.5:
        words += [Word(rng.choice(OPS_PREPOSITIONS), "PREP"), Word("the", "DET"), Word(rng.choice(OPS_PLACES), "N")]
    if rng.random() < 0.3:
        words.append(Word(rng.choice(OPS_ADVERBS), "ADV"))
    return words


def flip(word: Word) -> Word:
    """The same word in the other number: "crashes" <-> "crash", "is" <-> "are", "node" <-> "nodes"."""
    number = "pl" if word.number == "sg" else "sg"
    if word.tag == "V":
        form = "3sg" if number == "sg" else "base"
        return replace(word, text=word.forms[VERB_FORMS.index(form)], number=number, form=form)
    return replace(word, text=word.forms[0 if number == "sg" else 1], number=number)


SWAPPABLE = {("DET", "N"), ("DET", "ADJ"), ("ADJ", "N"), ("MODAL", "V"), ("AUX", "V"), ("PREP", "DET")}
# The wrong verb forms after an auxiliary: "will crashes", "has crash", "is crashed" is left out (a passive).
WRONG_FORMS = {"base": ("3sg", "past", "ing"), "pp": ("base", "3sg", "ing"), "ing": ("base", "3sg")}


def ops_corrupt(rng: random.Random, words: list[Word], kind: str) -> list[Word] | None:
    """One error of `kind` (see ERROR_KINDS) in a grammatical sentence; None when it has no place for it."""
    if kind == "agreement":
        # A finite verb that agrees, or a noun after a determiner that fixes its number ("these node").
        places = [i for i, w in enumerate(words) if w.finite and w.number]
        places += [
            i for i, w in enumerate(words) if w.tag == "N" and w.forms and i and words[i - 1].text in NUMBER_SPECIFIC
        ]
        if not places:
            return None
        i = rng.choice(places)
        return words[:i] + [flip(words[i])] + words[i + 1 :]
    if kind == "word_order":
        places = [i for i in range(len(words) - 1) if (words[i].tag, words[i + 1].tag) in SWAPPABLE]
        if not places:
            return None
        i = rng.choice(places)
        return words[:i] + [words[i + 1], words[i]] + words[i + 2 :]
    if kind == "verb_form":
        places = [
            (i, form) for i, w in enumerate(words) if w.tag == "V" and not w.finite for form in WRONG_FORMS[w.form]
        ]
        places = [(i, form) for i, form in places if words[i].forms[VERB_FORMS.index(form)] != words[i].text]
        if not places:
            return None
        i, form = rng.choice(places)
        return words[:i] + [replace(words[i], text=words[i].forms[VERB_FORMS.index(form)], form=form)] + words[i + 1 :]
    # A missing or doubled word: a singular determiner, or a verb with more words after it. Not a
    # verb right after "is"/"has": "The servers are behind the firewall." would still be English.
    places = [i for i, w in enumerate(words) if w.tag == "DET" and w.number == "sg"]
    places += [i for i, w in enumerate(words) if w.tag == "V" and i + 1 < len(words) and words[i - 1].tag != "AUX"]
    if not places:
        return None
    i = rng.choice(places)
    if kind == "missing_word":
        return words[:i] + words[i + 1 :]
    return words[: i + 1] + words[i:]


def ops_text(words: list[Word]) -> str:
    text = " ".join(w.text for w in words)
    return text[0].upper() + text[1:] + "."


def other_domain_rows(n: int, seed: int = 0) -> list[dict]:
    """`n` labelled software-operations sentences: rows {"sentence", "label", "kind"}, shuffled.

    They come in minimal pairs, as in bundle/offline_data.py: a grammatical sentence (label 1, kind "")
    and a copy with one error (label 0, kind "agreement", "word_order"...). An odd `n` gets one
    extra grammatical sentence. No sentence appears twice.
    """
    check_count(n)
    rng = random.Random(seed)
    seen: set[str] = set()
    rows: list[dict] = []
    attempts = 0
    while len(rows) < n:
        attempts += 1
        if attempts > 50 * n + 1000:
            raise CourseError(f"cannot make {n} different software sentences: ask for fewer")
        good = ops_sentence(rng)
        kind = ERROR_KINDS[(len(rows) // 2) % len(ERROR_KINDS)]  # every kind equally often
        wants_pair = len(rows) + 1 < n
        bad = ops_corrupt(rng, good, kind) if wants_pair else None
        if wants_pair and bad is None:
            continue
        texts = [ops_text(good)] + ([ops_text(bad)] if bad else [])
        if any(t in seen for t in texts) or len(set(texts)) < len(texts):
            continue
        seen.update(texts)
        rows.append({"sentence": texts[0], "label": 1, "kind": ""})
        if bad:
            rows.append({"sentence": texts[1], "label": 0, "kind": kind})
    rng.shuffle(rows)
    return rows


def other_domain(n: int, seed: int = 0) -> list[str]:
    """`n` software-operations sentences, half of them with an error (see `other_domain_rows`)."""
    return [row["sentence"] for row in other_domain_rows(n, seed)]
