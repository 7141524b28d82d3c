"""The agent-talk patterns: one source of truth for curation and for the agent-phrase metric.

Each pattern has an id, a language, a category, a description and positive/negative examples
that the tests run. Matching happens on `normalize(text)` (molting/curate/textnorm.py): NFKD with
accents and invisible format characters stripped, case-folded, typographic apostrophes made ASCII. Preambles are anchored where agent talk
occurs — the reply start or a sentence start, after an optional bullet and filler word — so a
direct reply that merely contains "let me"/"vou" survives:

    >>> [h.pattern.id for h in find_agent_talk("Let me know if it breaks.")]
    []
    >>> [h.pattern.id for h in find_agent_talk("Sure! Let me check the logs first.")]
    ['en.let_me_check']
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from molting.curate.textnorm import SpanMap, normalize

PATTERNS_VERSION = "2026.11.2"  # bump when a pattern changes: metrics and baselines key on it

# Where agent talk starts: the reply start or right after sentence punctuation / a newline,
# then an optional bullet or numbering, optional bold, and an optional filler word ("Ok, ").
# Every quantifier is either bounded or over a disjoint class, so matching stays linear.
_START = r"(?:^|(?<=[\n.!?:;…]))[ \t\n]*(?:(?:[-*>•#]+|\d{1,2}[.)])[ \t]*)?(?:\*\*|__)?"
_FILLER = (
    r"(?:(?:now|ok|okay|alright|all right|great|sure|so|first|firstly|next|then|"
    r"agora|primeiro|entao|beleza|certo|bom|perfeito)[ \t]*[,!.]?[ \t]+){0,2}"
)
_I_WILL = r"i(?:'ll|[ \t]+will)[ \t]+"
_EN_VERBS = (
    r"read|open|check|analy[sz]e|examine|inspect|review|search|grep|look[ \t]+(?:at|into|through)|"
    r"run|execute|explore|investigate|scan|implement|create|update|modify|edit|write[ \t]+(?:a|the|some)[ \t]+(?:test|script|file|function|code)|"
    r"refactor|apply|patch|trace|debug|verify|go[ \t]+through|dig[ \t]+into"
)
_EN_ACTIONS = r"(?:" + _EN_VERBS + r")\b"

# What tool narration talks about: a `target`, or a clause that trails off with "..." or "now"
# ("Opening the deploy logs…", "Checking the config now."). A dot inside a token (app.py) is
# part of the clause; a sentence end is not. Bounded, so it cannot backtrack badly.
_CLAUSE_CHAR = r"(?:[^\n.!?…]|\.(?=[^\s.]))"
_NARRATED_OBJECT = _CLAUSE_CHAR + r"{0,200}?(?:\.\.\.|…|[ \t](?:now|agora)\b|`[ \t]*(?:$|\n))"


@dataclass(frozen=True)
class Pattern:
    id: str
    lang: str  # "en" | "pt"
    category: str
    description: str
    regex: str
    anchored: bool = True  # prefix with the sentence-start anchor
    positives: tuple[str, ...] = ()
    negatives: tuple[str, ...] = ()

    @property
    def compiled(self) -> re.Pattern[str]:
        return _COMPILED[self.id]


@dataclass(frozen=True)
class Hit:
    pattern: Pattern
    start: int  # offsets into the text given to find_agent_talk
    end: int
    match: str


CATEGORIES = {
    "start-continue": "\"I'll start/continue by…\" preambles",
    "let-me": "\"Let me read/check/analyze…\" preambles",
    "vou": "\"Vou implementar/analisar…\" preambles",
    "first-person-action": "first-person narration of the next action",
    "tool-narration": "narrating tool use (reading files, running commands)",
    "planning": "planning out loud",
    "thinking": "<thinking> tags and other exposed reasoning",
}

PATTERNS: tuple[Pattern, ...] = (
    # ---------------------------------------------------------------- English
    Pattern(
        "en.start_by", "en", "start-continue", "I'll start/begin by …",
        _FILLER + _I_WILL + r"(?:first[ \t]+|now[ \t]+)?(?:start|begin|kick[ \t]+off)[ \t]+(?:off[ \t]+)?(?:by|with)\b",
        positives=("I'll start by reading the config.", "Ok, I'll begin by checking the tests.", "I will first start by analyzing main.py"),
        negatives=("You'll start by reading the docs.", "I'll be honest: start with the docs."),
    ),
    Pattern(
        "en.continue_by", "en", "start-continue", "I'll continue/proceed by …",
        _FILLER + _I_WILL + r"(?:now[ \t]+)?(?:continue|proceed|move[ \t]+on)[ \t]+(?:by|with|to)\b",
        positives=("I'll continue by updating the loader.", "Now I'll proceed with the migration."),
        negatives=("We'll continue tomorrow.", "If it fails, continue by hand."),
    ),
    Pattern(
        "en.lets_start", "en", "start-continue", "Let's start/begin by …",
        _FILLER + r"let(?:'s|[ \t]+us)[ \t]+(?:start|begin)[ \t]+by\b",
        positives=("Let's start by reading the stack trace.", "First, let us begin by opening the file."),
        negatives=("Let's go with Postgres.", "Start by reading the docs."),
    ),
    Pattern(
        "en.let_me_read", "en", "let-me", "Let me read/open/view …",
        _FILLER + r"let[ \t]+me[ \t]+(?:first[ \t]+|quickly[ \t]+|now[ \t]+|just[ \t]+)?(?:read|open|view|load|pull[ \t]+up)\b",
        positives=("Let me read the file first.", "Now let me open `config.py`.", "Let me quickly read through the handler."),
        negatives=("Let me know if it works.", "Let me be honest: read the docs."),
    ),
    Pattern(
        "en.let_me_check", "en", "let-me", "Let me check/verify/run/search …",
        _FILLER + r"let[ \t]+me[ \t]+(?:first[ \t]+|quickly[ \t]+|now[ \t]+|just[ \t]+)?(?:check|verify|confirm|test|run|search|grep|find|look|take[ \t]+a[ \t]+look|see[ \t]+what)\b",
        positives=("Let me check the logs.", "Sure! Let me look at the config.", "Let me run the tests.", "let me take a look"),
        negatives=("Let me know if the check passes.", "Let me be blunt: check the logs yourself."),
    ),
    Pattern(
        "en.let_me_analyze", "en", "let-me", "Let me analyze/examine/review …",
        _FILLER + r"let[ \t]+me[ \t]+(?:first[ \t]+|quickly[ \t]+|now[ \t]+|carefully[ \t]+)?(?:analy[sz]e|examine|review|inspect|investigate|explore|understand|study|dig|trace|debug|go[ \t]+(?:through|over)|think)\b",
        positives=("Let me analyze the query plan.", "Let me examine the stack trace.", "Let me think about this."),
        negatives=("Let me put it simply: analyze the query plan.", "Let me know what you find."),
    ),
    Pattern(
        "en.let_me_start", "en", "let-me", "Let me start/begin/first …",
        _FILLER + r"let[ \t]+me[ \t]+(?:start|begin|first[ \t]+\w+)\b",
        positives=("Let me start with the failing test.", "Let me first reproduce it."),
        negatives=("Let me be clear: start small.", "Let me know first."),
    ),
    Pattern(
        "en.ill_action", "en", "first-person-action", "I'll read/check/run/implement … (narrating the next action)",
        _FILLER + _I_WILL + r"(?:now[ \t]+|first[ \t]+|quickly[ \t]+|go[ \t]+ahead[ \t]+and[ \t]+|need[ \t]+to[ \t]+)?" + _EN_ACTIONS,
        positives=("I'll read the handler and then patch it.", "I'll go ahead and run the tests.", "Then I'll update `settings.py`."),
        negatives=("I'll be blunt: rewrite it.", "You'll check it tomorrow.", "I'll bet it's the cache."),
    ),
    Pattern(
        "en.going_to", "en", "first-person-action", "I'm going to / Now I'm going to …",
        _FILLER + r"i(?:'m|[ \t]+am)[ \t]+(?:now[ \t]+)?going[ \t]+to[ \t]+(?:start|begin|first|now|" + _EN_VERBS + r")\b",
        positives=("I'm going to read the migration files.", "Now I'm going to open the Dockerfile."),
        negatives=("I'm going to be honest with you.", "It's going to check itself."),
    ),
    Pattern(
        "en.need_to_first", "en", "planning", "First, I need to … / I need to check …",
        _FILLER + r"(?:(?:first(?:ly)?|to[ \t]+(?:do|fix|solve)[ \t]+(?:this|that|it))[ \t]*,?[ \t]+i[ \t]+(?:need|have|want|should|must)[ \t]+to|"
        r"i[ \t]+(?:need|have)[ \t]+to[ \t]+(?:first[ \t]+)?(?:check|read|look|understand|see|find|analy[sz]e|examine|review|inspect|open))\b",
        positives=("First, I need to understand the schema.", "I need to check how the router is mounted.", "To fix this, I need to find the leak."),
        negatives=("You need to check the schema first.", "First, you need Python 3.11."),
    ),
    Pattern(
        "en.plan", "en", "planning", "my plan / break this into steps",
        _FILLER + r"(?:my[ \t]+plan\b|here'?s[ \t]+my[ \t]+plan|(?:i'm|i[ \t]+am|i'll|i[ \t]+will)[ \t]+(?:going[ \t]+to[ \t]+)?break[ \t]+this[ \t]+(?:down|into)|the[ \t]+plan[ \t]+is[ \t]+to[ \t]+first)\b",
        positives=("My plan: reproduce, bisect, fix.", "I'm going to break this into steps.", "Here's my plan."),
        negatives=("Plan your week on Monday.", "Break it into smaller functions."),
    ),
    Pattern(
        "en.step_plan", "en", "planning", "Step 1: look/read/check … (an investigation plan, not instructions)",
        r"step[ \t]+1[ \t]*[:.)-][ \t]*(?:i(?:'ll|[ \t]+will)[ \t]+)?(?:look|read|check|analy[sz]e|understand|figure|review|inspect|examine|search|open|find|investigate|reproduce)\b",
        positives=("Step 1: look at the diff to understand what changed.", "Step 1: I'll reproduce the bug."),
        negatives=("Step 1: install Python 3.11.", "Step 1: run `pip install -e .`"),
    ),
    Pattern(
        "en.sequence", "en", "planning", "Then/Next/After that, I'll … (a sequence of own actions)",
        r"(?:after[ \t]+that|next|then|once[ \t]+(?:that'?s|that[ \t]+is|i[ \t]+have[ \t]+that)[ \t]+(?:done|in[ \t]+place))[ \t]*,?[ \t]+i(?:'ll|[ \t]+will)[ \t]+(?!be\b|bet\b)\w+",
        anchored=False,
        positives=("Then I'll compare the two configs.", "After that, I will summarize it.", "Once that's done, I'll push."),
        negatives=("Then you'll see the error.", "Next, run the tests.", "Then I'll be honest: it's fine."),
    ),
    Pattern(
        "en.tool_narration", "en", "tool-narration", "Reading `file`… / Running the tests… (tool narration)",
        r"(?:reading|opening|running|executing|searching|scanning|grepping|loading|fetching|viewing|inspecting|examining|analy[sz]ing|checking|calling|querying|looking[ \t]+(?:at|into|through))[ \t]+"
        + _NARRATED_OBJECT,
        positives=("Reading `src/app.py`...", "Running `pytest -q`...", "Searching the codebase for `get_user`...", "Opening the config file now.", "Opening the deploy logs and the diff…"),
        negatives=("Reading docs beats guessing.", "Running tests in CI catches this.", "Checking for null is cheap.", "Running `make` twice is fine."),
    ),
    Pattern(
        "en.thinking_tags", "en", "thinking", "<thinking>/<think>/<reasoning> tags",
        r"<[ \t]*/?[ \t]*(?:thinking|think|reasoning|scratchpad|inner_monologue)[ \t]*>",
        anchored=False,
        positives=("<thinking>The user wants a fix.</thinking> Use a set.", "Sure. <think>hmm</think>"),
        negatives=("Use `<div>` for that.", "I think so."),
    ),
    # ---------------------------------------------------------------- Portuguese (pt-BR)
    Pattern(
        "pt.vou_implementar", "pt", "vou", "Vou implementar/criar/corrigir …",
        _FILLER + r"(?:eu[ \t]+)?vou[ \t]+(?:agora[ \t]+|primeiro[ \t]+|ja[ \t]+)?(?:implementar|criar|escrever|adicionar|atualizar|modificar|alterar|corrigir|refatorar|configurar|ajustar|gerar|editar|aplicar)\b",
        positives=("Vou implementar o endpoint agora.", "Beleza, vou criar o arquivo de testes.", "VOU CORRIGIR isso."),
        negatives=("Você vai implementar isso em duas linhas.", "Vou ser sincero: refatora tudo."),
    ),
    Pattern(
        "pt.vou_analisar", "pt", "vou", "Vou analisar/entender/investigar …",
        _FILLER + r"(?:eu[ \t]+)?vou[ \t]+(?:agora[ \t]+|primeiro[ \t]+)?(?:analisar|examinar|investigar|entender|estudar|avaliar|mapear|diagnosticar)\b",
        positives=("Vou analisar o fluxo de autenticação.", "Primeiro, vou investigar o log.", "Vou análisar isso."),
        negatives=("Vou ser direto: analisa o log.", "A gente vai analisar amanhã."),
    ),
    Pattern(
        "pt.vou_verificar", "pt", "vou", "Vou verificar/ler/olhar/abrir …",
        _FILLER + r"(?:eu[ \t]+)?vou[ \t]+(?:agora[ \t]+|primeiro[ \t]+|rapidinho[ \t]+)?(?:verificar|checar|conferir|olhar|ler|abrir|procurar|buscar|inspecionar|revisar|dar[ \t]+uma[ \t]+olhada)\b",
        positives=("Vou verificar o `settings.py`.", "Vou dar uma olhada no Dockerfile.", "Agora vou ler os logs."),
        negatives=("Vou te falar: olha o log.", "Você vai conferir depois."),
    ),
    Pattern(
        "pt.vou_rodar", "pt", "vou", "Vou rodar/executar/testar …",
        _FILLER + r"(?:eu[ \t]+)?vou[ \t]+(?:agora[ \t]+|primeiro[ \t]+)?(?:rodar|executar|testar|compilar|reproduzir)\b",
        positives=("Vou rodar os testes.", "Agora vou executar a migração."),
        negatives=("Roda os testes que vai dar bom.", "Vou ser honesto: testa tudo."),
    ),
    Pattern(
        "pt.vou_comecar", "pt", "vou", "Vou começar/continuar por …",
        _FILLER + r"(?:eu[ \t]+)?vou[ \t]+(?:agora[ \t]+)?(?:comecar|iniciar|continuar|prosseguir|seguir)[ \t]+(?:por|pelo|pela|com|a|o|[a-z]+(?:ando|endo|indo))\b",
        positives=("Vou começar pelo arquivo de rotas.", "Vou comecar por entender o erro.", "Vou continuar com a refatoração.", "Vou começar mapeando as dependências."),
        negatives=("Começa pelo arquivo de rotas.", "Vou ser sincero: começa pelo teste."),
    ),
    Pattern(
        "pt.deixa_eu", "pt", "let-me", "Deixa eu verificar/ver/ler … (let me …)",
        _FILLER + r"(?:deixa|deixe|me[ \t]+deixa|permita-me)[ \t]+(?:eu|me)?[ \t]*(?:primeiro[ \t]+)?(?:verificar|ver|checar|conferir|olhar|ler|abrir|analisar|dar[ \t]+uma[ \t]+olhada|rodar|executar|testar|procurar|buscar|investigar|entender|pensar|levantar|consultar|pesquisar|calcular)\b",
        positives=("Deixa eu verificar o arquivo.", "Deixa eu dar uma olhada nos logs.", "Me deixa ver o erro."),
        negatives=("Deixa eu te dar uma dica: usa `ss -tulpn`.", "Deixa o cache de lado."),
    ),
    Pattern(
        "pt.preciso_primeiro", "pt", "planning", "Primeiro, preciso … / Preciso verificar …",
        _FILLER + r"(?:(?:antes[ \t]+de[ \t]+tudo|antes|primeiro)[ \t]*,?[ \t]+(?:eu[ \t]+)?(?:preciso|tenho[ \t]+que|devo)|"
        r"(?:eu[ \t]+)?preciso[ \t]+(?:primeiro[ \t]+)?(?:verificar|entender|analisar|checar|ler|olhar|ver|abrir|investigar))\b",
        positives=("Primeiro, preciso entender o schema.", "Preciso verificar como o router está montado."),
        negatives=("Você precisa verificar o schema.", "Primeiro: instala o Python 3.11."),
    ),
    Pattern(
        "pt.agora_vou", "pt", "first-person-action", "Agora vou … (narrating the next action)",
        _FILLER + r"agora[ \t]*,?[ \t]+(?:eu[ \t]+)?vou[ \t]+(?!ser\b|te\b|falar\b|dizer\b)[a-z]+",
        positives=("Agora vou rodar os testes.", "Agora, vou atualizar o README."),
        negatives=("Agora vou ser sincero: tá ótimo.", "Agora você roda os testes."),
    ),
    Pattern(
        "pt.plano", "pt", "planning", "meu plano / vou dividir em etapas",
        _FILLER + r"(?:meu[ \t]+plano\b|o[ \t]+plano[ \t]+e[ \t]+(?:primeiro|o[ \t]+seguinte)|vou[ \t]+dividir[ \t]+(?:isso|em|o[ \t]+problema))",
        positives=("Meu plano: reproduzir, isolar, corrigir.", "Vou dividir isso em etapas."),
        negatives=("Planeja a semana na segunda.", "Divide em funções menores."),
    ),
    Pattern(
        "pt.sequencia", "pt", "planning", "Vou … primeiro / Em seguida vou … (a sequence of own actions)",
        r"(?:(?:eu[ \t]+)?vou[ \t]+(?!ser\b|te\b)[a-z]+(?:ar|er|ir)\b[^\n.!?]{0,60}?[ \t]primeiro\b|"
        r"(?:em[ \t]+seguida|depois[ \t]+disso|logo[ \t]+depois|na[ \t]+sequencia)[ \t]*,?[ \t]+(?:eu[ \t]+)?vou\b)",
        positives=("Vou consultar a previsão primeiro.", "Em seguida vou comparar as duas.", "Depois disso, vou rodar os testes."),
        negatives=("Primeiro você instala, em seguida roda.", "Vou ser sincero primeiro: tá ótimo."),
    ),
    Pattern(
        "pt.narracao", "pt", "tool-narration", "Lendo o arquivo… / Executando `…` (tool narration)",
        r"(?:lendo|abrindo|executando|rodando|analisando|verificando|procurando|buscando|checando|carregando|inspecionando|olhando|chamando|consultando)[ \t]+"
        + _NARRATED_OBJECT,
        positives=("Lendo o arquivo `settings.py`...", "Executando `pytest -q`...", "Analisando o código agora."),
        negatives=("Lendo a documentação você aprende.", "Rodando na nuvem fica caro.", "Rodando testes no CI você evita isso."),
    ),
)

_COMPILED: dict[str, re.Pattern[str]] = {
    p.id: re.compile((_START + p.regex) if p.anchored else p.regex) for p in PATTERNS
}
# Literal substrings (of the normalized text) at least one of which every match of the pattern
# contains. A cheap `in` test skips the regex for most patterns on most replies (≈4× faster
# curation); the pattern's examples and the property tests keep these honest.
_WILL, _LET, _VOU = ("i'll", "will"), ("let",), ("vou",)
NEEDLES: dict[str, tuple[str, ...]] = {
    "en.start_by": _WILL, "en.continue_by": _WILL, "en.ill_action": _WILL, "en.sequence": _WILL,
    "en.lets_start": _LET, "en.let_me_read": _LET, "en.let_me_check": _LET, "en.let_me_analyze": _LET,
    "en.let_me_start": _LET, "en.going_to": ("going",), "en.need_to_first": ("need", "have", "want", "should", "must"),
    "en.plan": ("plan", "break"), "en.step_plan": ("step",), "en.tool_narration": ("ing",), "en.thinking_tags": ("<",),
    "pt.vou_implementar": _VOU, "pt.vou_analisar": _VOU, "pt.vou_verificar": _VOU, "pt.vou_rodar": _VOU,
    "pt.vou_comecar": _VOU, "pt.agora_vou": _VOU, "pt.sequencia": _VOU, "pt.deixa_eu": ("deix", "permita"),
    "pt.preciso_primeiro": ("precis", "tenho", "devo"), "pt.plano": ("plano", "dividir"), "pt.narracao": ("ndo",),
}
BY_ID = {p.id: p for p in PATTERNS}
assert set(NEEDLES) == set(BY_ID), "every pattern needs its needles"
assert len(BY_ID) == len(PATTERNS), "pattern ids must be unique"

def find_agent_talk(text: str, patterns: tuple[Pattern, ...] = PATTERNS) -> list[Hit]:
    """Every pattern that matches `text`, first match each, ordered by position then list order."""
    norm = normalize(text)
    hits = []
    for p in patterns:
        if not any(n in norm for n in NEEDLES[p.id]):
            continue
        m = p.compiled.search(norm)
        if m:
            start, end = SpanMap(text, norm)(m.start(), m.end())
            hits.append(Hit(p, start, end, text[start:end].strip()))
    return sorted(hits, key=lambda h: h.start)


def is_agent_like(text: str) -> bool:
    norm = normalize(text)
    return any(any(n in norm for n in NEEDLES[p.id]) and p.compiled.search(norm) for p in PATTERNS)
