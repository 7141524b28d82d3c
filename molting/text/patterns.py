"""The agent-talk patterns: one source of truth for curation and for the agent-phrase metric.

Each pattern has an id, a language, a category, a description and positive/negative examples
that the tests run. Matching happens on `normalize(text)`: NFKD with accents stripped, invisible
format characters removed, case-folded, typographic apostrophes made ASCII. Preambles are
anchored where agent talk occurs — the reply start or a sentence or clause start, after an
optional bullet and interjection — so a direct reply that merely contains "let me"/"vou"
survives. The generic patterns are built from `grammar` (who announces + any action verb,
minus a closed list of direct uses), so verbs nobody listed are caught too:

    >>> [h.pattern.id for h in find_agent_talk("Let me know if it breaks.")]
    []
    >>> [h.pattern.id for h in find_agent_talk("Sure! Let me check the logs first.")]
    ['en.let_me_check', 'en.let_me_action']
    >>> [h.pattern.id for h in find_agent_talk("Sure — let me sketch a plan.")]
    ['en.let_me_action']
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from molting.text import grammar as G
from molting.text.grammar import FILLER, S0, S
from molting.text.matcher import Matcher, compile_pattern
from molting.text.normalize import SpanMap, normalize

PATTERNS_VERSION = "2026.12.2"  # bump when a pattern changes: metrics and baselines key on it

_I_WILL = rf"i(?:'ll|{S}will){S}"
_EN_VERBS = (
    rf"read|open|check|analy[sz]e|examine|inspect|review|search|grep|look{S}(?:at|into|through)|"
    rf"run|execute|explore|investigate|scan|implement|create|update|modify|edit|write{S}(?:a|the|some){S}(?:test|script|file|function|code)|"
    rf"refactor|apply|patch|trace|debug|verify|go{S}through|dig{S}into"
)
_EN_ACTIONS = r"(?:" + _EN_VERBS + r")\b"
_LET_ME = rf"let{S}me{S}"


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
        return _compiled(self.id)


@dataclass(frozen=True)
class Hit:
    pattern: Pattern
    start: int  # offsets into the text given to find_agent_talk
    end: int
    match: str


CATEGORIES = {
    "start-continue": '"I\'ll start/continue by…" preambles',
    "let-me": '"Let me read/check/analyze…" preambles',
    "vou": '"Vou implementar/analisar…" preambles',
    "first-person-action": "first-person narration of the next action",
    "tool-narration": "narrating tool use (reading files, running commands)",
    "planning": "planning out loud",
    "thinking": "<thinking> tags and other exposed reasoning",
}

PATTERNS: tuple[Pattern, ...] = (
    # ---------------------------------------------------------------- English
    Pattern(
        "en.start_by",
        "en",
        "start-continue",
        "I'll start/begin by …",
        FILLER
        + _I_WILL
        + rf"(?:first{S}|now{S})?(?:start|begin|kick{S}off){S}(?:off{S})?(?:by|with)\b",
        positives=(
            "I'll start by reading the config.",
            "Ok, I'll begin by checking the tests.",
            "I will first start by analyzing main.py",
        ),
        negatives=("You'll start by reading the docs.", "I'll be honest: start with the docs."),
    ),
    Pattern(
        "en.continue_by",
        "en",
        "start-continue",
        "I'll continue/proceed by …",
        FILLER + _I_WILL + rf"(?:now{S})?(?:continue|proceed|move{S}on){S}(?:by|with|to)\b",
        positives=("I'll continue by updating the loader.", "Now I'll proceed with the migration."),
        negatives=("We'll continue tomorrow.", "If it fails, continue by hand."),
    ),
    Pattern(
        "en.lets_start",
        "en",
        "start-continue",
        "Let's start/begin by …",
        FILLER + rf"let(?:'s|{S}us){S}(?:start|begin){S}by\b",
        positives=(
            "Let's start by reading the stack trace.",
            "First, let us begin by opening the file.",
        ),
        negatives=("Let's go with Postgres.", "Start by reading the docs."),
    ),
    Pattern(
        "en.let_me_read",
        "en",
        "let-me",
        "Let me read/open/view …",
        FILLER
        + _LET_ME
        + rf"(?:first{S}|quickly{S}|now{S}|just{S})?(?:read|open|view|load|pull{S}up)\b",
        positives=(
            "Let me read the file first.",
            "Now let me open `config.py`.",
            "Let me quickly read through the handler.",
        ),
        negatives=("Let me know if it works.", "Let me be honest: read the docs."),
    ),
    Pattern(
        "en.let_me_check",
        "en",
        "let-me",
        "Let me check/verify/run/search …",
        FILLER
        + _LET_ME
        + rf"(?:first{S}|quickly{S}|now{S}|just{S})?(?:check|verify|confirm|test|run|search|grep|"
        rf"find|look|take{S}a{S}look|see{S}what)\b",
        positives=(
            "Let me check the logs.",
            "Sure! Let me look at the config.",
            "Let me run the tests.",
            "let me take a look",
        ),
        negatives=("Let me know if the check passes.", "Let me be blunt: check the logs yourself."),
    ),
    Pattern(
        "en.let_me_analyze",
        "en",
        "let-me",
        "Let me analyze/examine/review …",
        FILLER
        + _LET_ME
        + rf"(?:first{S}|quickly{S}|now{S}|carefully{S})?(?:analy[sz]e|examine|review|inspect|"
        rf"investigate|explore|understand|study|dig|trace|debug|go{S}(?:through|over)|think)\b",
        positives=(
            "Let me analyze the query plan.",
            "Let me examine the stack trace.",
            "Let me think about this.",
        ),
        negatives=("Let me put it simply: analyze the query plan.", "Let me know what you find."),
    ),
    Pattern(
        "en.let_me_start",
        "en",
        "let-me",
        "Let me start/begin/first …",
        FILLER + rf"let{S}me{S}(?:start|begin|first{S}\w{{1,40}})\b",
        positives=("Let me start with the failing test.", "Let me first reproduce it."),
        negatives=("Let me be clear: start small.", "Let me know first."),
    ),
    Pattern(
        "en.ill_action",
        "en",
        "first-person-action",
        "I'll read/check/run/implement … (narrating the next action)",
        FILLER
        + _I_WILL
        + rf"(?:now{S}|first{S}|quickly{S}|go{S}ahead{S}and{S}|need{S}to{S})?"
        + _EN_ACTIONS,
        positives=(
            "I'll read the handler and then patch it.",
            "I'll go ahead and run the tests.",
            "Then I'll update `settings.py`.",
        ),
        negatives=(
            "I'll be blunt: rewrite it.",
            "You'll check it tomorrow.",
            "I'll bet it's the cache.",
        ),
    ),
    Pattern(
        "en.going_to",
        "en",
        "first-person-action",
        "I'm going to / Now I'm going to …",
        FILLER
        + rf"i(?:'m|{S}am){S}(?:now{S})?going{S}to{S}(?:start|begin|first|now|"
        + _EN_VERBS
        + r")\b",
        positives=(
            "I'm going to read the migration files.",
            "Now I'm going to open the Dockerfile.",
        ),
        negatives=("I'm going to be honest with you.", "It's going to check itself."),
    ),
    Pattern(
        "en.need_to_first",
        "en",
        "planning",
        "First, I need to … / I need to check …",
        G.filler(without=("first",))
        + rf"(?:(?:first(?:ly)?|to{S}(?:do|fix|solve){S}(?:this|that|it)){S0},?{S}i{S}(?:need|have|"
        rf"want|should|must){S}to|i{S}(?:need|have){S}to{S}(?:first{S})?(?:check|read|look|"
        r"understand|see|find|analy[sz]e|examine|review|inspect|open))\b",
        positives=(
            "First, I need to understand the schema.",
            "I need to check how the router is mounted.",
            "To fix this, I need to find the leak.",
        ),
        negatives=("You need to check the schema first.", "First, you need Python 3.11."),
    ),
    Pattern(
        "en.plan",
        "en",
        "planning",
        "my plan / break this into steps",
        FILLER + rf"(?:my{S}plan\b|here'?s{S}my{S}plan|(?:i'm|i{S}am|i'll|"
        rf"i{S}will){S}(?:going{S}to{S})?break{S}this{S}(?:down|into)|"
        rf"the{S}plan{S}is{S}to{S}first|what{S}i(?:'ll|{S}will|'m{S}going{S}to|"
        rf"{S}am{S}going{S}to){S}do{S}is|my{S}(?:approach|strategy|game{S}plan|first{S}step|"
        rf"next{S}step)(?={S0}:|{S}(?:is|will|would|here))|"
        rf"(?:step{S}one|first{S}step){S}for{S}me)\b",
        positives=(
            "My plan: reproduce, bisect, fix.",
            "I'm going to break this into steps.",
            "Here's my plan.",
            "So what I'll do is diff both configs.",
            "My approach will be: profile, then cache.",
            "Step one for me is reading the contract.",
        ),
        negatives=(
            "Plan your week on Monday.",
            "Break it into smaller functions.",
            "What I'd do is rent first.",
            "My approach to salary talks: ask first.",
            "Step one for you is a backup.",
        ),
    ),
    Pattern(
        "en.step_plan",
        "en",
        "planning",
        "Step 1: look/read/check … (an investigation plan, not instructions)",
        rf"step{S}1{S0}[:.)-]{S0}(?:i(?:'ll|{S}will){S})?(?:look|read|check|analy[sz]e|understand|figure|review|inspect|examine|search|open|find|investigate|reproduce)\b",
        positives=(
            "Step 1: look at the diff to understand what changed.",
            "Step 1: I'll reproduce the bug.",
        ),
        negatives=("Step 1: install Python 3.11.", "Step 1: run `pip install -e .`"),
    ),
    Pattern(
        "en.sequence",
        "en",
        "planning",
        "Then/Next/After that, I'll … (a sequence of own actions)",
        rf"(?:after{S}that|next|then|once{S}(?:that'?s|that{S}is|i{S}have{S}that){S}(?:done|in{S}place)){S0},?{S}i(?:'ll|{S}will){S}(?!be\b|bet\b)\w{{1,40}}",
        anchored=False,
        positives=(
            "Then I'll compare the two configs.",
            "After that, I will summarize it.",
            "Once that's done, I'll push.",
        ),
        negatives=(
            "Then you'll see the error.",
            "Next, run the tests.",
            "Then I'll be honest: it's fine.",
        ),
    ),
    Pattern(
        "en.tool_narration",
        "en",
        "tool-narration",
        "Reading `file`… / Opening `x` to check … (a gerund narrating a tool)",
        rf"(?!{G.EN_NOT_GERUND})[a-z]{{2,30}}ing(?:{S}(?:at|into|through|for))?{S}"
        + G.NARRATED_OBJECT,
        positives=(
            "Reading `src/app.py`...",
            "Running `pytest -q`...",
            "Searching the codebase for `get_user`...",
            "Opening the config file now.",
            "Opening the deploy logs and the diff…",
            "Calling the weather API for the next 10 days…",
            "Opening `settings.py` to check the middleware order.",
        ),
        negatives=(
            "Reading docs beats guessing.",
            "Running tests in CI catches this.",
            "Checking for null is cheap.",
            "Running `make` twice is fine.",
            "Running the tests to catch regressions is worth it.",
            "Something like that…",
            "Depending on the load…",
        ),
    ),
    Pattern(
        "en.thinking_tags",
        "en",
        "thinking",
        "<thinking>/<think>/<reasoning> tags",
        rf"<{S0}/?{S0}(?:thinking|think|reasoning|scratchpad|inner_monologue){S0}>",
        anchored=False,
        positives=(
            "<thinking>The user wants a fix.</thinking> Use a set.",
            "Sure. <think>hmm</think>",
        ),
        negatives=("Use `<div>` for that.", "I think so."),
    ),
    Pattern(
        "en.let_me_action",
        "en",
        "let-me",
        "Let me / Lemme / Allow me to + any action verb (not: know, be, tell you, guess …)",
        FILLER + G.EN_LET_ME + S + G.EN_ADVERBS + rf"(?!{G.EN_DIRECT})" + G.EN_VERB,
        positives=(
            "Let me map out the trade-offs for you, then I'll pick one.",
            "Sure — let me sketch a plan first.",
            "Let me sum up the options.",
            "Hold on, let me reread your question.",
            "lemme check the docs real quick",
            "Allow me to outline the main arguments.",
            "Interesting problem. I need the schema, so let me pull it up.",
            "Let me just rank these five laptops.",
        ),
        negatives=(
            "Let me know if it breaks.",
            "Let me be honest: it's fine.",
            "Let me guess: DNS.",
            "Let me put it this way: use joins.",
            "Let me just say, great question.",
            "Let me give you a tip: freeze the butter.",
            "Don't let me stop you, but test it.",
            'The bot says "let me check" and hangs.',
            "Let me add one thing: the ferry stops in winter.",
            "Let me congratulate you on the new job!",
            "Let me reassure you: that rash is common.",
        ),
    ),
    Pattern(
        "en.intent_action",
        "en",
        "first-person-action",
        "I'll / I will / I'm going to / gonna / I'd like to / I want to + any action verb",
        FILLER + rf"(?:{G.EN_I_WILL}{S}{G.EN_ADVERBS}(?!{G.EN_DIRECT}){G.EN_VERB}|"
        rf"(?:gonna|going{S}to){S}(?!{G.EN_DIRECT}|{G.EN_NOT_A_VERB}){G.EN_VERB}{S}{G.EN_OBJECT})",
        positives=(
            "I'll sum up the options and give you my pick.",
            "Ok — I'll lay out the three options.",
            "Got it — I'll map out the dependencies first.",
            "Right, I'll tally up the hours.",
            "I'm going to consolidate these notes.",
            "gonna profile the endpoint w/ py-spy",
            "Before answering, I want to double-check the definition.",
            "I'd like to first go over the lease clause.",
            "Good question. I'll have to pull up the changelog.",
            "Going to reproduce the bug locally first.",
        ),
        negatives=(
            "I'll be blunt — cut the chapter.",
            "I'll keep it short: go with a Roth IRA.",
            "I'll tell you what I'd do: rent.",
            "I'll give you the short version: it's a race.",
            "I'll take the other side: a monolith is fine.",
            "I'll admit I'm not a fan.",
            "I'm going to be honest with you.",
            "gonna be real with you, the first logo wins.",
            "We'll need a bigger box.",
            "I'll say this much: that clause is broad.",
            "I'll leave you with one rule: never use floats.",
            "Going to Rome in August? Skip it.",
            "I'll leave the final call to you, but I'd pick the blue one.",
            "I'll keep my fingers crossed for the interview!",
        ),
    ),
    Pattern(
        "en.in_progress",
        "en",
        "first-person-action",
        "I'm (now) reviewing / looking into … (narrating work in progress)",
        FILLER + rf"i(?:'m|m|{S}am){S}(?:now{S}|currently{S}|just{S}|still{S}|"
        rf"already{S})?(?!{G.EN_STANCE_ING})[a-z]{{2,30}}ing"
        rf"(?:{S}(?:into|through|at|over|on|for|in|up))?{S}(?:the|your|this|that|these|those|it|why|what|how|whether|"
        rf"line|lines|each|both|`)\b",
        positives=(
            "I'm now reviewing the PR diff for auth changes.",
            "I'm looking into why the cron job didn't fire.",
            "Give me a sec — I'm going through your spreadsheet.",
            "I'm thinking through the edge cases: empty input and duplicates.",
            "I'm now looking at line 12, where the index resets.",
        ),
        negatives=(
            "I'm guessing you're on Windows.",
            "I'm going to be honest.",
            "I'm building a bot that surfs for me.",
            "I'm thinking the reducer is wrong.",
        ),
    ),
    Pattern(
        "en.stalling",
        "en",
        "first-person-action",
        "Give me a sec / Allow me a moment / Bear with me (stalling while working)",
        rf"(?:(?:give|allow|grant){S}me{S}(?:a|one){S}(?:sec|second|moment|minute|min)\b|bear{S}with{S}me\b|"
        rf"(?:one|just{S}a){S}(?:sec|second|moment|minute)(?={S0}(?:[,.!…—–-]|$))|(?:hold|hang){S}on(?={S0}(?:[,.!…—–-]|$)))",
        positives=(
            "Allow me a moment to review the case law.",
            "Give me a sec — I'm on it.",
            "One moment, please.",
        ),
        negatives=(
            "Hold on to your receipts for a year.",
            "One moment of inattention is enough to crash.",
        ),
    ),
    Pattern(
        "en.thinking_aloud",
        "en",
        "thinking",
        "thinking out loud / thinking aloud",
        rf"thinking{S}(?:out{S}loud|aloud)\b",
        anchored=False,
        positives=("So, thinking out loud here: the lease ends in May.",),
        negatives=("I think so: the lease ends in May.",),
    ),
    # ---------------------------------------------------------------- Portuguese (pt-BR)
    Pattern(
        "pt.vou_implementar",
        "pt",
        "vou",
        "Vou implementar/criar/corrigir …",
        FILLER + rf"(?:eu{S})?vou{S}(?:agora{S}|primeiro{S}|ja{S})?(?:implementar|criar|escrever|"
        r"adicionar|atualizar|modificar|alterar|corrigir|refatorar|configurar|ajustar|gerar|"
        r"editar|aplicar)\b",
        positives=(
            "Vou implementar o endpoint agora.",
            "Beleza, vou criar o arquivo de testes.",
            "VOU CORRIGIR isso.",
        ),
        negatives=("Você vai implementar isso em duas linhas.", "Vou ser sincero: refatora tudo."),
    ),
    Pattern(
        "pt.vou_analisar",
        "pt",
        "vou",
        "Vou analisar/entender/investigar …",
        FILLER
        + rf"(?:eu{S})?vou{S}(?:agora{S}|primeiro{S})?(?:analisar|examinar|investigar|entender|"
        r"estudar|avaliar|mapear|diagnosticar)\b",
        positives=(
            "Vou analisar o fluxo de autenticação.",
            "Primeiro, vou investigar o log.",
            "Vou análisar isso.",
        ),
        negatives=("Vou ser direto: analisa o log.", "A gente vai analisar amanhã."),
    ),
    Pattern(
        "pt.vou_verificar",
        "pt",
        "vou",
        "Vou verificar/ler/olhar/abrir …",
        FILLER
        + rf"(?:eu{S})?vou{S}(?:agora{S}|primeiro{S}|rapidinho{S})?(?:verificar|checar|conferir|"
        rf"olhar|ler|abrir|procurar|buscar|inspecionar|revisar|dar{S}uma{S}olhada)\b",
        positives=(
            "Vou verificar o `settings.py`.",
            "Vou dar uma olhada no Dockerfile.",
            "Agora vou ler os logs.",
        ),
        negatives=("Vou te falar: olha o log.", "Você vai conferir depois."),
    ),
    Pattern(
        "pt.vou_rodar",
        "pt",
        "vou",
        "Vou rodar/executar/testar …",
        FILLER + rf"(?:eu{S})?vou{S}(?:agora{S}|primeiro{S})?(?:rodar|executar|testar|compilar|"
        r"reproduzir)\b",
        positives=("Vou rodar os testes.", "Agora vou executar a migração."),
        negatives=("Roda os testes que vai dar bom.", "Vou ser honesto: testa tudo."),
    ),
    Pattern(
        "pt.vou_comecar",
        "pt",
        "vou",
        "Vou começar/continuar por …",
        FILLER
        + rf"(?:eu{S})?vou{S}(?:agora{S})?(?:comecar|iniciar|continuar|prosseguir|seguir){S}(?:por|"
        r"pelo|pela|com|a|o|[a-z]{1,30}(?:ando|endo|indo))\b",
        positives=(
            "Vou começar pelo arquivo de rotas.",
            "Vou comecar por entender o erro.",
            "Vou continuar com a refatoração.",
            "Vou começar mapeando as dependências.",
        ),
        negatives=("Começa pelo arquivo de rotas.", "Vou ser sincero: começa pelo teste."),
    ),
    Pattern(
        "pt.deixa_eu",
        "pt",
        "let-me",
        "Deixa eu verificar/ver/ler … (let me …)",
        FILLER
        + rf"(?:deixa|deixe|me{S}deixa|permita-me){S}(?:eu|me)?{S0}(?:primeiro{S})?(?:verificar|"
        rf"ver|checar|conferir|olhar|ler|abrir|analisar|dar{S}uma{S}olhada|rodar|executar|testar|"
        r"procurar|buscar|investigar|entender|pensar|levantar|consultar|pesquisar|calcular)\b",
        positives=(
            "Deixa eu verificar o arquivo.",
            "Deixa eu dar uma olhada nos logs.",
            "Me deixa ver o erro.",
        ),
        negatives=("Deixa eu te dar uma dica: usa `ss -tulpn`.", "Deixa o cache de lado."),
    ),
    Pattern(
        "pt.preciso_primeiro",
        "pt",
        "planning",
        "Primeiro, preciso … / Preciso verificar …",
        G.filler(without=("primeiro",))
        + rf"(?:(?:antes{S}de{S}tudo|antes|primeiro){S0},?{S}(?:eu{S})?(?:preciso|tenho{S}que|"
        rf"devo)|(?:eu{S})?preciso{S}(?:primeiro{S})?(?:verificar|entender|analisar|checar|ler|"
        r"olhar|ver|abrir|investigar))\b",
        positives=(
            "Primeiro, preciso entender o schema.",
            "Preciso verificar como o router está montado.",
        ),
        negatives=("Você precisa verificar o schema.", "Primeiro: instala o Python 3.11."),
    ),
    Pattern(
        "pt.agora_vou",
        "pt",
        "first-person-action",
        "Agora vou … (narrating the next action)",
        G.filler(without=("agora",))
        + rf"agora{S0},?{S}(?:eu{S})?vou{S}(?!ser\b|te\b|falar\b|dizer\b)[a-z]{{1,30}}",
        positives=("Agora vou rodar os testes.", "Agora, vou atualizar o README."),
        negatives=("Agora vou ser sincero: tá ótimo.", "Agora você roda os testes."),
    ),
    Pattern(
        "pt.plano",
        "pt",
        "planning",
        "meu plano / vou dividir em etapas",
        G.filler(without=("primeiro",))
        + rf"(?:meu{S}plano\b|o{S}plano{S}e{S}(?:primeiro|o{S}seguinte)|vou{S}dividir{S}(?:isso|em|"
        rf"o{S}problema)|o{S}que{S}(?:eu{S})?(?:vou|vo){S}fazer{S}e\b|"
        rf"(?:minha|meu){S}(?:abordagem|estrategia|primeiro{S}passo|proximo{S}passo)(?={S0}:|{S}(?:e|vai|sera)\b)|"
        rf"(?:primeiro|proximo){S}passo{S}(?:da{S}minha{S}parte|pra{S}mim|para{S}mim)\b)",
        positives=(
            "Meu plano: reproduzir, isolar, corrigir.",
            "Vou dividir isso em etapas.",
            "Então, o que eu vou fazer é comparar as duas.",
            "Minha abordagem vai ser: medir, depois otimizar.",
            "Primeiro passo da minha parte: entender os dados.",
        ),
        negatives=(
            "Planeja a semana na segunda.",
            "Divide em funções menores.",
            "O que eu faria é alugar primeiro.",
            "Minha abordagem pra negociar salário: pergunte primeiro.",
            "Primeiro passo pra você: backup.",
        ),
    ),
    Pattern(
        "pt.sequencia",
        "pt",
        "planning",
        "Vou … primeiro / Em seguida vou … / Primeiro eu comparo, depois … (a sequence of own "
        "actions)",
        rf"(?:(?:eu{S})?vou{S}(?!ser\b|te\b)[a-z]{{1,30}}(?:ar|er|ir)\b[^\n.!?]{{0,60}}?[ "
        rf"\t]primeiro\b|(?:em{S}seguida|depois{S}disso|logo{S}depois|"
        rf"na{S}sequencia){S0},?{S}(?:eu{S})?vou\b|(?:primeiro|depois|em{S}seguida|depois{S}disso|"
        rf"logo{S}depois|na{S}sequencia|"
        rf"por{S}fim){S0},?{S}eu{S}(?!{G.PT_STANCE_PRESENT})[a-z]{{2,30}}o\b)",
        positives=(
            "Vou consultar a previsão primeiro.",
            "Em seguida vou comparar as duas.",
            "Depois disso, vou rodar os testes.",
            "Primeiro eu comparo os preços, depois vejo as avaliações.",
            "Em seguida eu ajusto o Dockerfile.",
        ),
        negatives=(
            "Primeiro você instala, em seguida roda.",
            "Vou ser sincero primeiro: tá ótimo.",
            "Primeiro eu acho que vale testar.",
            "Primeiro eu tentei isso em 2019.",
        ),
    ),
    Pattern(
        "pt.narracao",
        "pt",
        "tool-narration",
        "Lendo o arquivo… / Executando `…` (tool narration)",
        rf"(?!{G.PT_NOT_GERUND}){G.PT_GERUND}(?:{S}(?:por|pelo|pela|no|na|nos|nas|em))?{S}"
        + G.NARRATED_OBJECT,
        positives=(
            "Lendo o arquivo `settings.py`...",
            "Executando `pytest -q`...",
            "Analisando o código agora.",
            "Buscando voos de Recife pra Buenos Aires…",
        ),
        negatives=(
            "Lendo a documentação você aprende.",
            "Rodando na nuvem fica caro.",
            "Rodando testes no CI você evita isso.",
            "Quando você roda isso…",
            "Resumindo: use Postgres…",
        ),
    ),
    Pattern(
        "pt.vou_action",
        "pt",
        "vou",
        "Vou / Eu vou / Vou te + any infinitive (not: ser, te falar, te dar, admitir …)",
        FILLER + G.PT_VOU + S + G.PT_ADVERBS + rf"(?!{G.PT_DIRECT})" + G.PT_VERB,
        positives=(
            "Vou te detalhar as opções uma por uma.",
            "Vou por partes: primeiro vou ler o schema.",
            "Vou montar um comparativo pra você.",
            "Legal, vou elaborar uma lista de compras.",
            "peraí q vou puxar o histórico de deploys",
            "vo dar uma olhada no seu package.json",
            "Faz sentido. Vou refazer o cálculo.",
            "Antes de mais nada, vou checar a versão do Python.",
        ),
        negatives=(
            "Vou ser sincero: esse código tá ótimo.",
            "Vou te falar: usa Postgres.",
            "Vou te dar a versão curta: é cache.",
            "Vou te confessar que prefiro Vue.",
            "Vou admitir: não sou fã de ORM.",
            "Vou resumir numa frase: use Postgres.",
            "Não vou dourar a pílula: não dá.",
            'A crase é obrigatória em "vou à escola".',
            "Vou te deixar uma regra: nunca use float.",
            "Vou torcer por você na prova!",
            "Vou adorar ver como ficou a festa.",
            "Vou ficar na torcida!",
            "Vou deixar a decisão com você, mas eu iria de trem.",
        ),
    ),
    Pattern(
        "pt.deixa_eu_action",
        "pt",
        "let-me",
        "Deixa eu / Deixe-me / Bora eu + any infinitive (not: te dar uma dica, adivinhar, ser …)",
        FILLER + G.PT_DEIXA + S + G.PT_ADVERBS + rf"(?!{G.PT_DIRECT})" + G.PT_VERB,
        positives=(
            "Deixa eu pensar nisso direito.",
            "Deixa eu organizar as ideias.",
            "Pera, deixa eu reler sua pergunta.",
            "Deixa eu fuçar no histórico.",
            "Deixe-me revisar a jurisprudência.",
            "Bora eu ver o que tá rolando.",
            "Hmm, deixa eu raciocinar: se começou em março…",
        ),
        negatives=(
            "Deixa eu te dar uma dica: congela a manteiga.",
            "Deixa eu adivinhar: esqueceu o commit?",
            "Deixe-me ser franco: não dá.",
            "Deixa eu te perguntar uma coisa.",
            "Deixa eu fazer o advogado do diabo: e se ninguém usar?",
            "deixa eu te falar uma parada",
            "Permita-me discordar: monolito funciona.",
            'O bot responde "deixa eu verificar" e trava.',
            "Deixa eu te parabenizar pela promoção!",
            "Deixa eu te tranquilizar: isso é comum.",
        ),
    ),
    Pattern(
        "pt.intencao",
        "pt",
        "first-person-action",
        "Preciso / Quero / Gostaria de + any infinitive (the assistant's own next step)",
        FILLER + G.PT_QUERO + S + G.PT_ADVERBS + rf"(?!{G.PT_DIRECT})" + G.PT_VERB,
        positives=(
            "Preciso ver a alimentação antes.",
            "Quero entender melhor sua rotina primeiro.",
            "Gostaria de revisar o contrato antes.",
        ),
        negatives=(
            "Preciso dizer: ficou ótimo.",
            "Preciso de mais detalhes.",
            "Você precisa verificar o schema.",
        ),
    ),
    Pattern(
        "pt.em_andamento",
        "pt",
        "first-person-action",
        "Tô olhando / Estou revisando … (narrating work in progress)",
        FILLER + rf"(?:eu{S})?(?:estou|to|tou){S}(?:agora{S}|aqui{S}|ja{S}|"
        rf"so{S})?(?!{G.PT_STANCE_GERUND}){G.PT_GERUND}(?:{S}(?:pelo|pela|pelos|pelas|no|na|nos|"
        rf"nas|num|numa)\b|(?:{S}(?:por|em))?{S}(?:o|a|os|as|seu|sua|seus|suas|teu|tua|esse|"
        rf"essa|esses|essas|isso|este|esta|se|cada|linha|`)\b)",
        positives=(
            "Tô olhando os logs do nginx agora.",
            "Só um instante, tô passando pela sua planilha.",
            "Estou rodando o `pytest -x` pra ver.",
            "Agora tô conferindo se o certificado tá completo.",
            "Tô pensando nos casos de borda: lista vazia e duplicados.",
        ),
        negatives=(
            "Estou montando um bot que avisa quando tem onda.",
            "Tô achando esse framework ótimo.",
            "Estou nessa área há tempo.",
            "Tô pensando que você devia usar Postgres.",
        ),
    ),
    Pattern(
        "pt.espera",
        "pt",
        "first-person-action",
        "Só um instante / Me dá um minuto (stalling while working)",
        rf"(?:so{S}um{S}(?:minuto|minutinho|segundo|segundinho|instante|instantinho|momento|momentinho)\b|"
        rf"me{S}d[ae]{S}um{S}(?:minuto|minutinho|segundo|instante|momento)\b|um{S}(?:momento|instante)(?={S0}(?:[,.!…—–-]|$)))",
        positives=("Só um instante, já volto com isso.", "Me dá um minuto pra conferir."),
        negatives=("Um momento de distração basta pra quebrar.",),
    ),
    Pattern(
        "pt.pensando_alto",
        "pt",
        "thinking",
        "pensando alto / pensando em voz alta",
        rf"(?:pensando|raciocinando){S}(?:alto|em{S}voz{S}alta)\b",
        anchored=False,
        positives=("Pensando alto aqui: se a receita leva fermento químico…",),
        negatives=("Pensando bem, usa Postgres.",),
    ),
    Pattern(
        "pt.tags_pensamento",
        "pt",
        "thinking",
        "<pensando>/<raciocinio> tags",
        rf"<{S0}/?{S0}(?:pensando|pensamento|raciocinio|reflexao){S0}>",
        anchored=False,
        positives=("<pensando>Ele quer emagrecer.</pensando> Come mais proteína.",),
        negatives=("Usa `<div>` pra isso.",),
    ),
)


@functools.cache
def _compiled(pid: str) -> re.Pattern[str]:
    """One pattern's own regex, compiled on first use: matching all of them goes through the
    combined matcher below, so most processes never need these (compiling all costs ~0.5 s)."""
    p = BY_ID[pid]
    return compile_pattern(p.regex, p.anchored)


# Literal substrings (of the normalized text) at least one of which every match of the pattern
# contains: a cheap `in` test that skips a pattern's search on most replies (the unanchored
# patterns always; the anchored ones when find_agent_talk is given a subset of PATTERNS).
_WILL, _LET, _VOU = ("i'll", "will"), ("let",), ("vou",)
NEEDLES: dict[str, tuple[str, ...]] = {
    "en.start_by": _WILL,
    "en.continue_by": _WILL,
    "en.ill_action": _WILL,
    "en.sequence": _WILL,
    "en.lets_start": _LET,
    "en.let_me_read": _LET,
    "en.let_me_check": _LET,
    "en.let_me_analyze": _LET,
    "en.let_me_start": _LET,
    "en.going_to": ("going",),
    "en.need_to_first": ("need", "have", "want", "should", "must"),
    "en.plan": ("plan", "break", "what", "approach", "strategy", "step"),
    "en.step_plan": ("step",),
    "en.tool_narration": ("ing",),
    "en.thinking_tags": ("<",),
    "en.let_me_action": ("let", "lemme", "allow", "permit"),
    "en.intent_action": ("i", "gonna", "going"),
    "en.in_progress": ("i",),
    "en.stalling": ("me", "one", "just", "hold", "hang"),
    "en.thinking_aloud": ("thinking",),
    "pt.vou_implementar": _VOU,
    "pt.vou_analisar": _VOU,
    "pt.vou_verificar": _VOU,
    "pt.vou_rodar": _VOU,
    "pt.vou_comecar": _VOU,
    "pt.agora_vou": _VOU,
    "pt.sequencia": ("vou", "eu"),
    "pt.deixa_eu": ("deix", "permita"),
    "pt.preciso_primeiro": ("precis", "tenho", "devo"),
    "pt.plano": ("plano", "dividir", "fazer", "abordagem", "estrategia", "passo"),
    "pt.narracao": ("ndo",),
    "pt.vou_action": ("vou", "vo", "irei"),
    "pt.deixa_eu_action": ("deix", "permit", "bora"),
    "pt.intencao": ("precis", "quero", "tenho", "gostaria"),
    "pt.em_andamento": ("ndo",),
    "pt.espera": ("um",),
    "pt.pensando_alto": ("pensando", "raciocinando"),
    "pt.tags_pensamento": ("<",),
}
BY_ID = {p.id: p for p in PATTERNS}
assert set(NEEDLES) == set(BY_ID), "every pattern needs its needles"
assert len(BY_ID) == len(PATTERNS), "pattern ids must be unique"

_MATCHER = Matcher(PATTERNS, NEEDLES)  # all patterns at once; see molting/text/matcher.py


def find_agent_talk(
    text: str, patterns: tuple[Pattern, ...] = PATTERNS, *, norm: str | None = None
) -> list[Hit]:
    """Every pattern that matches `text`, first match each, ordered by position then list order.

    `norm` is `normalize(text)` when the caller already has it (curation reuses it for hashing).
    """
    if norm is None:
        norm = normalize(text)
    if patterns is PATTERNS:
        found = _MATCHER.matches(norm)
    else:
        found = [
            (i, m.start(), m.end())
            for i, p in enumerate(patterns)
            if any(n in norm for n in NEEDLES[p.id])
            for m in [p.compiled.search(norm)]
            if m
        ]
    if not found:
        return []
    spans = SpanMap(text, norm)
    hits = []
    for i, start, end in found:
        start, end = spans(start, end)
        hits.append((start, i, Hit(patterns[i], start, end, text[start:end].strip())))
    hits.sort(key=lambda h: h[:2])
    return [h for _, _, h in hits]


def is_agent_like(text: str) -> bool:
    return bool(_MATCHER.matches(normalize(text)))
