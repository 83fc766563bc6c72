"""Remove personal data and secrets from conversation text before an estimator sees it.

Each kind of data is found by one detector; the detectors run in a fixed order over
the text, and each replaces what it finds with a typed placeholder (`[EMAIL]`,
`[PHONE]`, ...) before the next one looks. Secrets and URLs go first so that parts
of a token are not mistaken for a phone number; phone numbers go last because the
phone matcher is the most eager. Every detector that could match look-alikes checks
its candidates (mod-97 for IBANs, Luhn for cards, `ipaddress` for IPs, libphonenumber
validity for phones) so dates, versions, amounts and order numbers survive.
"""

from __future__ import annotations

import bisect
import functools
import ipaddress
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import NamedTuple

import phonenumbers

__all__ = ["Redaction", "redact", "redact_counts"]

_Span = tuple[int, int]


class Redaction(NamedTuple):
    """Redacted text and how many items of each kind (`email`, `phone`, ...) were replaced."""

    text: str
    counts: dict[str, int]


def redact(text: str) -> str:
    """Return `text` with personal data and secrets replaced by typed placeholders."""
    return redact_counts(text).text


def redact_counts(text: str) -> Redaction:
    """Redact `text` and count the replacements per kind; kinds with no finding are left out."""
    counts: dict[str, int] = {}
    for detector in _DETECTORS:
        spans = list(detector.find(text))
        if spans:
            text = _replace_spans(text, spans, f"[{detector.kind.upper()}]")
            counts[detector.kind] = counts.get(detector.kind, 0) + len(spans)
    return Redaction(text, counts)


@dataclass(frozen=True, slots=True)
class _Detector:
    """Finds one kind of data; `find` yields sorted, non-overlapping (start, end) spans."""

    kind: str
    find: Callable[[str], Iterator[_Span]]


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
            end = _PEM_BODY_LINES.match(text, begin.end()).end()  # type: ignore[union-attr]
        yield begin.start(), end
        covered_until = end


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
_AUTHORIZATION = re.compile(r"\b(?i:bearer|basic)[ \t]+([A-Za-z0-9._~+/-]{8,}+=*+)(?![\w=])")


def _find_tokens(text: str) -> Iterator[_Span]:
    """API keys and tokens of known shapes (OpenAI, GitHub, Slack, AWS, Google, JWT)."""
    for match in _TOKEN.finditer(text):
        yield match.span()


def _find_authorization_tokens(text: str) -> Iterator[_Span]:
    """The credential after `Bearer` or `Basic`, when it is not an ordinary word."""
    for match in _AUTHORIZATION.finditer(text):
        if _looks_like_credential(match.group(1)):
            yield match.span(1)


# --- URLs ----------------------------------------------------------------------------------

_URL = re.compile(r"(?<![\w.+-])[A-Za-z][A-Za-z0-9+.-]{0,20}+://[^\s<>\"'`{}|\\^]++")
_URL_TRAILING_PUNCTUATION = ".,;:!?'\""
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
    if "://" not in text:
        return
    for match in _URL.finditer(text):
        url = _trim_url(match.group())
        if _url_carries_secret(url):
            yield match.start(), match.start() + len(url)


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
    for separator in "?#":
        if separator not in rest:
            continue
        for parameter in re.split(r"[&;]", rest.split(separator, 1)[1]):
            name, equals, value = parameter.partition("=")
            if equals and value and _is_secret_parameter(name):
                return True
    return False


def _is_secret_parameter(name: str) -> bool:
    if name.lower() in _SECRET_PARAMETER_WORDS:
        return True
    return any(word.lower() in _SECRET_PARAMETER_WORDS for word in _PARAMETER_NAME_WORDS.findall(name))


# --- e-mail addresses ------------------------------------------------------------------------

_EMAIL = re.compile(r"(?<![\w.%+-])[\w.%+-]++@(?:[^\W_][\w-]*+\.)+[^\W\d_]{2,}+(?![\w-])")


def _find_emails(text: str) -> Iterator[_Span]:
    """E-mail addresses, including plus-addressing, subdomains and non-ASCII letters."""
    if "@" in text:
        for match in _EMAIL.finditer(text):
            yield match.span()


# --- bank accounts and cards ---------------------------------------------------------------

_IBAN_CANDIDATE = re.compile(
    r"(?<![A-Za-z0-9])[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]{4}){2,7}+(?: ?[A-Z0-9]{1,3})?(?![A-Za-z0-9])"
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


_DIGIT_GROUPS = re.compile(r"(?<![\w.,])(?<![0-9][ -])[0-9]++(?:[ -][0-9]++)*+(?![^\W\d]|_|[.,][0-9])")
_DIGITS = re.compile(r"[0-9]+")


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
    if 13 <= len(groups[first]) <= 19:
        return first if _luhn_ok(groups[first]) else None
    if len(groups[first]) != 4 or (first > 0 and len(groups[first - 1]) > 3):
        return None
    digits = groups[first]
    longest = None
    for last in range(first + 1, len(groups)):
        if len(digits) + len(groups[last]) > 19:
            break
        digits += groups[last]
        next_is_short = last + 1 == len(groups) or len(groups[last + 1]) <= 3
        if len(digits) >= 13 and next_is_short and _luhn_ok(digits):
            longest = last
        if len(groups[last]) not in (4, 6):
            break
    return longest


def _luhn_ok(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


# --- IP addresses --------------------------------------------------------------------------

_IPV4_CANDIDATE = re.compile(r"(?<![\w.])[0-9]{1,3}(?:\.[0-9]{1,3}){3}(?![\w]|\.[0-9])")
_IPV6_CANDIDATE = re.compile(
    r"(?<![\w:.])(?:[0-9A-Fa-f]{1,4}|(?=:))(?::[0-9A-Fa-f]{0,4}){2,8}+"
    r"(?:\.[0-9]{1,3}){0,3}+(?:%[0-9A-Za-z]++)?(?![\w:.]|\.[0-9])"
)


def _find_ip_addresses(text: str) -> Iterator[_Span]:
    """IPv4 addresses with four valid octets and IPv6 addresses that `ipaddress` accepts."""
    spans = [match.span() for match in _IPV4_CANDIDATE.finditer(text) if _is_ip(match.group(), 4)]
    if "::" in text or text.count(":") >= 7:
        spans.extend(
            match.span()
            for match in _IPV6_CANDIDATE.finditer(text)
            if _is_ip(match.group(), 6) and _plausible_ipv6(text, *match.span())
        )
    yield from sorted(spans)


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


# --- phone numbers -------------------------------------------------------------------------

_PHONE_REGION = "HU"
_PHONE_SEPARATOR = r"(?:[^\S\r\n]|[-‐‑‒–—―−ー－/／.．()（）\[\]［］~⁓∼～\u00ad\u200b\u2060])"
_PHONE_RUN = re.compile(rf"(?:[+＋]|[(（][+＋]?)?\d(?:{_PHONE_SEPARATOR}{{0,4}}\d)*+")
_PHONE_RUN_DIGITS = range(7, 61)  # fewer cannot be a number; more is a table of numbers, not prose
_INTERNATIONAL_PREFIX = re.compile(r"[(（]?(?:[+＋]|00)[1-9]")
_HUNGARIAN_AREA_SLASH = re.compile(r"\(?[0-9]{1,2}\)?/[0-9]{3}[ -]?[0-9]{3,4}")
_AMOUNT_AFTER = re.compile(r"\s?(?:Ft\b|HUF\b|EUR\b|USD\b|forint|euro|€|\$)", re.IGNORECASE)


def _find_phone_numbers(text: str) -> Iterator[_Span]:
    """Phone numbers valid in Hungary or, with a +/00 country code, anywhere.

    Only runs of digits and phone punctuation are handed to libphonenumber, which is
    slow per candidate; repeated runs (logs, pasted tables) are answered from a cache.
    """
    for run in _PHONE_RUN.finditer(text):
        if sum(char.isdigit() for char in run.group()) not in _PHONE_RUN_DIGITS:
            continue
        for start, end in _phone_spans_in(run.group()):
            if _phone_context_ok(text, run.start() + start, run.start() + end):
                yield run.start() + start, run.start() + end


@functools.lru_cache(maxsize=4096)
def _phone_spans_in(run: str) -> tuple[_Span, ...]:
    """Spans of phone numbers in one run of digits and punctuation.

    The strict pass accepts numbers libphonenumber calls valid; a lenient pass adds
    numbers with an explicit country code that are merely possible (fictional ranges
    such as +44 7700 900…) and the Hungarian `30/123-4567` habit of writing the area
    code without the 06 trunk prefix.
    """
    spans = [(match.start, match.end) for match in _phone_matches(run, phonenumbers.Leniency.VALID)]
    if _INTERNATIONAL_PREFIX.match(run) or "/" in run:
        spans.extend(
            (match.start, match.end)
            for match in _phone_matches(run, phonenumbers.Leniency.POSSIBLE)
            if _is_lenient_phone(match) and not _overlaps((match.start, match.end), spans)
        )
    return tuple(sorted(spans))


def _overlaps(span: _Span, spans: list[_Span]) -> bool:
    return any(start < span[1] and span[0] < end for start, end in spans)


def _phone_matches(text: str, leniency: int) -> Iterator[phonenumbers.PhoneNumberMatch]:
    return iter(phonenumbers.PhoneNumberMatcher(text, _PHONE_REGION, leniency=leniency))


def _is_lenient_phone(match: phonenumbers.PhoneNumberMatch) -> bool:
    raw = match.raw_string
    if _INTERNATIONAL_PREFIX.match(raw):
        significant_digits = len(phonenumbers.national_significant_number(match.number))
        return significant_digits >= 7 and phonenumbers.is_possible_number(match.number)
    return _HUNGARIAN_AREA_SLASH.fullmatch(raw) is not None and phonenumbers.is_valid_number(match.number)


def _phone_context_ok(text: str, start: int, end: int) -> bool:
    """False when the digits continue a longer number, version or timestamp, or are an amount."""
    previous, before_previous = text[start - 1 : start], text[max(start - 2, 0) : max(start - 1, 0)]
    following, after_following = text[end : end + 1], text[end + 1 : end + 2]
    if previous.isalnum() or (previous and previous in ".,:/-" and before_previous.isdigit()):
        return False
    if following.isalnum() or (following and following in ".,:/-" and after_following.isdigit()):
        return False
    return _AMOUNT_AFTER.match(text, end) is None


_DETECTORS: tuple[_Detector, ...] = (
    _Detector("secret", _find_private_keys),
    _Detector("secret", _find_tokens),
    _Detector("secret", _find_authorization_tokens),
    _Detector("url", _find_secret_urls),
    _Detector("email", _find_emails),
    _Detector("iban", _find_ibans),
    _Detector("card", _find_cards),
    _Detector("ip", _find_ip_addresses),
    _Detector("phone", _find_phone_numbers),
)
