"""Instructions that need no knowledge, with exact answers: the ``[No Retrieval]`` side of the data.

Self-RAG learns *when* to retrieve from instances whose Retrieve label is ``[No Retrieval]``
(paper §3.2: the critic judges that the instruction needs no factual grounding). Our training
questions (PopQA, PubHealth, ARC) all need knowledge, so the reproduction adds instructions that
need none — arithmetic, list and word manipulation, odd-one-out — generated from templates with
a seeded RNG, each with its exact answer (so the gold-answer judge labels them like any other
item: ``[No Retrieval]``, and IsUse from the answer).

:func:`training_instructions` draws from :data:`TRAINING_TEMPLATES`; :func:`probe_instructions`
draws from :data:`PROBE_TEMPLATES`, other wordings and other tasks, used only to measure the
trained model's retrieval decision on prompts it was not trained on.
"""

from __future__ import annotations

import random
from collections.abc import Callable

DATASET_NAME = "no_knowledge"

_ANIMALS = ["dog", "cat", "horse", "rabbit", "tiger", "sheep", "goat", "lion", "mouse", "wolf"]
_FRUITS = ["apple", "banana", "cherry", "grape", "lemon", "mango", "peach", "pear", "plum", "orange"]
_COLOURS = ["red", "blue", "green", "yellow", "purple", "white", "black", "pink", "brown", "grey"]
_TOOLS = ["hammer", "saw", "wrench", "drill", "chisel", "pliers", "screwdriver", "shovel"]
_WORDS = ["river", "window", "garden", "pencil", "candle", "market", "silver", "bottle", "planet",
          "letter", "forest", "jacket", "winter", "button", "ladder", "mirror", "basket", "castle",
          "dragon", "engine", "finger", "harbor", "island", "kitten", "lemon", "meadow", "needle",
          "orange", "pocket", "rocket", "saddle", "tunnel", "violin", "wallet", "yellow", "zipper"]
_GROUPS = [_ANIMALS, _FRUITS, _COLOURS, _TOOLS]

Template = Callable[[random.Random], tuple[str, str]]


def _add(rng):
    a, b = rng.randint(2, 60), rng.randint(2, 60)
    return f"What is {a} plus {b}?", str(a + b)


def _subtract(rng):
    a, b = rng.randint(20, 90), rng.randint(1, 19)
    return f"Subtract {b} from {a}.", str(a - b)


def _multiply(rng):
    a, b = rng.randint(2, 12), rng.randint(2, 12)
    return f"What is {a} times {b}?", str(a * b)


def _odd_one_out(rng):
    group, other = rng.sample(_GROUPS, 2)
    words = rng.sample(group, 3) + [rng.choice(other)]
    odd = words[-1]
    rng.shuffle(words)
    return f"Leave odd one out: {', '.join(words)}.", odd


def _sort_numbers(rng):
    numbers = rng.sample(range(1, 100), 4)
    return (f"Sort these numbers from smallest to largest: {', '.join(map(str, numbers))}.",
            ", ".join(map(str, sorted(numbers))))


def _reverse_word(rng):
    word = rng.choice(_WORDS)
    return f"Write the word \"{word}\" backwards.", word[::-1]


def _uppercase(rng):
    words = rng.sample(_WORDS, 3)
    return f"Rewrite in capital letters: {' '.join(words)}", " ".join(words).upper()


def _count_words(rng):
    n = rng.randint(3, 7)
    words = rng.sample(_WORDS, n)
    return f"How many words are in this sentence: \"{' '.join(words)}\"?", str(n)


def _larger(rng):
    a, b = rng.sample(range(1, 500), 2)
    return f"Which number is larger, {a} or {b}?", str(max(a, b))


TRAINING_TEMPLATES: tuple[Template, ...] = (_add, _subtract, _multiply, _odd_one_out,
                                            _sort_numbers, _reverse_word, _uppercase,
                                            _count_words, _larger)


def _probe_sum(rng):
    a, b, c = rng.randint(1, 20), rng.randint(1, 20), rng.randint(1, 20)
    return f"Add up {a}, {b} and {c}.", str(a + b + c)


def _probe_last_letter(rng):
    word = rng.choice(_WORDS)
    return f"What is the last letter of the word \"{word}\"?", word[-1]


def _probe_lowercase(rng):
    words = rng.sample(_WORDS, 2)
    return f"Convert to lower case: {' '.join(words).upper()}", " ".join(words)


def _probe_smallest(rng):
    numbers = rng.sample(range(1, 100), 5)
    return f"Give the smallest number in this list: {', '.join(map(str, numbers))}.", str(min(numbers))


def _probe_double(rng):
    a = rng.randint(3, 50)
    return f"Double the number {a}.", str(2 * a)


def _probe_first_word(rng):
    words = rng.sample(_WORDS, 4)
    return f"Repeat only the first word of: {' '.join(words)}", words[0]


PROBE_TEMPLATES: tuple[Template, ...] = (_probe_sum, _probe_last_letter, _probe_lowercase,
                                         _probe_smallest, _probe_double, _probe_first_word)


def _draw(templates, n: int, seed: int, prefix: str) -> list[dict]:
    rng = random.Random(seed)
    items, seen = [], set()
    for attempt in range(100 * n + 100):
        if len(items) == n:
            break
        instruction, answer = templates[attempt % len(templates)](rng)
        if instruction in seen:
            continue
        seen.add(instruction)
        items.append({"id": f"{prefix}_{len(items)}", "instruction": instruction, "input": "",
                      "output": answer, "answers": [answer], "dataset_name": DATASET_NAME})
    if len(items) < n:
        raise ValueError(f"the templates give fewer than {n} distinct instructions")
    return items


def training_instructions(n: int, seed: int = 0) -> list[dict]:
    """``n`` pipeline items (``instruction``, ``output``, ``answers``, ...) of the training kinds."""
    return _draw(TRAINING_TEMPLATES, n, seed, DATASET_NAME)


def probe_instructions(n: int, seed: int = 1) -> list[dict]:
    """``n`` held-out items of other kinds and wordings, for the retrieval-decision probe."""
    return _draw(PROBE_TEMPLATES, n, seed, "probe")
