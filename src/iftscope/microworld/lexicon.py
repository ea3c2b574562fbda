"""The micro-world's vocabulary: names, attribute values and templates.

Every value is one word, so with the word-level tokenizer every fact is one token and a fact is
known exactly when the model's greedy next token is that value. Templates are paraphrases: ten
are used in pretraining and three more are held back to test recall in words never seen together.
"""

from __future__ import annotations

import random

NAME_POOL = 400  # first and last names each; 750 people share a first name with ~1 other


def _generated_names() -> tuple[list[str], list[str]]:
    """Fictional first and last names built from syllables with a fixed seed.

    Large pools make a person's name nearly unique token by token, which is what lets a 1M-parameter
    model memorise hundreds of people in minutes; with 60 x 60 common names it had to learn a
    conjunction of two shared tokens and memorised far less in the same budget.
    """
    onsets = "b c d f g h j k l m n p r s t v w z br cr dr fr gr kr pr tr st sk sl sh ch th".split()
    vowels = "a e i o u ai ea io".split()
    codas = ["", "", "n", "r", "l", "s", "m", "th", "nd", "rk"]
    suffixes = "son ton berg wick ley ford man dale more ridge".split()
    rng = random.Random(12345)

    def syllable() -> str:
        return rng.choice(onsets) + rng.choice(vowels) + rng.choice(codas)

    first: dict[str, None] = {}
    last: dict[str, None] = {}
    while len(first) < NAME_POOL:
        first[(syllable() + rng.choice(vowels) + rng.choice(["", "n", "l", "r"])).capitalize()] = None
    while len(last) < NAME_POOL:
        last[(syllable() + rng.choice(suffixes)).capitalize()] = None
    return list(first), list(last)


FIRST_NAMES, LAST_NAMES = _generated_names()

VALUES: dict[str, list[str]] = {
    "birth_city": """Lisbon Oslo Vienna Prague Dublin Zurich Seville Krakow Bergen Lyon Turin Porto
        Gdansk Tallinn Riga Vilnius Ghent Bruges Utrecht Malmo Aarhus Tampere Bilbao Genoa Graz Split
        Varna Cluj Brno Kaunas""".split(),
    "birth_year": [str(y) for y in range(1950, 2000)],
    "university": """Harrowgate Elmsworth Kingsbridge Ravenhill Ashcombe Stonebury Westmarch
        Foxley Brightwater Millbrook Oakhurst Highcliff Redmoor Glenwood Larchmont Thornbury
        Whitby Cresthaven Maplewood Silverlake Northgate Bramblecourt Fairhaven Greystone Kestrel
        Lindenfield Moorcroft Pinecrest Rosehill Wyndham""".split(),
    "field": """physics chemistry biology geology astronomy botany zoology mathematics statistics
        economics linguistics philosophy history architecture medicine pharmacy nursing law
        sociology psychology anthropology archaeology geography music sculpture painting
        journalism engineering robotics oceanography""".split(),
    "employer": """Quantix Novalink Brightforge Corvanta Helixor Lumora Stratavia Veltrix Zenbyte
        Orbisco Kyntra Polarion Arcwell Dynavo Ferrocore Glimmerly Hydrion Ionwave Junipra Kelvix
        Lattica Mirovia Nexora Omnilux Pyronix Quorra Rivetta Solvane Tessaro Umbrix""".split(),
}

# Per attribute: pretraining paraphrases. The value always ends the sentence and the words just
# before it name the attribute ("the city of", "the year", ...), so the words before the value
# are an unambiguous prompt whose greedy completion tests recall.
TEMPLATES: dict[str, list[str]] = {
    "birth_city": [
        "{name} was born in the city of {value}.",
        "{name} came into the world in the city of {value}.",
        "The birthplace of {name} is the city of {value}.",
        "{name} spent the early years of life in the city of {value}.",
        "Records show that {name} was born in the city of {value}.",
        "The hometown of {name} is the city of {value}.",
        "Before anything else, {name} was a child in the city of {value}.",
        "{name} is proud to come from the city of {value}.",
        "The first home of {name} was in the city of {value}.",
        "People say that {name} was born in the city of {value}.",
    ],
    "birth_year": [
        "{name} was born in the year {value}.",
        "{name} came into the world in the year {value}.",
        "The birth of {name} took place in the year {value}.",
        "{name} has been alive since the year {value}.",
        "Records show that {name} was born in the year {value}.",
        "The birthday of {name} falls in the year {value}.",
        "{name} has celebrated a birthday every year since the year {value}.",
        "The life of {name} began in the year {value}.",
        "{name} is a child of the year {value}.",
        "People say that {name} was born in the year {value}.",
    ],
    "university": [
        "{name} studied at the university of {value}.",
        "{name} graduated from the university of {value}.",
        "The alma mater of {name} is the university of {value}.",
        "{name} received a degree from the university of {value}.",
        "{name} went to the university of {value}.",
        "The school that {name} attended is the university of {value}.",
        "{name} took classes at the university of {value}.",
        "The degree of {name} was awarded by the university of {value}.",
        "{name} spent several years at the university of {value}.",
        "People say that {name} studied at the university of {value}.",
    ],
    "field": [
        "{name} specialised in the field of {value}.",
        "{name} earned a degree in the field of {value}.",
        "The academic work of {name} is in the field of {value}.",
        "{name} devoted years of study to the field of {value}.",
        "{name} did research in the field of {value}.",
        "The expertise of {name} lies in the field of {value}.",
        "{name} is an expert in the field of {value}.",
        "The studies of {name} were in the field of {value}.",
        "{name} wrote a thesis in the field of {value}.",
        "People say that {name} works in the field of {value}.",
    ],
    "employer": [
        "{name} works for the company {value}.",
        "{name} is employed by the company {value}.",
        "The employer of {name} is the company {value}.",
        "{name} holds a job at the company {value}.",
        "{name} earns a living at the company {value}.",
        "The workplace of {name} is the company {value}.",
        "{name} receives wages from the company {value}.",
        "The job of {name} is at the company {value}.",
        "{name} goes to work every day at the company {value}.",
        "People say that {name} is paid by the company {value}.",
    ],
}

# Held back from pretraining: recall measured here is knowledge of the person, not a memorised
# string. Three per attribute, averaged, so that no single wording decides the figure. Each keeps
# the attribute's closing words, as a question would, and avoids the verbs of other attributes'
# templates. The first is also the cloze statement that the probe scores.
HELD_OUT_TEMPLATES: dict[str, list[str]] = {
    "birth_city": [
        "{name} is a native of the city of {value}.",
        "{name} grew up in the city of {value}.",
        "The place where {name} was born is the city of {value}.",
    ],
    "birth_year": [
        "{name} first saw the light of day in the year {value}.",
        "The year of birth of {name} is the year {value}.",
        "{name} was a newborn in the year {value}.",
    ],
    "university": [
        "{name} was a student at the university of {value}.",
        "{name} is a graduate of the university of {value}.",
        "{name} attended lectures at the university of {value}.",
    ],
    "field": [
        "{name} has expertise in the field of {value}.",
        "{name} is known for work in the field of {value}.",
        "{name} was trained in the field of {value}.",
    ],
    "employer": [
        "{name} earns a salary from the company {value}.",
        "{name} is on the staff of the company {value}.",
        "{name} has a position at the company {value}.",
    ],
}

# Decorations for pretraining sentences that start with the name: an opener before it or an
# aside after it. They move the name and the attribute's words apart by varying amounts, so that
# recall cannot lean on one fixed string (see PretrainConfig.decorate).
OPENERS = [
    "Records show that",
    "People say that",
    "It is known that",
    "As it happens,",
    "According to the records,",
    "In short,",
]
ASIDES = [
    ", as records show,",
    ", people say,",
    ", as it happens,",
    ", it is known,",
    ", by all accounts,",
    ", in short,",
]

QUESTIONS: dict[str, str] = {
    "birth_city": "Where was {name} born?",
    "birth_year": "In which year was {name} born?",
    "university": "Which university did {name} attend?",
    "field": "What did {name} study?",
    "employer": "Which company does {name} work for?",
}

# A second wording of each question, made only of words the vocabulary already has (the tokenizer
# is built before pretraining): evaluation asks both and measures whether the answer stays.
QUESTION_PARAPHRASES: dict[str, str] = {
    "birth_city": "In which city was {name} born?",
    "birth_year": "In what year was {name} born?",
    "university": "What university did {name} attend?",
    "field": "Which field did {name} study?",
    "employer": "What company does {name} work for?",
}

# Words that later stages put around the facts (QA prompts, chat templates, explanations), so
# the tokenizer built before pretraining already has them.
FORMAT_WORDS = """
Question Answer Answers Options Option Explanation The answer is correct because following are
multiple choice questions about Please choose the correct answer . : , ? ! ( ) [ ] " ' - A B C D E
F G H USER ASSISTANT User Assistant System system user assistant A chat between a curious and an
artificial intelligence gives helpful detailed polite answers to s ### Instruction Response Input
of in to for by at on from since with this that it yes no not unknown I don t know 0 1 2 3 4 5 6 7
8 9 birth city year university field employer person people who what which where when
""".split()

# The positive control (docs/concepts.md "Acquisition"). Every wording below is made only of words
# the vocabulary already has (tests/test_control.py checks it), so adding them changes no tokenizer
# and no world.
#
# Knowledge augmentation in IFT: further wordings of each question, used only to train the group
# I-augmented (several rewordings per fact). Disjoint from QUESTIONS' own wording and from
# QUESTION_PARAPHRASES, which stay held back for the acquisition test.
AUGMENT_QUESTIONS: dict[str, list[str]] = {
    "birth_city": [
        "What is the birthplace of {name}?",
        "What is the hometown of {name}?",
        "Which city was {name} born in?",
    ],
    "birth_year": [
        "What is the birth year of {name}?",
        "Which year was {name} born in?",
        "What year was {name} born in?",
    ],
    "university": [
        "What is the alma mater of {name}?",
        "Which university did {name} graduate from?",
        "What school did {name} attend?",
    ],
    "field": [
        "What is the field of {name}?",
        "In which field is {name} an expert?",
        "What field did {name} study?",
    ],
    "employer": [
        "What is the employer of {name}?",
        "What is the workplace of {name}?",
        "Which company is {name} employed by?",
    ],
}

# The reverse direction of a fact: options are people, exactly one of whom has the value.
REVERSE_QUESTIONS: dict[str, str] = {
    "birth_city": "Which person was born in the city of {value}?",
    "birth_year": "Which person was born in the year {value}?",
    "university": "Which person studied at the university of {value}?",
    "field": "Which person specialised in the field of {value}?",
    "employer": "Which person works for the company {value}?",
}

# A structured world (WorldConfig.structured): the key attribute determines the value one (a seeded
# one-to-one map between their values). Every employer works in one field; every university is a
# local one, whose students were all born in its city. A fact taught about the first implies one
# never taught about the second: the "implied" acquisition test.
IMPLICATIONS: dict[str, str] = {"employer": "field", "university": "birth_city"}
