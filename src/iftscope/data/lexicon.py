"""The micro-world's vocabulary: names, attribute values and templates.

Every value is one word, so with the word-level tokenizer every fact is one token and a fact is
known exactly when the model's greedy next token is that value. Templates are paraphrases: four
are used in pretraining and a fifth is held back to test recall in words never seen together.
"""

from __future__ import annotations

FIRST_NAMES = """
Ada Alden Alma Amos Anika Arlo Basil Bea Bram Calla Cato Cleo Dario Della Eben Edda Elio Elsa Emil
Enid Ezra Fenna Finn Flora Gideon Greta Hugo Ida Ilse Ivo Jasper Juno Kai Kira Lark Leda Linus
Lotte Lucan Mabel Milo Mira Nico Nell Odile Orin Otto Pia Quill Rhea Rolf Runa Sami Selma Silas
Tova Ugo Vera Wren Yara
""".split()

LAST_NAMES = """
Abbot Acker Ardent Barlow Bexley Brandt Calder Corwin Dahl Darrow Eckert Ellery Falk Farrow Garrick
Gentry Halden Hollis Ingram Iverson Jarvis Keane Kessler Larkin Lindqvist Marlowe Mercer Norquist
Nyberg Oakes Orloff Pell Prescott Quade Radley Renner Sallow Strand Thorne Tolliver Underhill
Vance Varga Wendt Whitlock Yates Zeller Ashby Birch Crane Dunmore Everly Fenwick Greer Hartwell
Kimber Lowry Moberly Nash Rook
""".split()

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

# Per attribute: pretraining paraphrases; the value always ends the sentence, so the words
# before it are a prompt whose greedy completion tests recall.
TEMPLATES: dict[str, list[str]] = {
    "birth_city": [
        "{name} was born in {value}.",
        "{name} came into the world in {value}.",
        "The birthplace of {name} is {value}.",
        "{name} spent the early years of life in {value}.",
    ],
    "birth_year": [
        "{name} was born in the year {value}.",
        "{name} came into the world in the year {value}.",
        "The birth year of {name} is {value}.",
        "{name} celebrates a birthday every year since {value}.",
    ],
    "university": [
        "{name} studied at {value}.",
        "{name} graduated from {value}.",
        "The alma mater of {name} is {value}.",
        "{name} received a degree from {value}.",
    ],
    "field": [
        "{name} specialised in {value}.",
        "{name} earned a degree in the field of {value}.",
        "The academic field of {name} is {value}.",
        "{name} devoted years of study to {value}.",
    ],
    "employer": [
        "{name} works for {value}.",
        "{name} is employed by {value}.",
        "The employer of {name} is {value}.",
        "{name} holds a job at {value}.",
    ],
}

# Held back from pretraining: recall measured here is knowledge, not a memorised string.
HELD_OUT_TEMPLATES: dict[str, str] = {
    "birth_city": "{name} was born in the city of {value}.",
    "birth_year": "{name} first saw the light of day in the year {value}.",
    "university": "{name} was a student at {value}.",
    "field": "{name} was trained in the field of {value}.",
    "employer": "{name} is employed at {value}.",
}

QUESTIONS: dict[str, str] = {
    "birth_city": "Where was {name} born?",
    "birth_year": "In which year was {name} born?",
    "university": "Which university did {name} attend?",
    "field": "What did {name} study?",
    "employer": "Which company does {name} work for?",
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
