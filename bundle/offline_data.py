"""Generate the bundled offline stand-in for CoLA: each week's data/train.csv and data/validation.csv.

When the Hugging Face Hub is out of reach, the course trains on this dataset instead. It has
CoLA's schema (sentence, label, idx; label 1 = acceptable, 0 = unacceptable) and is built by a
small English grammar:

* acceptable sentences come straight from the grammar;
* unacceptable ones are grammatical sentences with one CoLA-style error: an agreement error,
  two words in the wrong order, a missing word, a doubled word, or the wrong verb form after
  an auxiliary ("will runs", "has ran"). Each kind is equally frequent.

Two things keep the task honest. Every unacceptable sentence is paired with an acceptable one
of the same length and the same tense, so neither length nor a tense word gives the answer
away. And a corruption only moves, drops or repeats words, or swaps a word for another form
that acceptable sentences use too, so no single word marks a sentence as bad: a model has to
look at word order and agreement, which is exactly what CoLA asks.

    python bundle/offline_data.py           # regenerate week_0_project_setup/data/ (from the repo root)
    python bundle/offline_data.py --check   # exit 1 if the bundled files differ from a regeneration
    make bundle                             # regenerate data and model, then carry them to every week

Only the standard library is used, and all randomness comes from one `random.Random(seed)`,
so the same seed gives byte-identical files on every machine and Python version we support.
"""

from __future__ import annotations

import argparse
import csv
import io
import random
import sys
from dataclasses import dataclass, replace
from pathlib import Path

# The weeks never import this file; they read its output, which week 0 holds and `make bundle` copies on.
ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = ROOT / "week_0_project_setup" / "data"
SPLITS = ("train", "validation")
FIELDS = ["sentence", "label", "idx"]
KINDS = ("agreement", "word_order", "missing_word", "doubled_word", "verb_form")

# ---------------------------------------------------------------------------------------------
# The vocabulary. Plain strings keep it easy to read and extend; each entry is split below.
# ---------------------------------------------------------------------------------------------

NAMES = "Anna Ben Clara David Emma Frank Grace Henry Kate Leo Maria Sam".split()

# Nouns as "singular/plural".
PEOPLE = (
    "child/children woman/women man/men teacher/teachers student/students farmer/farmers "
    "doctor/doctors baker/bakers boy/boys girl/girls friend/friends king/kings queen/queens "
    "singer/singers neighbor/neighbors"
).split()
ANIMALS = "dog/dogs cat/cats horse/horses bird/birds fox/foxes mouse/mice wolf/wolves rabbit/rabbits".split()
THINGS = (
    "box/boxes ball/balls key/keys bag/bags hat/hats book/books cup/cups chair/chairs "
    "table/tables picture/pictures knife/knives toy/toys"
).split()
TEXTS = "letter/letters story/stories poem/poems book/books".split()
FOODS = "apple/apples orange/oranges sandwich/sandwiches cookie/cookies egg/eggs pear/pears".split()
PLACES = (
    "park/parks garden/gardens house/houses village/villages city/cities shop/shops "
    "school/schools library/libraries kitchen/kitchens forest/forests field/fields"
).split()

# Verbs as "base 3rd-singular past past-participle -ing", then the kinds of object they take.
# Many are irregular on purpose: they make errors like "has ran" or "will ate" possible.
TRANSITIVE = """
help helps helped helped helping : animate
meet meets met met meeting : animate
chase chases chased chased chasing : animate
visit visits visited visited visiting : animate
know knows knew known knowing : animate
see sees saw seen seeing : animate thing
like likes liked liked liking : animate thing food
find finds found found finding : animate thing food
carry carries carried carried carrying : thing food
buy buys bought bought buying : thing food text
break breaks broke broken breaking : thing
hide hides hid hidden hiding : thing food
steal steals stole stolen stealing : thing food
take takes took taken taking : thing food
write writes wrote written writing : text
eat eats ate eaten eating : food
"""
INTRANSITIVE = """
run runs ran run running
sleep sleeps slept slept sleeping
swim swims swam swum swimming
sing sings sang sung singing
laugh laughs laughed laughed laughing
walk walks walked walked walking
fall falls fell fallen falling
sit sits sat sat sitting
go goes went gone going
come comes came come coming
dance dances danced danced dancing
wait waits waited waited waiting
"""

ADJ_ANIMATE = "happy tired brave clever angry hungry kind lazy young old little big".split()
ADJ_THING = "red blue new old heavy small big little empty".split()
ADJ_FOOD = "fresh ripe sweet big small".split()
ADJ_PLACE = "big small old new quiet busy".split()
ADVERBS = "quickly slowly quietly loudly happily carefully again today".split()
FREQUENCY_ADVERBS = "often always never sometimes".split()
MODALS = "will can should might must could".split()
# Verbs of state, which English rarely puts in the progressive ("She is knowing him").
STATIVE = {"know", "like"}
PLACE_PREPOSITIONS = "in near behind beside outside around by".split()

# Determiners by the number of the noun they allow. "the" and the possessives take both.
DET_SINGULAR = "a the this that every each my your his her our their".split()
DET_PLURAL = "the these those some many several two three my your his her our their".split()
# Determiners that only fit one number: "these dog" or "a dogs" is an agreement error.
# ("some" is left out: "some dog" is grammatical.)
NUMBER_SPECIFIC = {"a", "an", "this", "that", "every", "each", "these", "those", "many", "several"}
NUMBER_SPECIFIC |= {"two", "three"}
# Determiners that cannot stand alone, so dropping the noun after them is always an error
# ("The cat found the." but not "The cat found his.", which is fine English).
NEED_A_NOUN = {"a", "an", "the", "every", "my", "your", "our", "their"}

# Auxiliaries that agree with their subject, by number.
AUX_FORMS = {
    "be": {"sg": "is", "pl": "are"},
    "be_past": {"sg": "was", "pl": "were"},
    "have": {"sg": "has", "pl": "have"},
    "do": {"sg": "does", "pl": "do"},
}
# Word i of a list is drawn with weight 1 / (i + 1) ** ZIPF_EXPONENT (0 would be uniform).
ZIPF_EXPONENT = 1.0
# How often the grammar picks each optional part.
P = {
    "name": 0.4,  # a person is named ("Anna") rather than described ("the teacher")
    "singular": 0.55,
    "adjective": 0.35,
    "bare_plural": 0.2,  # "Dogs bark." without a determiner
    "relative": 0.12,  # "the dog that chased the cat"
    "question": 0.15,
    "transitive": 0.6,
    "frequency_adverb": 0.15,  # "often", "never" before the verb
    "prepositional": 0.35,  # "in the park", "with a friend"
    "adverb": 0.3,  # "quickly" at the end
}
# Tenses and how often each is drawn; "negated" is "does not run", "did not run".
TENSES = ("present", "past", "modal", "perfect", "progressive", "negated")
TENSE_WEIGHTS = (2, 2, 2, 2, 2, 1)


@dataclass(frozen=True)
class Verb:
    """One verb lexeme with all its forms; `objects` is empty for intransitive verbs."""

    base: str
    third: str  # 3rd person singular present: "runs"
    past: str
    participle: str
    ing: str
    objects: tuple[str, ...] = ()

    def form(self, name: str) -> str:
        """The form called `name`: "base", "3sg", "past", "pp" (past participle) or "ing"."""
        forms = {"base": self.base, "3sg": self.third, "past": self.past, "pp": self.participle, "ing": self.ing}
        return forms[name]


def parse_verbs(table: str) -> list[Verb]:
    """Turn the verb tables above into `Verb`s."""
    verbs = []
    for line in table.strip().splitlines():
        forms, _, objects = line.partition(":")
        verbs.append(Verb(*forms.split(), objects=tuple(objects.split())))
    return verbs


def parse_nouns(entries: list[str]) -> list[tuple[str, str]]:
    """Turn "dog/dogs" entries into (singular, plural) pairs."""
    return [tuple(entry.split("/")) for entry in entries]


TRANSITIVE_VERBS = parse_verbs(TRANSITIVE)
INTRANSITIVE_VERBS = parse_verbs(INTRANSITIVE)
NOUNS = {
    "people": parse_nouns(PEOPLE),
    "animal": parse_nouns(ANIMALS),
    "thing": parse_nouns(THINGS),
    "text": parse_nouns(TEXTS),
    "food": parse_nouns(FOODS),
    "place": parse_nouns(PLACES),
}
ADJECTIVES = {
    "people": ADJ_ANIMATE,
    "animal": ADJ_ANIMATE,
    "thing": ADJ_THING,
    "text": ADJ_THING,
    "food": ADJ_FOOD,
    "place": ADJ_PLACE,
}


# ---------------------------------------------------------------------------------------------
# Sentences are lists of tagged tokens, so the corruptions can find "a determiner before a
# noun" or "the verb after an auxiliary" without parsing text.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Token:
    """One word with what the corruptions need to know about it.

    tag: DET, ADJ, N, NAME, V, AUX, MODAL, NOT, PREP, ADV, FADV (often, never...) or REL.
    number: "sg"/"pl" for nouns, determiners and verbs that agree; None otherwise.
    form: the verb form ("base", "3sg", "past", "pp", "ing") for V.
    finite: True for the verb or auxiliary that carries tense (and agrees, in the present).
    main: True for the lexical verb of the main clause (not of a relative clause).
    """

    word: str
    tag: str
    number: str | None = None
    lexeme: object = None  # the Verb, the (singular, plural) noun pair, or the AUX_FORMS key
    form: str | None = None
    finite: bool = False
    main: bool = False


@dataclass
class Sentence:
    """A generated sentence: its tokens, its tense, and whether it is a question."""

    tokens: list[Token]
    tense: str
    question: bool

    def text(self) -> str:
        words = [token.word for token in self.tokens]
        text = " ".join(words)
        return text[0].upper() + text[1:] + ("?" if self.question else ".")


def pick(rng: random.Random, items: list):
    """A random item, earlier ones more often (Zipf's law), like words in real text.

    A few frequent words and a long tail of rare ones: a small model sees the frequent words
    often enough to learn what they are, while the vocabulary stays large.
    """
    weights = [1 / (rank + 1) ** ZIPF_EXPONENT for rank in range(len(items))]
    return rng.choices(items, weights=weights)[0]


def article(determiner: str, next_word: str) -> str:
    """'a' becomes 'an' before a vowel: "an apple", "an old dog"."""
    if determiner == "a" and next_word[0] in "aeiou":
        return "an"
    return determiner


def noun_phrase(rng: random.Random, kind: str, allow_name: bool = False, allow_relative: bool = False):
    """A noun phrase of `kind` ("people", "animal", "thing"...); returns (tokens, number)."""
    if allow_name and kind == "people" and rng.random() < P["name"]:
        return [Token(pick(rng, NAMES), "NAME", "sg")], "sg"
    number = "sg" if rng.random() < P["singular"] else "pl"
    noun = pick(rng, NOUNS[kind])
    tokens = []
    if rng.random() < P["adjective"]:
        tokens.append(Token(pick(rng, ADJECTIVES[kind]), "ADJ"))
    tokens.append(Token(noun[0] if number == "sg" else noun[1], "N", number, noun))
    # Plural nouns may go without a determiner ("Dogs bark."); singular ones never do.
    if number == "sg" or rng.random() > P["bare_plural"]:
        determiner = pick(rng, DET_SINGULAR if number == "sg" else DET_PLURAL)
        tokens.insert(0, Token(article(determiner, tokens[0].word), "DET", number))
    # Relative clauses only on people and animals, who can do what the clause says.
    if allow_relative and kind in ("people", "animal") and rng.random() < P["relative"]:
        tokens += relative_clause(rng, kind, number)
    return tokens, number


def relative_clause(rng: random.Random, head_kind: str, number: str) -> list[Token]:
    """A subject relative clause: "that chased the cat", "who sleeps"; agrees with the head."""
    pronoun = "who" if head_kind == "people" and rng.random() < 0.5 else "that"
    tense = rng.choice(("present", "past"))
    verb = pick(rng, TRANSITIVE_VERBS if rng.random() < P["transitive"] else INTRANSITIVE_VERBS)
    tokens = [Token(pronoun, "REL"), finite_verb(verb, tense, number, main=False)]
    if verb.objects:
        tokens += noun_phrase(rng, object_kind(rng, verb))[0]
    return tokens


def finite_verb(verb: Verb, tense: str, number: str, main: bool) -> Token:
    """The verb itself carrying present or past tense: "runs", "run", "ran"."""
    if tense == "past":
        return Token(verb.past, "V", None, verb, "past", finite=True, main=main)
    form = "3sg" if number == "sg" else "base"
    return Token(verb.form(form), "V", number, verb, form, finite=True, main=main)


def nonfinite_verb(verb: Verb, form: str) -> Token:
    """The verb after an auxiliary: "(will) run", "(has) run", "(is) running"."""
    return Token(verb.form(form), "V", None, verb, form, main=True)


def object_kind(rng: random.Random, verb: Verb) -> str:
    kind = rng.choice(verb.objects)
    return rng.choice(("people", "animal")) if kind == "animate" else kind


def auxiliary(rng: random.Random, tense: str, number: str) -> tuple[list[Token], str]:
    """The auxiliary of a tense and the verb form it asks for: ("will", "base"), ("has", "pp")..."""
    if tense == "modal":
        return [Token(pick(rng, MODALS), "MODAL")], "base"
    if tense == "perfect":
        return [Token(AUX_FORMS["have"][number], "AUX", number, "have", finite=True)], "pp"
    if tense == "progressive":
        key = rng.choice(("be", "be_past"))
        return [Token(AUX_FORMS[key][number], "AUX", number, key, finite=True)], "ing"
    # "do"-support for negations and questions: "does not run", "did the dog run?"
    if tense == "past" or (tense == "negated" and rng.random() < 0.5):
        return [Token("did", "AUX", None, "did", finite=True)], "base"
    return [Token(AUX_FORMS["do"][number], "AUX", number, "do", finite=True)], "base"


def random_sentence(rng: random.Random, tense: str | None = None, question: bool | None = None) -> Sentence:
    """One grammatical sentence; `tense` and `question` are drawn unless given."""
    if tense is None:
        tense = rng.choices(TENSES, weights=TENSE_WEIGHTS)[0]
    if question is None:
        question = tense != "negated" and rng.random() < P["question"]
    subject, number = noun_phrase(rng, rng.choice(("people", "animal")), allow_name=True, allow_relative=True)
    verb = pick(rng, TRANSITIVE_VERBS if rng.random() < P["transitive"] else INTRANSITIVE_VERBS)
    while tense == "progressive" and verb.base in STATIVE:  # "is knowing" sounds wrong
        verb = pick(rng, TRANSITIVE_VERBS)
    frequency = [Token(pick(rng, FREQUENCY_ADVERBS), "FADV")] if rng.random() < P["frequency_adverb"] else []

    if question or tense in ("modal", "perfect", "progressive", "negated"):
        aux, form = auxiliary(rng, tense, number)
        if tense == "negated":
            aux.append(Token("not", "NOT"))
            frequency = []  # "does not often run" is fine English, but keep negation simple
        verb_tokens = frequency + [nonfinite_verb(verb, form)]
        if question:
            tokens = aux + subject + verb_tokens
        else:
            tokens = subject + aux + verb_tokens
    else:
        tokens = subject + frequency + [finite_verb(verb, tense, number, main=True)]

    if verb.objects:
        tokens += noun_phrase(rng, object_kind(rng, verb), allow_name=True, allow_relative=True)[0]
    if rng.random() < P["prepositional"]:
        if rng.random() < 0.75:
            tokens += [Token(pick(rng, PLACE_PREPOSITIONS), "PREP")] + noun_phrase(rng, "place")[0]
        else:
            companion = noun_phrase(rng, rng.choice(("people", "animal")), allow_name=True)[0]
            tokens += [Token(rng.choice(("with", "for")), "PREP")] + companion
    if rng.random() < P["adverb"]:
        tokens.append(Token(pick(rng, ADVERBS), "ADV"))
    return Sentence(tokens, tense, question)


# ---------------------------------------------------------------------------------------------
# Corruptions. Each takes a grammatical sentence and returns an unacceptable one, or None when
# the sentence has nothing it can corrupt. Length changes are planned for in `generate`.
# ---------------------------------------------------------------------------------------------


def flip_number(token: Token) -> Token:
    """The same word with the other number: "runs" <-> "run", "is" <-> "are", "dog" <-> "dogs"."""
    number = "pl" if token.number == "sg" else "sg"
    if token.tag == "AUX":
        word = AUX_FORMS[token.lexeme][number]
    elif token.tag == "N":
        word = token.lexeme[0] if number == "sg" else token.lexeme[1]
    else:
        form = "3sg" if number == "sg" else "base"
        return replace(token, word=token.lexeme.form(form), number=number, form=form)
    return replace(token, word=word, number=number)


def agreement_error(rng: random.Random, tokens: list[Token]) -> list[Token] | None:
    """"The dogs runs", "The cat are sleeping", "these dog": one word gets the wrong number."""
    verbs = [i for i, t in enumerate(tokens) if t.finite and t.number and t.lexeme != "did"]
    nouns = [
        i
        for i, t in enumerate(tokens)
        if t.tag == "N" and i > 0 and tokens[i - 1].tag == "DET" and tokens[i - 1].word in NUMBER_SPECIFIC
    ]
    # Verb agreement is the classic CoLA error, so it is drawn twice as often as noun agreement.
    choices = verbs * 2 + nouns if verbs else nouns
    if not choices:
        return None
    i = rng.choice(choices)
    return tokens[:i] + [flip_number(tokens[i])] + tokens[i + 1 :]


# Adjacent pairs whose swap is always ungrammatical: "dog the", "the dog big", "run will"...
SWAPPABLE = {("DET", "N"), ("DET", "ADJ"), ("ADJ", "N"), ("MODAL", "V"), ("AUX", "V"), ("NOT", "V"),
             ("PREP", "DET"), ("AUX", "NOT")}


def word_order_error(rng: random.Random, tokens: list[Token]) -> list[Token] | None:
    """Two neighbouring words swapped: "The dog big ran.", "Anna run will."."""
    by_pair: dict[tuple[str, str], list[int]] = {}
    for i in range(len(tokens) - 1):
        pair = (tokens[i].tag, tokens[i + 1].tag)
        if pair in SWAPPABLE:
            by_pair.setdefault(pair, []).append(i)
    if not by_pair:
        return None
    # First the kind of pair, then the place: otherwise "the dog" swaps would crowd out the rest.
    pair = rng.choice(sorted(by_pair))
    i = rng.choice(by_pair[pair])
    return tokens[:i] + [tokens[i + 1], tokens[i]] + tokens[i + 2 :]


def removable_words(tokens: list[Token], question: bool, tag: str) -> list[int]:
    """Positions of words with `tag` whose absence, or a second copy, is always an error.

    The same positions serve both corruptions, so the words that go missing in some bad
    sentences are the words that are doubled in others: no word becomes a clue by itself.
    """
    positions = []
    for i, t in enumerate(tokens):
        if t.tag != tag:
            continue
        after = tokens[i + 1] if i + 1 < len(tokens) else None
        before = tokens[i - 1] if i > 0 else None
        # "The dog chased cat.": singular count nouns need their determiner.
        if tag == "DET" and t.number == "sg":
            positions.append(i)
        # "The dog the cat.", "Anna will in the park.": no verb. Not after be/have/do, where
        # what is left can be fine English ("The dog is in the park."), nor as the last word
        # ("Anna will." is a fine short answer).
        elif tag == "V" and t.main and after is not None and not governed_by_aux(tokens, i):
            positions.append(i)
        # "The cat sat under the.": a determiner with nothing to determine.
        elif tag == "N" and before is not None and before.tag == "DET" and before.word in NEED_A_NOUN:
            positions.append(i)
        # "The dog eaten the apple.", "The dog running.", "The dog not run.": a lost auxiliary.
        # Only where what is left cannot pass for a past tense ("has chased" -> "chased").
        elif tag == "AUX" and not question and after is not None:
            verb = tokens[i + 2] if after.tag == "NOT" else after
            if t.lexeme in ("be", "be_past") or after.tag == "NOT":
                positions.append(i)
            elif t.lexeme == "have" and verb.tag == "V" and verb.lexeme.participle != verb.lexeme.past:
                positions.append(i)
    return positions


def governed_by_aux(tokens: list[Token], i: int) -> bool:
    """Whether the verb at `i` follows a form of be, have or do (skipping "not" and "often")."""
    for token in reversed(tokens[:i]):
        if token.tag == "AUX":
            return True
        if token.tag in ("MODAL", "REL"):
            return False
    return False


def missing_word_error(rng: random.Random, sentence: Sentence, tag: str) -> list[Token] | None:
    """One word left out: "The dog chased cat.", "The dog the cat.", "The dog running."."""
    positions = removable_words(sentence.tokens, sentence.question, tag)
    if not positions:
        return None
    i = rng.choice(positions)
    return sentence.tokens[:i] + sentence.tokens[i + 1 :]


def doubled_word_error(rng: random.Random, sentence: Sentence, tag: str) -> list[Token] | None:
    """One word written twice: "The the dog ran.", "Anna is is singing."."""
    positions = removable_words(sentence.tokens, sentence.question, tag)
    if not positions:
        return None
    i = rng.choice(positions)
    return sentence.tokens[: i + 1] + sentence.tokens[i:]


# For each form an auxiliary asks for, the wrong forms that are never grammatical after it.
# ("is" + past is left out: "The dog is chased" is a fine passive.)
WRONG_FORMS = {"base": ("3sg", "past", "ing"), "pp": ("base", "past", "3sg", "ing"), "ing": ("base", "3sg")}


def verb_form_error(rng: random.Random, tokens: list[Token]) -> list[Token] | None:
    """The wrong form after an auxiliary: "will runs", "has ran", "is run", "did not ate"."""
    options = []
    for i, t in enumerate(tokens):
        if t.tag == "V" and not t.finite:
            right = t.word
            for form in WRONG_FORMS[t.form]:
                word = t.lexeme.form(form)
                # "is run" or "is cut" (base = participle) would be a fine passive.
                passive = t.form == "ing" and word == t.lexeme.participle
                if word != right and not passive:
                    options.append((i, form))
    if not options:
        return None
    i, form = rng.choice(options)
    return tokens[:i] + [replace(tokens[i], word=tokens[i].lexeme.form(form), form=form)] + tokens[i + 1 :]


def corrupt(rng: random.Random, sentence: Sentence, kind: str, tag: str = "") -> Sentence | None:
    """Apply the corruption `kind` to a grammatical sentence (None if it does not apply).

    `tag` picks the kind of word that goes missing or is doubled ("DET", "V", "N", "AUX").
    """
    if kind == "agreement":
        tokens = agreement_error(rng, sentence.tokens)
    elif kind == "word_order":
        tokens = word_order_error(rng, sentence.tokens)
    elif kind == "verb_form":
        tokens = verb_form_error(rng, sentence.tokens)
    elif kind == "missing_word":
        tokens = missing_word_error(rng, sentence, tag)
    else:
        tokens = doubled_word_error(rng, sentence, tag)
    return None if tokens is None else Sentence(tokens, sentence.tense, sentence.question)


# ---------------------------------------------------------------------------------------------
# Building the splits. Bad sentences come in minimal pairs with the good sentence they were
# made from, as in linguistics papers: the pair differs only by the error, which is what a
# model has to learn to see.
# ---------------------------------------------------------------------------------------------

REMOVABLE_TAGS = ("DET", "V", "N", "AUX")


def minimal_pair(rng: random.Random, kind: str, seen: set[str]) -> list[tuple[str, int, str]]:
    """A good sentence and its corrupted copy, as (sentence, label, kind) rows.

    Used for the corruptions that keep the length: agreement, word order, verb form.
    """
    while True:
        good = random_sentence(rng)
        bad = corrupt(rng, good, kind)
        if bad is not None and good.text() not in seen and bad.text() not in seen:
            seen.update((good.text(), bad.text()))
            return [(good.text(), 1, ""), (bad.text(), 0, kind)]


def missing_and_doubled(rng: random.Random, seen: set[str]) -> list[tuple[str, int, str]]:
    """Two minimal pairs, one with a missing word and one with a doubled word, as rows.

    Dropping a word makes a bad sentence one word shorter than its good one, doubling makes it
    one longer. Building both from good sentences of lengths L+1 and L gives good sentences of
    lengths {L+1, L} and bad ones of lengths {L, L+1}: length alone tells nothing. And the
    same kind of word (determiner, verb, noun or auxiliary) is dropped in one and doubled in
    the other, so word counts stay balanced too.
    """
    tag = rng.choice(REMOVABLE_TAGS)
    while True:
        longer = random_sentence(rng)
        missing = corrupt(rng, longer, "missing_word", tag)
        if missing is None or longer.text() in seen or missing.text() in seen:
            continue
        for _ in range(300):  # a partner of the same tense, one word shorter
            shorter = random_sentence(rng, longer.tense, longer.question)
            if len(shorter.tokens) != len(longer.tokens) - 1:
                continue
            doubled = corrupt(rng, shorter, "doubled_word", tag)
            texts = [longer.text(), missing.text(), shorter.text()]
            if doubled is None or doubled.text() in texts or any(t in seen for t in texts + [doubled.text()]):
                continue
            seen.update(texts + [doubled.text()])
            return [
                (longer.text(), 1, ""),
                (missing.text(), 0, "missing_word"),
                (shorter.text(), 1, ""),
                (doubled.text(), 0, "doubled_word"),
            ]


def make_split(rng: random.Random, n: int, seen: set[str]) -> tuple[list[dict], list[str]]:
    """`n` rows (half of each label, shuffled, idx 0..n-1) and the corruption kind of each one."""
    n_bad = n // 2
    # Equal numbers of each kind; missing and doubled words come together (see above).
    n_tandem = n_bad // len(KINDS)
    others = ("agreement", "word_order", "verb_form")
    jobs = ["tandem"] * n_tandem + [others[i % 3] for i in range(n_bad - 2 * n_tandem)]
    rng.shuffle(jobs)
    rows = []
    for job in jobs:
        rows += missing_and_doubled(rng, seen) if job == "tandem" else minimal_pair(rng, job, seen)
    if n % 2:  # an odd n gets one extra good sentence
        while (extra := random_sentence(rng).text()) in seen:
            pass
        seen.add(extra)
        rows.append((extra, 1, ""))
    rng.shuffle(rows)
    table = [{"sentence": sentence, "label": label, "idx": i} for i, (sentence, label, _) in enumerate(rows)]
    return table, [kind for _, _, kind in rows]


def generate_with_kinds(
    seed: int = 0, n_train: int = 3000, n_validation: int = 600
) -> tuple[dict[str, list[dict]], dict[str, list[str]]]:
    """Like `generate`, but also returns the corruption kind of every row ("" when acceptable)."""
    rng = random.Random(seed)
    seen: set[str] = set()  # shared by both splits, so no sentence is in both
    splits, kinds = {}, {}
    for name, n in (("train", n_train), ("validation", n_validation)):
        splits[name], kinds[name] = make_split(rng, n, seen)
    return splits, kinds


def generate(seed: int = 0, n_train: int = 3000, n_validation: int = 600) -> dict[str, list[dict]]:
    """The dataset: {"train": rows, "validation": rows}, each row {"sentence", "label", "idx"}."""
    return generate_with_kinds(seed, n_train, n_validation)[0]


def csv_text(rows: list[dict]) -> str:
    """The rows as CSV text with the header sentence,label,idx ('\\n' line endings)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def write_splits(splits: dict[str, list[dict]], out_dir: Path) -> None:
    """Write train.csv and validation.csv into `out_dir` (created if needed)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in SPLITS:
        (out_dir / f"{name}.csv").write_text(csv_text(splits[name]), encoding="utf-8", newline="")


def check(splits: dict[str, list[dict]], data_dir: Path) -> str | None:
    """None if the files in `data_dir` equal `splits` byte for byte, else what differs."""
    for name in SPLITS:
        path = data_dir / f"{name}.csv"
        if not path.is_file():
            return f"{path} is missing"
        if path.read_bytes() != csv_text(splits[name]).encode("utf-8"):
            return f"{path} differs from a fresh generation"
    return None


def main(argv: list[str] | None = None) -> int:
    """Write (or with --check, verify) the two splits; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="verify the bundled files instead of writing")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR, help="default: %(default)s")
    args = parser.parse_args(argv)
    splits = generate(seed=args.seed)
    if args.check:
        problem = check(splits, args.data_dir)
        if problem:
            print(f"{problem}: run `make bundle` from the repository root to regenerate it", file=sys.stderr)
            return 1
        print("ok")
        return 0
    write_splits(splits, args.data_dir)
    for name in SPLITS:
        labels = [row["label"] for row in splits[name]]
        print(f"{args.data_dir / (name + '.csv')}: {len(labels)} rows ({sum(labels)} acceptable)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
