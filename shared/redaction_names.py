"""Names of people where the text marks them as names: salutations, titles, sign-offs.

General names cannot be told from words; marked ones can. A name is one to four
capitalised name words ("Anna", "Kovács", "Müller-Lüdenscheidt", "O'Brien", "McDonald",
an initial "J.") right after

- a salutation (English, German, Hungarian: "Dear", "Hi", "Hello", "Liebe",
  "Sehr geehrte", "Kedves", "Tisztelt", "Szia", ...) and then ended by punctuation or
  the end of the line ("Dear Anna,", "Kedves Kovács Péter!", "Hi Tom: ..."), so that
  "Hi Can you help" or "Hello World program" are left alone;
- a title ("Mr.", "Mrs.", "Ms.", "Dr.", "Prof.", "Herr", "Herrn", "Frau"), anywhere;
- a Hungarian honorific after the name ("Kovács úr", "Nagy Anna asszonnyal");
- a sign-off ("Best regards," "Mit freundlichen Grüßen", "Üdvözlettel:" ...), on the
  next line when that line holds nothing but the name, or on the same line when
  punctuation or the line's end follows the name ("Thanks, Anna", "Thanks, Anna. Also").

Hungarian writes the family name first ("Kovács Péter") and greets by given name
("Kedves Péter!"): any order of name words is accepted. The salutation, title or
honorific is kept; only the name becomes ``[NAME]``. Words that commonly follow a
salutation without being a name ("Dear Sir", "Hi there", "Hallo zusammen", "Kedves
Kollégák", "Hello World", "Hi ChatGPT") are not names, nor is a word glued to code
(`DearImGui`, `Dr.Foo.bar()`, `Herr_x`).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator

__all__ = ["find_marked_names"]

_Span = tuple[int, int]
_MAX_NAME_WORDS = 4

_SALUTATION = re.compile(  # the leading class lets `re` skip to candidate letters
    r"""(?=[DdHhGgLlSsKkTtJjMm])(?<![\w.@/\\-])(?:
        [Dd]ear(?:est)?|[Hh]i|[Hh]ello|[Hh]ey|[Hh]iya|[Gg]ood[ ](?:[Mm]orning|[Aa]fternoon|[Ee]vening)
      | [Hh]allo|[Ll]iebe[rs]?|[Ss]ehr[ ]geehrte[rn]?|[Gg]uten[ ](?:[Tt]ag|[Mm]orgen|[Aa]bend)|[Ss]ervus|[Mm]oin
      | [Kk]edves|[Tt]isztelt|[Ss]zia|[Ss]ziasztok|[Ss]zervusz|[Hh]elló|[Jj]ó[ ]napot
    )(?=[ \t,])""",
    re.VERBOSE,
)
_TITLE = re.compile(r"(?:Mr|Mrs|Ms|Mx|Miss|Dr|Prof|Herr|Herrn|Frau|Dipl\.-Ing|Ing|Mag)(?:\.|(?=[ \t]))")
_TITLE_MARKER = re.compile(rf"(?<![\w.@/\\-]){_TITLE.pattern}(?=[ \t]*[^\W\d_])")
_ACADEMIC_ABBREVIATION = re.compile(r"(?:med|dent|vet|phil|jur|rer\.[ ]?nat|habil|h\.[ ]?c|dr|univ)\.")
_GAP = re.compile(r"[ \t]+")
_SALUTATION_GAP = re.compile(r"[ \t]*,?[ \t]*")
_WORD = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*\.?")
_PARTICLES = frozenset({"von", "van", "de", "di", "da", "du", "le", "la", "ten", "ter", "del", "zu", "vom"})
_SECOND_PARTICLES = frozenset({"der", "den", "de", "la", "le"})  # only after a first: "von der", "van de"
_HONORIFIC_WORD = re.compile(r"(?:[Úú]r|[Uu]rat|[Aa]sszony|[Kk]isasszony|[Nn]éni|[Bb]ácsi)\w*")
_HONORIFIC_AFTER = re.compile(r"[ \t]+(?:[Úú]r|[Uu]r(?=at)|[Aa]sszony|[Kk]isasszony|néni|bácsi)\w*(?!\w)")
_HONORIFIC_ANCHOR = re.compile(r"[ \t](?:úr|ur(?=at)|asszony|kisasszony)\w*(?!\w)")
_TERMINATOR = re.compile(r"[ \t]*(?:[,!:;?…)]|[.](?!\w)|[-–—][ \t]|\r?\n|\Z)")
_CODE_AFTER = re.compile(r"[(\[{<=_@#$/\\]|[.:](?=[\w(])|[ \t]*(?:=|\(|::|->)")
_SIGN_OFF = re.compile(
    r"""(?:^|(?<=[.!?][ \t]))[ \t]*(?i:
        (?:best|kind|warm|warmest|many|with[ ]best)[ \t]+(?:regards|wishes|thanks)|regards|best|cheers|thanks
      | thank[ ]you|thanks[ ](?:a[ ]lot|again|in[ ]advance)|many[ ]thanks|sincerely|yours(?:[ ](?:sincerely|faithfully|truly))?
      | all[ ]the[ ]best|take[ ]care
      | mit[ ]freundlichen[ ]grüßen|mit[ ]besten[ ]grüßen|(?:freundliche|viele|beste|liebe|herzliche|schöne)[ ]grüße
      | grüße|gruß|mfg|lg|vg|danke(?:[ ]schön)?|vielen[ ]dank
      | üdvözlettel|(?:baráti|szívélyes|tisztelettel[ ]és)[ ]üdvözlettel|tisztelettel|üdv|köszönettel|köszönöm|puszi
    )[ \t]*[,!.:]?""",
    re.VERBOSE | re.MULTILINE,
)
_LINE_END = re.compile(r"[ \t]*[,.!]?[ \t]*(?:\r?\n|\Z)")


def _word_set(words: str) -> frozenset[str]:
    return frozenset(words.split())


# Capitalised words that follow a salutation, title or sign-off without being a name (folded forms).
_NOT_NAMES = _word_set(
    """
    sir madam madame sirs all everyone everybody team colleagues colleague customer customers client
    clients user users world there here folks guys friends friend people of you support sales hr it
    admin admins manager managers hiring recruiter reader readers community members member partner
    partners board committee department office staff crew gang mom mum dad boss chatgpt gpt claude
    copilot gemini llama assistant bot ai model i i'm im we my our the a an this that these those
    its is are was do does did can could would will should shall may might must please thanks thank
    how what why when where who which just quick so ok okay yes no sorry help let good great hope
    again also and or but if then now today new test testing hello hi hey dear welcome attached
    regarding re fw fwd subject question questions following about here's there's damen herren herr
    herrn frau kollegen kolleginnen kollege kollegin zusammen leute alle welt kunde kunden ich wir
    sie du er es bitte danke wie warum wo wann wer ist sind habe hast haben mein meine unser unsere
    die der das ein eine einen kurz gerne heute anbei betreff frage liebe lieber sehr geehrte
    hölgyem uram cím címzett kollégák kolléga kollégáim csapat mindenki világ ügyfelünk ügyfél
    ügyfeleink partnerünk partnereink vezetőség hallgatók olvasó barátaim barátom szeretném kérlek
    kérem segíts hogyan miért mi mit van egy az ez légyszi köszönöm tudnál tudsz itt ott most ma
    igen nem jó napot reggelt estét urak hölgyek kundin kundinnen ihr ihre euer eure your yours
    """
)


_NOT_NAMES_FOLDED = frozenset(
    "".join(char for char in unicodedata.normalize("NFKD", word) if not unicodedata.combining(char))
    for word in _NOT_NAMES
)


def find_marked_names(text: str) -> Iterator[_Span]:
    """Sorted, non-overlapping spans of the names that a salutation, title, honorific or sign-off marks."""
    spans = [
        *_after_salutations(text),
        *_after_titles(text),
        *_before_honorifics(text),
        *_after_sign_offs(text),
    ]
    end = -1
    for span in sorted(spans, key=lambda span: (span[0], -span[1])):
        if span[0] >= end:
            yield span
            end = span[1]


def _after_salutations(text: str) -> Iterator[_Span]:
    for marker in _SALUTATION.finditer(text):
        position = _SALUTATION_GAP.match(text, marker.end())
        assert position is not None
        position_end = _skip_titles(text, position.end())
        span = _name_words(text, position_end)
        if span is None:
            continue
        honorific = _HONORIFIC_AFTER.match(text, span[1])
        after = honorific.end() if honorific is not None else span[1]
        if _TERMINATOR.match(text, after) is not None:
            yield span


def _after_titles(text: str) -> Iterator[_Span]:
    for marker in _TITLE_MARKER.finditer(text):
        span = _name_words(text, _skip_titles(text, marker.start()))
        if span is not None:
            yield span


def _before_honorifics(text: str) -> Iterator[_Span]:
    """Hungarian "Kovács úr", "Nagy Anna asszonnyal": up to two name words before the honorific."""
    for anchor in _HONORIFIC_ANCHOR.finditer(text):
        words: list[re.Match[str]] = []
        position = anchor.start()
        while len(words) < 2:
            match = _last_word_before(text, position)
            if match is None or not _is_name_word(match.group()):
                break
            words.append(match)
            position = match.start()
        if words:
            yield words[-1].start(), words[0].end()


def _after_sign_offs(text: str) -> Iterator[_Span]:
    for sign_off in _SIGN_OFF.finditer(text):
        end = sign_off.end()
        line_end = _LINE_END.match(text, end)
        if line_end is not None and text[line_end.end() - 1 : line_end.end()] == "\n":
            start, ending = line_end.end(), _LINE_END  # the name on a line of its own under the sign-off
        elif text[end - 1 : end] in ",:!" or (
            " " in sign_off.group().strip() and text[end - 1 : end] in " \t"
        ):
            # "Thanks, Anna", "Thanks, Anna. Also ...", "Viele Grüße Anna"; not "Best Practices"
            start, ending = end, _TERMINATOR
        else:
            continue
        gap = _GAP.match(text, start)
        span = _name_words(text, _skip_titles(text, gap.end() if gap is not None else start))
        if span is not None and ending.match(text, span[1]) is not None:
            yield span


def _skip_titles(text: str, position: int) -> int:
    """Past any titles and academic abbreviations ("Frau Dr. med.") and the blanks after them."""
    while True:
        title = _TITLE.match(text, position) or _ACADEMIC_ABBREVIATION.match(text, position)
        if title is None:
            return position
        gap = _GAP.match(text, title.end())
        if gap is None:
            return title.end() if text[title.end() - 1 : title.end()] == "." else position
        position = gap.end()


def _name_words(text: str, position: int) -> _Span | None:
    """The span of the name words starting at `position` (particles inside allowed), if any."""
    start = position
    end = None
    count = 0
    particle = False
    while count < _MAX_NAME_WORDS:
        word = _WORD.match(text, position)
        if word is None:
            break
        value = word.group()
        if value in _PARTICLES or (value in _SECOND_PARTICLES and particle):
            gap = _GAP.match(text, word.end())
            if gap is None:
                break
            position, particle = gap.end(), True
            continue
        particle = False
        if not _is_name_word(value) or (
            value.endswith(".") and len(value) > 2 and count == 0 and _is_abbreviation(value)
        ):
            break
        if _CODE_AFTER.match(text, word.end()) is not None and not value.endswith("."):
            return None  # `Dear.Foo()`, `Herr_x`, `Frau(x)`: code, not prose
        end = word.end() - (1 if value.endswith(".") and len(value) > 2 else 0)
        count += 1
        gap = _GAP.match(text, word.end())
        if gap is None:
            break
        position = gap.end()
    if end is None or _only_initials(text[start:end]):
        return None
    return start, end


def _is_name_word(word: str) -> bool:
    """Capitalised like a name: "Anna", "Kovács", "Müller-Lüdenscheidt", "O'Brien", "McDonald", "J."."""
    if word.endswith("."):
        core = word[:-1]
        if len(core) == 1:
            return core.isupper()
        word = core
    if _fold(word) in _NOT_NAMES_FOLDED or _HONORIFIC_WORD.fullmatch(word) is not None:
        return False
    for part in re.split(r"['’-]", word):
        if _fold(part) in _NOT_NAMES_FOLDED:
            return False  # "Support-Team"
        if len(part) < 2 and not (len(part) == 1 and part in "OoDdLl"):
            return False
        body = (
            part[3:]
            if part.startswith("Mac") and len(part) > 4
            else part[2:]
            if part.startswith("Mc")
            else part[1:]
        )
        if part.startswith(("Mc", "Mac")) and body[:1].isupper():
            body = body[1:]
        if not (part[:1].isupper() and (not body or body.islower())):
            return False
    return True


def _is_abbreviation(word: str) -> bool:
    return word[:-1].isupper()


def _only_initials(span: str) -> bool:
    return all(len(part.rstrip(".")) <= 1 for part in span.split())


def _last_word_before(text: str, position: int) -> re.Match[str] | None:
    start = position
    while start > 0 and (text[start - 1].isalpha() or text[start - 1] in "'’-"):
        start -= 1
    if start == position or (start > 0 and text[start - 1] not in " \t\n("):
        return None
    if position < len(text) and text[position] not in " \t":
        return None
    return _WORD.fullmatch(text, start, position)


def _fold(word: str) -> str:
    decomposed = unicodedata.normalize("NFKD", word.casefold())
    return "".join(char for char in decomposed if not unicodedata.combining(char))
