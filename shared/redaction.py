"""Remove personal data and secrets from conversation text before an estimator sees it.

Each kind of data is found by a detector; the detectors run in a fixed order, and
each replaces what it finds with a typed placeholder (`[EMAIL]`, `[PHONE]`, ...)
before the next one looks. Secrets and URLs go first so that parts of a token are
not mistaken for a phone number; phone numbers go late because the phone matcher is
the most eager, and names last. Detectors that could match look-alikes verify their
candidates (mod-97 for IBANs, Luhn for cards, `ipaddress` for IPs, the TAJ, tax id
and SSN rules for national identifiers, libphonenumber for phones), so dates,
versions, amounts and order numbers survive.

Phone numbers are looked for in the national format of every region of `regions`
(`ANALYTICS_PII_REGIONS`; `DEFAULT_PII_REGIONS` when not given) and, with a + or 00
prefix, of any country. Names are found where the text marks them as a person's
name (`shared.redaction_names`): after a salutation or a title, and under a sign-off.

A placeholder changes the context of its neighbours (two phone numbers glued
together, an address right after another), so lines holding one are redacted again
until nothing changes; that makes `redact` idempotent. Lines without one are already
final: apart from private keys and sign-offs, whose markers no placeholder can
create, no detector looks beyond the line it matches in.
"""

from __future__ import annotations

import bisect
import functools
import ipaddress
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import NamedTuple

import phonenumbers

from shared.pii_regions import DEFAULT_PII_REGIONS
from shared.redaction_names import find_marked_names

__all__ = ["DEFAULT_PII_REGIONS", "Redaction", "check_regions", "redact", "redact_counts"]

_Span = tuple[int, int]
_MAX_PASSES = 5  # lines settle in one or two passes; the cap only guards against a detector bug


class Redaction(NamedTuple):
    """Redacted text and how many items of each kind (`email`, `phone`, ...) were replaced."""

    text: str
    counts: dict[str, int]


def redact(text: str, regions: Iterable[str] | None = None) -> str:
    """Return `text` with personal data and secrets replaced by typed placeholders."""
    return redact_counts(text, regions).text


def redact_counts(text: str, regions: Iterable[str] | None = None) -> Redaction:
    """Redact `text` and count the replacements per kind; kinds with no finding are left out.

    `regions`: ISO region codes whose national phone formats are recognised
    (`DEFAULT_PII_REGIONS` when None); see `check_regions`.
    """
    counts: dict[str, int] = {}
    detectors, line_detectors = _detectors(DEFAULT_PII_REGIONS if regions is None else check_regions(regions))
    lines = _redact_once(text, counts, detectors).split("\n")
    unsettled = [index for index, line in enumerate(lines) if "[" in line]
    for _ in range(_MAX_PASSES):
        if not unsettled:
            break
        found_before = sum(counts.values())
        again = _redact_once("\n".join(lines[index] for index in unsettled), counts, line_detectors)
        if sum(counts.values()) == found_before:
            break
        changed = []
        for index, line in zip(unsettled, again.split("\n"), strict=True):
            if line != lines[index]:
                lines[index] = line
                changed.append(index)
        unsettled = changed
    return Redaction("\n".join(lines), counts)


def _redact_once(text: str, counts: dict[str, int], detectors: tuple[_Detector, ...]) -> str:
    """Run `detectors` once, in order, adding what each replaced to `counts`."""
    for detector in detectors:
        spans = list(detector.find(text))
        if spans:
            text = _replace_spans(text, spans, f"[{detector.kind.upper()}]")
            counts[detector.kind] = counts.get(detector.kind, 0) + len(spans)
    return text


@dataclass(frozen=True, slots=True)
class _Detector:
    """Finds one kind of data; `find` yields sorted, non-overlapping (start, end) spans."""

    kind: str
    find: Callable[[str], Iterator[_Span]]
    multiline: bool = False  # whether a match may span a line break


def _replace_spans(text: str, spans: list[_Span], placeholder: str) -> str:
    parts: list[str] = []
    position = 0
    for start, end in spans:
        parts.append(text[position:start])
        parts.append(placeholder)
        position = end
    parts.append(text[position:])
    return "".join(parts)


def _looks_like_credential(token: str) -> bool:
    """A random-looking token: mixes character classes and is not an ordinary word."""
    has_digit = any(char.isdigit() for char in token)
    has_lower = any(char.islower() for char in token)
    has_upper = any(char.isupper() for char in token)
    if len(token) < 8 or has_digit + has_lower + has_upper < 2:
        return False
    return not (token.isalpha() and token[1:].islower())  # "Understanding" is a word


# Most patterns below begin with a plain character class and check the character before it
# with a two-character lookbehind (`[0-9](?<![\w.][0-9])` rather than `(?<![\w.])[0-9]`):
# `re` can then skip straight to candidates instead of trying every position, which
# matters on megabytes of text. Patterns built around a rare anchor (`@`, `://`) are
# matched only near it, see `_anchored_spans`.


def _anchored_spans(
    text: str, anchor: str, head: re.Pattern[str], tail: re.Pattern[str], reach: int
) -> Iterator[_Span]:
    """Spans of `head` + `tail` around each `anchor`.

    `head` ends with the anchor and `\\Z`, spans at most `reach` characters and never
    contains another anchor, so it is searched for only just before each anchor.
    """
    floor = 0  # no head starts before the end of the previous match or anchor
    position = text.find(anchor)
    while position >= 0:
        head_end = position + len(anchor)
        head_match = head.search(text, max(head_end - reach, floor), head_end)
        tail_match = tail.match(text, head_end) if head_match is not None else None
        if head_match is not None and tail_match is not None:
            yield head_match.start(), tail_match.end()
            floor = tail_match.end()
        floor = max(floor, head_end)
        position = text.find(anchor, floor)


# --- secrets -------------------------------------------------------------------------------

_PEM_BEGIN = re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----")
_PEM_END = re.compile(r"-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----")
_PEM_BODY_LINES = re.compile(r"(?:\s*+(?:[A-Za-z0-9+/]{16,}+={0,2}|[A-Za-z-]++: [^\n]*+))*+")


def _find_private_keys(text: str) -> Iterator[_Span]:
    """PEM private key blocks; a block without its END line ends after its base64 lines."""
    if "PRIVATE KEY" not in text:
        return
    ends = [match.end() for match in _PEM_END.finditer(text)]
    begins = list(_PEM_BEGIN.finditer(text))
    covered_until = 0
    for index, begin in enumerate(begins):
        if begin.start() < covered_until:
            continue
        next_begin = begins[index + 1].start() if index + 1 < len(begins) else len(text)
        end_index = bisect.bisect_left(ends, begin.end())
        if end_index < len(ends) and ends[end_index] <= next_begin:
            end = ends[end_index]
        else:
            body = _PEM_BODY_LINES.match(text, begin.end())
            end = body.end() if body is not None else begin.end()
        yield begin.start(), end
        covered_until = end


_TOKEN_START = re.compile(r"sk-|gh[pousr]_|github_pat_|xox[bpars]-|AKIA|ASIA|AIza|eyJ")
_TOKEN = re.compile(
    r"""
    (?<![A-Za-z0-9_-])
    (?:
        sk-[A-Za-z0-9_-]{20,}+                      # OpenAI / Anthropic, incl. sk-proj-…
      | gh[pousr]_[A-Za-z0-9]{30,}+                 # GitHub tokens
      | github_pat_[A-Za-z0-9_]{30,}+               # GitHub fine-grained tokens
      | xox[bpars]-[A-Za-z0-9-]{10,}+               # Slack
      | (?:AKIA|ASIA)[A-Z0-9]{16}                   # AWS access key ids
      | AIza[A-Za-z0-9_-]{35}                       # Google API keys
      | eyJ[A-Za-z0-9_-]{8,}+\.[A-Za-z0-9_-]{8,}+\.[A-Za-z0-9_-]*+  # JWTs
    )
    (?![A-Za-z0-9_-])
    """,
    re.VERBOSE,
)
_AUTHORIZATION = re.compile(r"[Bb](?<!\w[Bb])(?i:earer|asic)[ \t]+([A-Za-z0-9._~+/-]{8,}+=*+)(?![\w=])")


def _find_tokens(text: str) -> Iterator[_Span]:
    """API keys and tokens of known shapes (OpenAI, GitHub, Slack, AWS, Google, JWT)."""
    end_of_previous = 0
    for start in _TOKEN_START.finditer(text):
        match = _TOKEN.match(text, start.start()) if start.start() >= end_of_previous else None
        if match is not None:
            yield match.span()
            end_of_previous = match.end()


def _find_authorization_tokens(text: str) -> Iterator[_Span]:
    """The credential after `Bearer` or `Basic`, when it is not an ordinary word."""
    for match in _AUTHORIZATION.finditer(text):
        if _looks_like_credential(match.group(1)):
            yield match.span(1)


# --- URLs ----------------------------------------------------------------------------------

_URL_HEAD = re.compile(r"[A-Za-z](?<![\w.+-][A-Za-z])[A-Za-z0-9+.-]{0,20}+://\Z")  # the scheme
_URL_TAIL = re.compile(r"[^\s<>\"'`{}|\\^]++")
_URL_TRAILING_PUNCTUATION = ".,;:!?'\""
_URL_SECRET_PARAMETER = re.compile(r"[?&;#]([^=&;#?/]+)=[^&;#\s]")  # names of parameters with a value
_PARAMETER_NAME_WORDS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")
_SECRET_PARAMETER_WORDS = frozenset(
    {
        "token", "key", "secret", "password", "passwd", "pwd", "signature", "sig", "auth",
        "authorization", "code", "sid", "session", "sessionid", "credential", "credentials",
        "apikey", "accesstoken", "jsessionid", "phpsessid",
    }
)  # fmt: skip


def _find_secret_urls(text: str) -> Iterator[_Span]:
    """URLs with `user:pass@` credentials or a token/key/secret-like query parameter."""
    for start, end in _anchored_spans(text, "://", _URL_HEAD, _URL_TAIL, reach=24):
        url = _trim_url(text[start:end])
        if _url_carries_secret(url):
            yield start, start + len(url)


def _trim_url(url: str) -> str:
    """Drop trailing sentence punctuation and closing brackets the URL did not open."""
    while url:
        last = url[-1]
        unopened_bracket = last in ")]" and url.count(last) > url.count("(" if last == ")" else "[")
        if last not in _URL_TRAILING_PUNCTUATION and not unopened_bracket:
            break
        url = url[:-1]
    return url


def _url_carries_secret(url: str) -> bool:
    rest = url.split("://", 1)[1]
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
    if "@" in authority:
        userinfo = authority.rsplit("@", 1)[0]
        if ":" in userinfo or _looks_like_credential(userinfo):
            return True
    return any(_is_secret_parameter(name) for name in _URL_SECRET_PARAMETER.findall(rest))


def _is_secret_parameter(name: str) -> bool:
    if name.lower() in _SECRET_PARAMETER_WORDS:
        return True
    return any(word.lower() in _SECRET_PARAMETER_WORDS for word in _PARAMETER_NAME_WORDS.findall(name))


# --- e-mail addresses ------------------------------------------------------------------------

_EMAIL_HEAD = re.compile(r"[\w.%+-](?<![\w.%+-]{2})[\w.%+-]{0,63}+@\Z")  # the local part
_EMAIL_TAIL = re.compile(r"(?:[^\W_][\w-]*+\.)+[^\W\d_]{2,}+(?![\w-])")


def _find_emails(text: str) -> Iterator[_Span]:
    """E-mail addresses, including plus-addressing, subdomains and non-ASCII letters."""
    for start, end in _anchored_spans(text, "@", _EMAIL_HEAD, _EMAIL_TAIL, reach=65):
        address = text[start:end].lstrip(".%+-")  # "...john@x.com", "%jane@x.com"
        if not address.startswith("@"):
            yield end - len(address), end


# --- bank accounts and cards ---------------------------------------------------------------

_IBAN_CANDIDATE = re.compile(
    r"[A-Z](?<![A-Za-z0-9][A-Z])[A-Z][0-9]{2}(?: ?[A-Z0-9]{4}){2,7}+(?: ?[A-Z0-9]{1,3})?(?![A-Za-z0-9])"
)
_IBAN_LENGTH_BY_COUNTRY = {
    "AT": 20, "BE": 16, "BG": 22, "CH": 21, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "EE": 20,
    "ES": 24, "FI": 18, "FR": 27, "GB": 22, "GR": 27, "HR": 21, "HU": 28, "IE": 22, "IS": 26,
    "IT": 27, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MT": 31, "NL": 18, "NO": 15, "PL": 28,
    "PT": 25, "RO": 24, "RS": 22, "SE": 24, "SI": 19, "SK": 24,
}  # fmt: skip


def _find_ibans(text: str) -> Iterator[_Span]:
    """IBANs, compact or in groups of four, whose mod-97 checksum verifies."""
    for match in _IBAN_CANDIDATE.finditer(text):
        candidate = match.group()
        while True:
            if _is_valid_iban(candidate.replace(" ", "")):
                yield match.start(), match.start() + len(candidate)
                break
            if " " not in candidate:
                break
            candidate = candidate.rsplit(" ", 1)[0]  # a trailing group may be a following word


def _is_valid_iban(compact: str) -> bool:
    expected_length = _IBAN_LENGTH_BY_COUNTRY.get(compact[:2])
    if expected_length is None and not 15 <= len(compact) <= 34:
        return False
    if expected_length is not None and len(compact) != expected_length:
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(char, 36)) for char in rearranged)) % 97 == 1


_DIGIT_GROUPS = re.compile(  # digit groups joined by single spaces or dashes, not in a word or decimal
    r"[0-9](?<![\w.,][0-9])(?<![0-9][ -][0-9])[0-9]*+(?:[ -][0-9]++)*+(?!_|[^\W\d]|[.,][0-9])"
)
_DIGITS = re.compile(r"[0-9]+")
_CARD_FIRST_DIGITS_BY_LENGTH = {  # 13: old Visa; 14: Diners; 15: Amex; longer: every major network
    13: "4", 14: "3", 15: "3", 16: "23456", 17: "3456", 18: "3456", 19: "3456",
}  # fmt: skip


def _find_cards(text: str) -> Iterator[_Span]:
    """Card numbers of 13–19 digits, compact or grouped by spaces or dashes, passing Luhn."""
    for run in _DIGIT_GROUPS.finditer(text):
        if len(run.group()) < 13:
            continue
        groups = list(_DIGITS.finditer(run.group()))
        for first, last in _card_windows([group.group() for group in groups]):
            yield run.start() + groups[first].start(), run.start() + groups[last].end()


def _card_windows(groups: list[str]) -> Iterator[tuple[int, int]]:
    """Yield (first, last) indexes of the digit groups that form card numbers."""
    first = 0
    while first < len(groups):
        last = _card_ending_at(groups, first)
        if last is None:
            first += 1
        else:
            yield first, last
            first = last + 1


def _card_ending_at(groups: list[str], first: int) -> int | None:
    """Index of the last group of the longest card number starting at group `first`, if any.

    A card is one group of 13–19 digits, or groups shaped like printed cards (4-4-4-4,
    4-4-4-4-3, 4-6-5, ...) with no group of four or more digits next to it, which would
    make it part of a longer number.
    """
    if len(groups[first]) >= 13:
        return first if _is_card_number(groups[first]) else None
    if len(groups[first]) != 4 or (first > 0 and len(groups[first - 1]) > 3):
        return None
    digits = groups[first]
    longest = None
    for last in range(first + 1, len(groups)):
        if len(digits) + len(groups[last]) > 19:
            break
        digits += groups[last]
        next_is_short = last + 1 == len(groups) or len(groups[last + 1]) <= 3
        if next_is_short and _is_card_number(digits):
            longest = last
        if len(groups[last]) not in (4, 6):
            break
    return longest


def _is_card_number(digits: str) -> bool:
    """13–19 digits with a major network's first digit for that length, passing Luhn.

    The first-digit rule spares millisecond timestamps (17…), most internal ids and
    most EAN-13 barcodes, which Luhn alone would let through one time in ten.
    """
    first_digits = _CARD_FIRST_DIGITS_BY_LENGTH.get(len(digits), "")
    return digits[0] in first_digits and _luhn_ok(digits)


def _luhn_ok(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


# --- IP addresses --------------------------------------------------------------------------

_IPV4_CANDIDATE = re.compile(r"[0-9](?<![\w.][0-9])[0-9]{0,2}(?:\.[0-9]{1,3}){3}(?!\w|\.[0-9])")
_IPV6_CANDIDATE = re.compile(  # hex groups between two to eight colons, an IPv4 tail, a zone
    r"(?:[0-9A-Fa-f](?<![\w:.].)[0-9A-Fa-f]{0,3}(?::[0-9A-Fa-f]{0,4}){2,8}+"
    r"|:(?<![\w:.]:)(?::[0-9A-Fa-f]{0,4}){1,7}+)"
    r"(?:\.[0-9]{1,3}){0,3}+(?:%[0-9A-Za-z]++)?(?![\w:]|\.[0-9])"
)


def _find_ipv6_addresses(text: str) -> Iterator[_Span]:
    """IPv6 addresses that `ipaddress` accepts, full, compressed, IPv4-mapped or scoped."""
    for match in _IPV6_CANDIDATE.finditer(text):
        if _is_ip(match.group(), 6) and _plausible_ipv6(text, *match.span()):
            yield match.span()


def _find_ipv4_addresses(text: str) -> Iterator[_Span]:
    """Dotted quads with four valid octets; three-part versions such as 10.0.0 do not qualify."""
    for match in _IPV4_CANDIDATE.finditer(text):
        if _is_ip(match.group(), 4):
            yield match.span()


def _is_ip(candidate: str, version: int) -> bool:
    try:
        address = ipaddress.ip_address(candidate)
    except ValueError:
        return False
    return address.version == version


def _plausible_ipv6(text: str, start: int, end: int) -> bool:
    """Reject short compressed look-alikes: slices (`a[1::2]`), C++/Rust paths (`a::b`), `::`."""
    candidate = text[start:end]
    if candidate == "::1":
        return not (
            start >= 2 and text[start - 1] == "[" and (text[start - 2].isalnum() or text[start - 2] in "_)]")
        )
    groups = [group for group in re.split(r"[:.%]", candidate) if group]
    return len(groups) >= 3 or any(len(group) == 4 for group in groups)


# --- national identifiers ------------------------------------------------------------------
#
# Each is checked, not guessed: a run of digits is replaced only when it is the whole run
# (not a window of a longer number) and passes its checksum or structural rules.

_SSN_SHAPE = re.compile(r"([0-9]{3})([- ])([0-9]{2})\2([0-9]{4})")
_SSN_NEVER_ISSUED = frozenset({"078051120", "219099999"})  # printed on sample cards and in ads
_REFERENCE_BEFORE = re.compile(  # the number is labelled as an order, invoice, ticket... number
    r"(?:#|№|\b(?i:order|invoice|inv|tickets?|case|ref|reference|receipt|tracking|item|sku|article|art|id"
    r"|sha|commit|hash|build|serial|sn|bestell\w*|rechnung\w*|auftrag\w*|kunden\w*|artikel\w*|sendung\w*"
    r"|vorgang\w*|(?!(?:telefon|handy|fax|ruf|mobil|notruf|durchwahl|kontakt)nummer)\w+nummer"
    r"|rendel\w*|megrendel\w*|számla\w*|ügyszám\w*|cikkszám\w*|termék\w*"
    r"|(?!(?:telefon|mobil|fax|hívó|mellék)szám)\w+szám))"
    r"(?i:[ \t]*(?:no\.?|nr\.?|number|nummer|szám|id))?[ \t]*[:#.]?[ \t]*(?:#[ \t]*)?\Z"
)

_ID_LABEL_BEFORE = re.compile(  # labelled as an identifier: if it fails its check, it is no phone either
    r"\b(?i:taj|adóazonosító(?:[ \t]+jel)?|adószám|steuer-?id(?:nr)?|steuer-?identifikationsnummer"
    r"|steuerliche[ \t]+identifikationsnummer|idnr|ssn|social[ \t]+security(?:[ \t]+number)?)"
    r"(?i:[ \t-]*(?:szám|jel|number|nummer|nr\.?|no\.?))?[ \t]*[:#]?[ \t]*\Z"
)
_PHONE_WORD_BEFORE = re.compile(  # not inside a placeholder: `[PHONE]` announces nothing
    r"(?i:(?<!\[)\b(?:tel|phone|mobile?|cell|call|ring|text|whatsapp|signal|sms|fax|contact|handy|ruf|anruf"
    r"|erreich\w*|telefon\w*|mobil\w*|hív\w*|elérhet\w*|móvil|llám\w*|cellulare|chiam\w*|numer\w*|číslo"
    r"|număr\w*|portable|appel\w*|bel|kontakt\w*))"
)
_SSN_LIKE = re.compile(r"[0-9]{3}-[0-9]{2}-[0-9]{4}")  # the SSN shape: never read as a phone number
_OPERATOR_BEFORE = re.compile(r"(?:[=*/%<>^|&]|[\w)\]][ \t]*[-+])[ \t]*\Z")  # `x = 1234567 * 89 - 3012345`


def _find_national_ids(text: str) -> Iterator[_Span]:
    """Hungarian TAJ and tax ids, German tax ids, US social security numbers."""
    for run in _DIGIT_GROUPS.finditer(text):
        digits = run.group().replace(" ", "").replace("-", "")
        if (
            len(digits) in (9, 10, 11)
            and _is_national_id(run.group(), digits)
            and _phone_context_ok(text, *run.span())
            and (not _labelled_reference(text, run.start()) or _labelled_id(text, run.start()))
        ):
            yield run.span()


def _is_national_id(raw: str, digits: str) -> bool:
    if len(digits) == 9:
        ssn = _SSN_SHAPE.fullmatch(raw)
        return _is_ssn(ssn.group(1), ssn.group(3), ssn.group(4)) if ssn else _is_taj(digits)
    if len(digits) == 10:
        return _is_hungarian_tax_id(digits)
    return _is_german_tax_id(digits)


def _is_taj(digits: str) -> bool:
    """Hungarian social security number (TAJ): digits 1-8 weighted 3, 7, 3, 7, ... mod 10 = digit 9."""
    total = sum(int(char) * (3 if index % 2 == 0 else 7) for index, char in enumerate(digits[:8]))
    return total % 10 == int(digits[8])


def _is_hungarian_tax_id(digits: str) -> bool:
    """Hungarian personal tax id (adóazonosító jel): 8, then 9 digits weighted 1..9 mod 11 = digit 10."""
    if digits[0] != "8":
        return False
    remainder = sum(int(char) * weight for weight, char in enumerate(digits[:9], start=1)) % 11
    return remainder < 10 and remainder == int(digits[9])  # remainder 10: never issued


def _is_german_tax_id(digits: str) -> bool:
    """German tax id (Steuer-IdNr): no leading 0; in digits 1-10 one digit occurs twice or three times
    (never three in a row), exactly one or two digits are missing; ISO 7064 MOD 11,10 check digit."""
    head = digits[:10]
    if digits[0] == "0":
        return False
    occurrences = sorted(Counter(head).values(), reverse=True)
    if occurrences not in ([2, 1, 1, 1, 1, 1, 1, 1, 1], [3, 1, 1, 1, 1, 1, 1, 1]):
        return False
    if occurrences[0] == 3 and any(head[index] == head[index + 1] == head[index + 2] for index in range(8)):
        return False
    product = 10
    for char in head:
        total = (int(char) + product) % 10 or 10
        product = total * 2 % 11
    check = 11 - product
    return (0 if check == 10 else check) == int(digits[10])


def _is_ssn(area: str, group: str, serial: str) -> bool:
    """US SSN structure: area not 000, 666 or 900-999; group not 00; serial not 0000."""
    if area in ("000", "666") or area[0] == "9" or group == "00" or serial == "0000":
        return False
    return area + group + serial not in _SSN_NEVER_ISSUED


def _labelled_reference(text: str, start: int) -> bool:
    return _REFERENCE_BEFORE.search(text[max(start - 40, 0) : start]) is not None


def _labelled_id(text: str, start: int) -> bool:
    return _ID_LABEL_BEFORE.search(text[max(start - 60, 0) : start]) is not None


# --- phone numbers -------------------------------------------------------------------------

_PHONE_SEPARATOR = r"(?:[^\S\r\n]|[-‐‑‒–—―−ー－/／.．()（）\[\]［］~⁓∼～\u00ad\u200b\u2060])"
_PHONE_RUN = re.compile(rf"\d(?:{_PHONE_SEPARATOR}{{0,4}}\d)*+")
_PHONE_RUN_LEAD = re.compile(r"(?:[+＋]|[(（][+＋]?)\Z")  # "+" or "(" right before a run belongs to it
_MIN_PHONE_DIGITS = 7
_MAX_RUN_DIGITS = 60  # a longer run is a table of numbers, not prose; it is not searched
_INTERNATIONAL_PREFIX = re.compile(r"[(（]?(?:[+＋]|00)[1-9]")
_PLUS_PREFIX = re.compile(r"[(（]?[+＋]")
_HUNGARIAN_AREA_SLASH = re.compile(r"\(?[0-9]{1,2}\)?/[0-9]{3}[ -]?[0-9]{3,4}")
_NANP_SHAPE = re.compile(r"(?:1[ .-]?)?(?:\([2-9][0-9]{2}\) ?|[2-9][0-9]{2}[ .-])[2-9][0-9]{2}[ .-][0-9]{4}")
_EXTENSION_TAIL = re.compile(r"/[0-9]{1,4}\Z")
_AMOUNT_AFTER = re.compile(r"[ \u00a0]?(?:Ft\b|HUF\b|EUR\b|USD\b|forint|euro|€|\$)", re.IGNORECASE)
_DATE_START = re.compile(  # 2026-03-14, 14.03.2026, 03/14/2026 at the start of a candidate
    r"(?:(?:19|20)[0-9]{2}-[01][0-9]-[0-3][0-9]|[0-3]?[0-9]\.[01]?[0-9]\.(?:19|20)[0-9]{2}"
    r"|[01]?[0-9]/[0-3]?[0-9]/(?:19|20)[0-9]{2}"
    r"|(?:19|20)[0-9]{2}[-/][0-9]{5,}"  # a year-numbered id: 2025-001234, 2026/0001234
    r"|[01][0-9][0-5][0-9]-(?:[01][0-9]|2[0-3])[0-5][0-9])(?![0-9])"  # a time range: 0930-1030
)


def check_regions(regions: Iterable[str]) -> tuple[str, ...]:
    """The region codes upper-cased, in order, without repeats; ValueError names an unknown code."""
    checked: list[str] = []
    for region in regions:
        code = region.strip().upper()
        if code not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"{region!r} is not a region code phone numbers are known for (e.g. HU, DE, US)")
        if code not in checked:
            checked.append(code)
    if not checked:
        raise ValueError("at least one region is needed")
    return tuple(checked)


def _find_phone_numbers(text: str, regions: tuple[str, ...]) -> Iterator[_Span]:
    """Phone numbers valid in one of `regions` in national format or, with a +/00 prefix, anywhere.

    Only runs of digits and phone punctuation are handed to libphonenumber, which is
    slow per candidate; repeated runs (logs, pasted tables) are answered from a cache.
    Cheap checks go first: a run that starts with a date is looked at only after it,
    and a bare run of digits without a leading 0 (an id, a count, a timestamp far more
    often than a phone number) only when a word such as "phone" or "Tel." precedes it.
    """
    for run in _PHONE_RUN.finditer(text):
        if len(run.group()) < _MIN_PHONE_DIGITS:
            continue
        if not _MIN_PHONE_DIGITS <= sum(map(str.isdigit, run.group())) <= _MAX_RUN_DIGITS:
            continue
        lead = _PHONE_RUN_LEAD.search(text, max(run.start() - 2, 0), run.start())
        run_start = lead.start() if lead is not None else run.start()
        date = _DATE_START.match(text, run_start)
        if date is not None:  # "2026-03-14 10:30": the date cannot be a phone number, the rest may
            rest = _PHONE_RUN.search(text, date.end(), run.end())
            if rest is None or sum(map(str.isdigit, rest.group())) < _MIN_PHONE_DIGITS:
                continue
            run_start = rest.start()
        if (
            lead is None
            and date is None
            and run.group().isdigit()
            and not _compact_national_ok(text, *run.span())
        ):
            continue
        for start, end in _phone_spans_in(text[run_start : run.end()], regions):
            start, end = run_start + start, run_start + end
            if not _phone_context_ok(text, start, end):
                continue
            if _PLUS_PREFIX.match(text, start) is None and not _national_phone_context_ok(text, start, end):
                continue
            yield start, end


@functools.lru_cache(maxsize=8192)
def _phone_spans_in(run: str, regions: tuple[str, ...], prefilter: bool = True) -> tuple[_Span, ...]:
    """Spans of phone numbers in one run of digits and punctuation.

    The strict pass accepts numbers libphonenumber calls valid, in each region's
    national format (a number with a + prefix is read once, it names its country). A
    lenient pass adds numbers with an explicit country code that are merely possible
    (fictional ranges such as +44 7700 900…), the Hungarian `30/123-4567` habit of
    writing the area code without the 06 trunk prefix and, for the US and Canada,
    possible numbers in the usual `(NXX) NXX-XXXX` shape (the fictional 555 range).
    A trailing `/123` extension, which libphonenumber takes for part of a date or of
    the number, is set aside when the number without it is valid.
    """
    extension = _EXTENSION_TAIL.search(run)
    if extension is not None:  # "06-1/234-5678/123": the number, then its extension
        without = _phone_spans_in(run[: extension.start()], regions, prefilter)
        if without:
            return without
    if _PLUS_PREFIX.match(run):
        strict_regions = regions[:1]  # the number names its country
    else:
        strict_regions = _plausible_regions(run, regions) if prefilter else regions
    spans: list[_Span] = []
    digits = [index for index, char in enumerate(run) if char.isdigit()]
    for region in strict_regions:
        found = [_phone_span(match) for match in _phone_matcher(run, region, phonenumbers.Leniency.VALID)]
        spans.extend(span for span in found if not _overlaps(span, spans))
        if any(start <= digits[0] and digits[-1] < end for start, end in spans):
            break  # one number covers every digit: no other region can find more
    lenient_region = "HU" if "HU" in regions else regions[0]
    if _INTERNATIONAL_PREFIX.match(run) or ("/" in run and lenient_region == "HU"):
        spans.extend(
            _phone_span(match)
            for match in _phone_matcher(run, lenient_region, phonenumbers.Leniency.POSSIBLE)
            if _is_lenient_phone(match) and not _overlaps(_phone_span(match), spans)
        )
    nanp = next((region for region in ("US", "CA") if region in regions), None)
    if nanp is not None and not spans:
        spans.extend(
            _phone_span(match)
            for match in _phone_matcher(run, nanp, phonenumbers.Leniency.POSSIBLE)
            if _NANP_SHAPE.fullmatch(match.raw_string) and not _overlaps(_phone_span(match), spans)
        )
    return tuple(sorted(span for span in spans if _DATE_START.match(run, span[0]) is None))


@functools.lru_cache(maxsize=64)
def _region_profile(region: str) -> tuple[frozenset[int], str, tuple[str, ...]] | None:
    """Possible national number lengths, trunk prefix, and international prefixes and country code
    of `region` (a window starting with one of these may hold a number of any length).

    None when the region reads national numbers in a way the pre-filter does not model
    (a trunk prefix pattern or a transform rule): such a region is always asked.
    """
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
    if metadata is None or metadata.general_desc is None:
        return None
    prefix = metadata.national_prefix or ""
    parsing = metadata.national_prefix_for_parsing or ""
    if (parsing and parsing != prefix) or metadata.national_prefix_transform_rule:
        return None
    lengths = frozenset(length for length in metadata.general_desc.possible_length if length > 0)
    international = {
        "00",
        metadata.international_prefix or "00",
        metadata.preferred_international_prefix or "00",
        str(metadata.country_code or "00"),  # libphonenumber strips the region's own code: 48820892332 in PL
    }
    idd = tuple(sorted(code for code in international if code.isdigit()))
    return lengths, prefix, idd


_PHONE_TOKEN = re.compile(r"[0-9]+")


def _plausible_regions(run: str, regions: tuple[str, ...]) -> tuple[str, ...]:
    """The regions in whose national format some part of the run could be a valid number.

    A cheap pre-filter before libphonenumber: a number it finds in a run is a
    sequence of whole digit groups, so a region is asked only when the digits of some
    such sequence (without the trunk prefix, if it starts with one) have one of the
    region's possible lengths, or the sequence starts with an international prefix or
    the region's own country code.
    """
    tokens = _PHONE_TOKEN.findall(run)
    windows = []
    for first in range(len(tokens)):
        digits = ""
        for token in tokens[first:]:
            digits += token
            if len(digits) > 17:
                break
            windows.append(digits)
    plausible = []
    for region in regions:
        profile = _region_profile(region)
        if profile is None:
            plausible.append(region)
            continue
        lengths, prefix, idd = profile
        for digits in windows:
            if len(digits) in lengths or digits.startswith(idd):
                break
            if prefix and digits.startswith(prefix) and len(digits) - len(prefix) in lengths:
                break
        else:
            continue
        plausible.append(region)
    return tuple(plausible)


def _phone_span(match: phonenumbers.PhoneNumberMatch) -> _Span:
    """The match's span without an opening bracket it never closes: `(+61 2 9374 4000)`."""
    raw = match.raw_string
    if raw[:1] in "(（" and not any(bracket in raw for bracket in ")）"):
        return match.start + 1, match.end
    return match.start, match.end


def _overlaps(span: _Span, spans: list[_Span]) -> bool:
    return any(start < span[1] and span[0] < end for start, end in spans)


def _phone_matcher(text: str, region: str, leniency: int) -> phonenumbers.PhoneNumberMatcher:
    return phonenumbers.PhoneNumberMatcher(text, region, leniency=leniency)


def _is_lenient_phone(match: phonenumbers.PhoneNumberMatch) -> bool:
    raw = match.raw_string
    if _INTERNATIONAL_PREFIX.match(raw):
        significant_digits = len(phonenumbers.national_significant_number(match.number))
        return significant_digits >= 7 and phonenumbers.is_possible_number(match.number)
    return _HUNGARIAN_AREA_SLASH.fullmatch(raw) is not None and phonenumbers.is_valid_number(match.number)


def _national_phone_context_ok(text: str, start: int, end: int) -> bool:
    """False for a number without a country code that is labelled as an order, invoice or other
    reference, or as an identifier; that has the SSN shape; that is an operand in code; or
    that is bare digits without a leading 0 or a phone word before it."""
    before = text[max(start - 60, 0) : start]
    if _REFERENCE_BEFORE.search(before) or _ID_LABEL_BEFORE.search(before):
        return False
    if _SSN_LIKE.fullmatch(text, start, end):
        return False
    if text[start:end].isdigit() and _OPERATOR_BEFORE.search(before):
        return False
    return not text[start:end].isdigit() or _compact_national_ok(text, start, end)


def _compact_national_ok(text: str, start: int, end: int) -> bool:
    """Bare digits are a national phone number only with a leading 0 (the trunk prefix of most
    of Europe, or 00) or after a word that announces a phone number."""
    return text[start] == "0" or _PHONE_WORD_BEFORE.search(text, max(start - 40, 0), start) is not None


def _phone_context_ok(text: str, start: int, end: int) -> bool:
    """False when the digits continue a longer number, version, timestamp or identifier
    (`INV-2024-000123`), or are an amount."""
    before, after = text[max(start - 2, 0) : start].rjust(2), text[end : end + 2].ljust(2)
    if before[1].isalnum() or (before[1] in ".,:/-" and before[0].isdigit()):
        return False
    if before[1] in "-/_" and before[0].isalpha():
        return False
    if after[0].isalnum() or (after[0] in ".,:-" and after[1].isdigit()):
        return False
    return _AMOUNT_AFTER.match(text, end) is None


@functools.lru_cache(maxsize=16)
def _detectors(regions: tuple[str, ...]) -> tuple[tuple[_Detector, ...], tuple[_Detector, ...]]:
    """All detectors for `regions` and the ones that look within a line only."""
    detectors = (
        _Detector("secret", _find_private_keys, multiline=True),
        _Detector("secret", _find_tokens),
        _Detector("secret", _find_authorization_tokens),
        _Detector("url", _find_secret_urls),
        _Detector("email", _find_emails),
        _Detector("iban", _find_ibans),
        _Detector("card", _find_cards),
        _Detector("ip", _find_ipv6_addresses),  # first, so the tail of ::ffff:192.0.2.1 stays inside it
        _Detector("ip", _find_ipv4_addresses),
        _Detector("national_id", _find_national_ids),  # before phones: a TAJ may look like a number abroad
        _Detector("phone", functools.partial(_find_phone_numbers, regions=regions)),
        _Detector("name", find_marked_names, multiline=True),  # a sign-off's name is on the next line
    )
    return detectors, tuple(detector for detector in detectors if not detector.multiline)
