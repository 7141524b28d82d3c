"""Building blocks of the agent-talk patterns: where a sentence starts, who speaks, what follows.

Agent talk is recognised by its construction — the assistant announcing its own next action —
rather than by a list of verbs: a first-person intent ("I'll", "Let me", "Vou", "Deixa eu" …)
followed by ANY action verb, minus a closed list of direct uses ("Let me know", "I'll be
blunt", "Vou ser sincero", "Deixa eu te dar uma dica"). Everything here matches normalized
text (`textnorm.normalize`): lower case, accents stripped, ASCII apostrophes.

Every quantifier is bounded and long runs use classes that cannot overlap their neighbours,
so matching is linear in the text; `redos.backtracking_problems` checks that statically.
"""

from __future__ import annotations

S = r"[ \t]{1,8}"  # the gap between two words
S0 = r"[ \t]{0,8}"


def by_first_letter(options: list[str]) -> str:
    """One alternation of `options`, nested by first letter: `(?:a(?:gora|llow)|b(?:ora)|…)`.

    Same matches in the same order (options that share a first letter keep their order, the
    others cannot match at the same place), but the engine skips a whole group on one
    character compare instead of trying every option in turn.
    """
    groups: dict[str, list[str]] = {}
    for o in options:
        assert o[0].isalpha() and o[1:2] not in ("?", "*", "+", "{"), (
            f"{o!r} must open with a plain letter"
        )
        groups.setdefault(o[0], []).append(o[1:])
    return "(?:" + "|".join(f"{c}(?:{'|'.join(rest)})" for c, rest in groups.items()) + ")"


# Where agent talk starts: the reply start, or after sentence or clause punctuation (a comma
# or a dash counts: "Sure — let me sketch…", "Hold on, let me reread…"), then an optional
# bullet or numbering and optional bold (skipped at once when a letter follows). The leading
# whitespace is possessive: what follows never starts with whitespace, so giving some back
# could not help.
BOUNDARY = r"[\n.!?:;…,—–]"
AFTER_BOUNDARY = (
    r"[ \t\n]{0,16}+(?:(?=[a-z])|(?:(?:[-*>•#]{1,6}|\d{1,2}[.)])[ \t]{0,8})?(?:\*\*|__)?)"
)
START = rf"(?:^|(?<={BOUNDARY})|(?<=[ \t]-))" + AFTER_BOUNDARY

# Interjections and sequencing words that may precede the announcement without punctuation
# of their own ("ok so first i'll…", "Sure let me…", "peraí q vou…"): at most three, taken
# greedily and never given back (atomic), so there is one way to read them. A pattern whose
# own first word is one of them ("First, I need to…", "Agora vou…") uses `filler(without=…)`.
_FILLER_WORDS = (
    "now",
    "ok",
    "okay",
    "alright",
    r"all[ \t]right",
    "right",
    "great",
    "sure",
    "so",
    "first",
    "firstly",
    r"first[ \t](?:up|off)",
    "next",
    "then",
    "well",
    "yes",
    "yeah",
    "hm{1,4}",
    "perfect",
    "cool",
    "understood",
    r"got[ \t]it",
    "agora",
    "primeiro",
    "entao",
    "beleza",
    "blz",
    "certo",
    "bom",
    "perfeito",
    "entendi",
    "opa",
    "legal",
    "tranquilo",
    r"vamos[ \t]la",
    "ta",
    r"perai?(?:[ \t](?:q|que))?",
)


FILLERS: dict[
    tuple[str, ...], str
] = {}  # every filler variant handed out, by the words it leaves out


def filler(without: tuple[str, ...] = ()) -> str:
    """FILLER, optionally without the words starting with `without`."""
    if without not in FILLERS:
        words = by_first_letter(
            [w for w in _FILLER_WORDS if not (without and w.startswith(without))]
        )
        FILLERS[without] = rf"(?>(?:{words}(?:{S0}[,!.:—–-]{{1,3}})?{S}){{0,3}})"
    return FILLERS[without]


FILLER = filler()

# ------------------------------------------------------------------ English
# Who announces: the assistant itself, about to act.
EN_LET_ME = rf"(?:let{S}me|lemme|allow{S}me{S}to|permit{S}me{S}to)"
EN_I_WILL = (
    rf"(?:i(?:'ll|{S}will|{S}shall)|i(?:'m|m|{S}am){S}(?:now{S}|just{S}|also{S})?(?:going{S}to|gonna)|"
    rf"i(?:'d|{S}would){S}like{S}to|i{S}(?:want|need|have){S}to|i'?ve{S}got{S}to)"
)
# Adverbs and auxiliaries between the intent and the verb, taken greedily and never given back
# (atomic), so "Let me just say" cannot re-read "just" as the verb.
EN_ADVERBS = (
    rf"(?>(?:(?:now|first|just|quickly|also|then|briefly|carefully|actually|really|finally|next|"
    rf"go{S}ahead{S}and|need{S}to|have{S}to|want{S}to|try{S}(?:to|and)){S}){{0,3}})"
)
# The closed list of direct uses: talking to the user, not acting ("Let me know", "I'll be
# honest", "Let me put it this way", "I'll give you the short version", "I'll bet").
EN_DIRECT = (
    r"(?:(?:be|know|tell|say|ask|admit|confess|bet|guess|stress|emphasi[sz]e|remind|warn|caution|reiterate|"
    r"repeat|mention|clarify|assume|suggest|recommend|answer|promise|disagree|defer|offer|"
    # social acts toward the user are not work: "Let me congratulate you", "I'll keep my fingers
    # crossed"
    r"congratulate|reassure|thank|apologi[sz]e|wish|cheer|encourage|comfort|welcome|celebrate|root|"
    r"gladly|happily|honestly|not|never|always|probably|likely|definitely|certainly)\b|"
    rf"(?:point{S}out|note{S}that|level{S}with|play{S}(?:the{S})?devil|put{S}(?:it|this|that)|"
    rf"keep{S}(?:it|this|my{S}fingers)|give{S}(?:you|ya|u|it{S}to{S}you)|leave{S}(?:you|ya|u|it|that)|let{S}you|"
    rf"leave{S}the{S}(?:(?:final|last|big){S})?(?:call|decision|choice|pick)|"
    rf"take{S}(?:the{S}other|that)|push{S}back|spare{S}you|grant{S}you|cut{S}to|get{S}this{S}straight|"
    rf"get{S}(?:straight|right){S}to|sum{S}(?:it|this|that){S}up{S}in|go{S}with|stop{S}you|"
    rf"share{S}(?:a|one|my|some)|add{S}(?:one|that|this|a{S}(?:quick{S})?(?:note|caveat|thing|word|point)))\b)"
)
EN_VERB = r"[a-z]{1,30}(?:[-'][a-z]{1,30})?\b"
# After a subject-less "gonna"/"going to" the next word may be a place or a thing, not a verb.
EN_NOT_A_VERB = (
    r"(?:the|a|an|my|your|our|their|his|her|its|this|that|these|those|bed|sleep|school|work|church|"
    r"college|hospital|need|cost|take|happen|hurt|fail|last|be|have)\b"
)
# …so a subject-less announcement needs a verb with an object after it ("Going to reproduce the
# bug", "gonna dig into the config"), which "Going to Rome in August?" lacks.
EN_OBJECT = (
    r"(?:the|a|an|your|my|our|this|that|these|those|it|them|some|all|up|into|through|out|over|`)\b"
)
# "I'm <verb>ing …" narrates work in progress unless the verb is a stance ("I'm guessing").
EN_STANCE_ING = (
    rf"(?:going{S}to|gonna|thinking(?!{S}(?:through|over))\b|(?:guessing|assuming|hoping|leaning|wondering|betting|saying|telling|"
    rf"kidding|seeing|getting|feeling|rooting|being|having|sensing|loving|hearing|talking|speaking|"
    rf"asking|starting{S}to|beginning{S}to)\b)"
)
# Gerunds that open a sentence without narrating a tool ("Speaking of…", "Nothing to add…").
EN_NOT_GERUND = (
    r"(?:being|having|speaking|talking|going|coming|moving|getting|assuming|considering|depending|"
    r"according|including|regarding|following|summing|wrapping|thing|nothing|something|anything|"
    r"everything|morning|evening|during|string|spring|king|ring|wing|bring|ceiling|sibling|wedding|"
    r"pudding|ping|sing|swing|sting|thanksgiving)\b"
)

# ------------------------------------------------------------------ Portuguese (pt-BR)
PT_VOU = rf"(?:eu{S})?(?:vou|vo|irei)"
PT_DEIXA = (
    rf"(?:(?:deixa|deixe){S}eu|deixa-me|deixe-me|me{S}deix[ae]|"
    rf"permit[ae]-me|me{S}permit[ae]|bora{S}eu)"
)
PT_QUERO = rf"(?:eu{S})?(?:preciso|quero|tenho{S}que|gostaria{S}de)"
PT_ADVERBS = rf"(?>(?:(?:agora|primeiro|ja|so|rapidinho|tambem|entao|logo|aqui|antes){S}){{0,3}})"
# Closed list of direct uses ("Vou ser sincero", "Vou te falar", "Deixa eu te dar uma dica",
# "Deixa eu adivinhar", "Vou resumir numa frase").
PT_DIRECT = (
    rf"(?:(?:(?:te|lhe){S})?(?:ser|estar|falar|dizer|contar|confessar|admitir|adivinhar|perguntar|lembrar|"
    r"avisar|alertar|discordar|insistir|repetir|reforcar|ressaltar|enfatizar|garantir|prometer|apostar|"
    r"sugerir|recomendar|responder|"
    # social acts and feelings toward the user are not work: "Deixa eu te parabenizar", "Vou torcer
    # por você"
    r"parabenizar|tranquilizar|agradecer|desejar|torcer|adorar|amar|gostar|sentir|lamentar)\b|"
    rf"ficar{S}(?:na{S}torcida|torcendo|feliz|contente|muito|no{S}aguardo|aguardando|esperando|orgulhos[oa])\b|"
    rf"deixar{S}(?:a|essa|esta){S}(?:decisao|escolha|palavra)\b|"
    rf"te{S}(?:dar|deixar)\b|dar{S}(?:uma{S})?dica\b|deixar{S}(?:uma|um|claro|registrado)\b|abrir{S}o{S}jogo\b|"
    rf"fazer{S}(?:o|a){S}(?:advogado|papel)\b|resumir{S}(?:numa|em{S}uma|em{S}poucas)\b)"
)
# An infinitive, optionally after a clitic ("te detalhar") or with an enclitic ("analisa-lo").
PT_VERB = rf"(?:(?:te|lhe|me|se|nos){S})?[a-z]{{1,30}}(?:ar|er|ir|or|[aei]-l[oa]s?)\b"
PT_GERUND = r"[a-z]{1,30}[aei]ndo\b"
PT_STANCE_GERUND = (
    rf"(?:pensando{S}(?:que|se)\b|(?:achando|falando|dizendo|brincando|torcendo|sentindo|gostando|curtindo|precisando|"
    rf"querendo|entendendo|sabendo|morrendo|indo|vindo|sendo|tendo)\b|vendo{S}que\b)"
)
PT_NOT_GERUND = (
    r"(?:sendo|tendo|indo|vindo|dependendo|considerando|lembrando|resumindo|falando|voltando|mudando|"
    r"aproveitando|respondendo|pensando|quando|comando|demando|brando|fernando|orlando|lindo)\b"
)
# First-person present used for the next steps ("Primeiro eu comparo…, depois…").
PT_STANCE_PRESENT = (
    r"(?:acho|sei|penso|acredito|suponho|imagino|entendo|prefiro|recomendo|sugiro|aposto|"
    r"confesso)\b"
)

# ------------------------------------------------------------------ tool narration
# What a narrated tool call talks about: a clause that trails off ("Opening the logs…",
# "Checking the config now.", "Running `make`"), or a definite object with a purpose and no
# verb that would make the gerund a subject ("Opening `settings.py` to check the order." but
# not "Running tests to catch bugs is good practice."). A dot inside a token (app.py) is part
# of the clause; a sentence end is not.
CLAUSE_CHAR = r"(?:[^\n.!?…]|\.(?=[^\s.]))"
_COPULA = by_first_letter(
    [
        "is",
        "are",
        "was",
        "were",
        "will",
        "would",
        "can",
        "could",
        "should",
        "may",
        "might",
        "must",
        "helps?",
        "makes?",
        "beats?",
        "catches",
        "costs?",
        "takes?",
        "saves?",
        "gives?",
        "works?",
        "keeps?",
        "needs?",
        "means?",
        "requires?",
        "lets?",
        "avoids?",
        "prevents?",
        "sao",
        "fica",
        "ficam",
        "ajuda",
        "ajudam",
        "evita",
        "vale",
        "custa",
        "resolve",
        "faz",
        "garante",
        "economiza",
        "pode",
        "deve",
        rf"da{S}pra",
        "you",
        "voce",
    ]
)
_DEFINITE = (
    r"(?:`|(?:the|your|my|this|that|these|those|o|os|as|seu|sua|seus|suas|esse|essa|este|esta)"
    r"[ \t])"
)
_DETERMINER = (
    r"(?:the|a|an|your|my|our|their|this|that|these|those|it|them|o|os|as|um|uma|seu|sua|voce)\b"
)
_WORD = (
    r"[^\s!?…]{1,64}+(?<!\.)"  # one token of a clause, taken whole; a token ending in "." ends it
)
_WORDS_THEN = rf"(?:{_WORD}[ \t]{{1,8}}){{0,30}}?"  # as few tokens as needed before what follows
NARRATED_OBJECT = (
    rf"(?:{_WORDS_THEN}(?:now|agora)\b|{CLAUSE_CHAR}{{0,200}}+(?:\.\.\.|…|(?:(?<=`)|(?<=`[ "
    rf"\t]))(?:$|\n))|(?={_DEFINITE})(?!{_WORDS_THEN}{_COPULA}\b){_WORDS_THEN}(?:to|pra|"
    rf"para){S}(?!{_DETERMINER})[a-z])"
)

# The words an anchored pattern's body can start with (after its filler): who announces, or a
# gerund. Every anchored pattern is compiled with this guard in front of its body, so a
# sentence that opens with any other word is dismissed after one cheap check, and the prefilter
# (see matcher.py) stays exactly the union of the patterns. A pattern whose body opened with
# another word would never match: its positive examples would fail, and
# tests/test_patterns.py compares every pattern with and without the guard.
_HEAD_WORDS = [
    rf"i(?:'ll|'m|'d|'ve|{S}(?:will|shall|am|would|want|need|have))\b",
    r"im\b",
    r"ive\b",
    r"lemme\b",
    r"gonna\b",
    r"first\b",
    r"firstly\b",
    r"vou\b",
    r"vo\b",
    r"irei\b",
    r"deixa\b",
    r"deixe\b",
    r"bora\b",
    r"antes\b",
    r"primeiro\b",
    r"preciso\b",
    r"agora\b",
    r"meu\b",
    r"depois\b",
    r"quero\b",
    r"tenho\b",
    r"gostaria\b",
    r"estou\b",
    r"tou\b",
    rf"let(?:'s|{S}(?:me|us)\b)",
    rf"allow{S}me\b",
    rf"permit{S}me\b",
    rf"give{S}me\b",
    rf"grant{S}me\b",
    rf"bear{S}with\b",
    rf"hold{S}on\b",
    rf"hang{S}on\b",
    rf"step{S}1",
    rf"going{S}to\b",
    rf"my{S}plan",
    rf"the{S}plan",
    rf"here'?s{S}my\b",
    rf"to{S}(?:do|fix|solve|agora|aqui|ja|so)\b",
    rf"to{S}[a-z]{{1,30}}[aei]ndo\b",
    rf"eu{S}(?:vou|vo|irei|preciso|quero|tenho|gostaria|estou|to|tou)\b",
    rf"o{S}plano",
    rf"em{S}seguida",
    rf"na{S}sequencia",
    rf"por{S}fim",
    rf"logo{S}depois",
    rf"so{S}um\b",
    rf"um{S}(?:momento|instante)",
    rf"me{S}(?:deix|permit|d[ae]\b)",
    rf"one{S}(?:sec|second|moment|minute)",
    rf"just{S}a\b",
    r"permit[ae]-me",
    r"deix[ae]-me",
    rf"what{S}i\b",
    rf"o{S}que{S}(?:eu{S})?(?:vou|vo)\b",
    rf"my{S}(?:approach|strategy|game|first|next)\b",
    rf"step{S}one{S}for\b",
    rf"first{S}step{S}for\b",
    r"minha\b",
    r"proximo\b",
]
HEADS = (
    "(?:"
    + by_first_letter(_HEAD_WORDS)
    + rf"|(?=[a-z]{{1,40}}+(?<=ing|ndo)\b)(?!{EN_NOT_GERUND}|{PT_NOT_GERUND}))"  # a gerund
)
HEAD_GUARD = f"(?={HEADS})"
