"""Planted personal data and secrets that redaction must remove, and look-alikes it must keep.

Every planted value is invented: test card numbers and IBANs from public documentation,
fictional phone ranges, example domains. Token-shaped secrets are generated from a fixed
filler so that no realistic key is written down in the source.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from typing import NamedTuple

__all__ = ["LOOKALIKES", "PLANTED", "Planted", "recall_and_survival"]


class Planted(NamedTuple):
    """One planted value: `sentence` contains `value` exactly once; it must become `[KIND]`."""

    kind: str
    value: str
    sentence: str

    @property
    def expected(self) -> str:
        return self.sentence.replace(self.value, f"[{self.kind.upper()}]")


_FILLER = "aZ3kQ9mX7pL2vR8tB5nW1cY6hJ4dF0sGuE"


def _fake(length: int, offset: int = 0) -> str:
    """Deterministic mixed-case alphanumerics that look random enough for a token pattern."""
    return "".join(_FILLER[(offset + index * 7) % len(_FILLER)] for index in range(length))


def _jwt(payload: dict[str, object]) -> str:
    def encode(part: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(part).encode()).rstrip(b"=").decode()

    return f"{encode({'alg': 'HS256', 'typ': 'JWT'})}.{encode(payload)}.{_fake(43, 5)}"


def _pem(label: str, lines: int = 4) -> str:
    body = "\n".join(_fake(64, offset) for offset in range(lines)) + "\n" + _fake(24, 9) + "=="
    return f"-----BEGIN {label}-----\n{body}\n-----END {label}-----"


def _cases(kind: str, *pairs: tuple[str, str]) -> list[Planted]:
    return [Planted(kind, value, template.replace("{}", value)) for value, template in pairs]


_PHONES = _cases(
    "phone",
    ("+36 30 123 4567", "Hívj fel a {} számon holnap délelőtt."),
    ("06 30 123 4567", "A mobilom {}, este is elérhető vagyok."),
    ("06 30 123 4567", "Kérlek, a {}-es számot írd be az űrlapba."),
    ("06-1-234-5678", "Az iroda száma {} (munkanapokon kilenctől ötig)."),
    ("+36 (1) 234 5678", "Budapesti vezetékes: {}."),
    ("+36 1 234 5678", "Írd be a(z) {} számot a kapcsolatfelvételi űrlapba."),
    ("0036 30 123 4567", "Külföldről így hívható: {}."),
    ("06 20 987 6543", "Kérem, hívjon a {} telefonszámon."),
    ("+36-70-555-1234", "Telefon: {} — Kovács Anna"),
    ("(06 1) 234 5678", "Ügyfélszolgálat {} hétköznap."),
    ("30/123-4567", "Mobil: {}, fax nincs."),
    ("1/234-5678", "Tel.: {} (titkárság)"),
    ("06-30/123-4567", "Elérhetőség: {} (Péter)"),
    ("+36301234567", "WhatsApp: {} 😀"),
    ("06301234567", "SMS-t küldj a {} számra."),
    ("+49 30 1234567", "Ruf mich unter {} an, bitte."),
    ("+49 151 23456789", "Meine Handynummer ist {}."),
    ("0049 30 1234567", "Aus Ungarn wählen Sie {}."),
    ("+49 (0)30 1234567", "Telefon {} (Zentrale), Grüße aus Köln!"),
    ("+41 44 668 18 00", "Zürich erreichen Sie unter {}."),
    ("+43 1 53422", "Wien: {}."),
    ("+44 20 7946 0958", "Our London office is on {}."),
    ("+44 7700 900123", "My UK mobile is {} if you need me."),
    ("+1 (202) 555-0143", "Call the US desk at {} before noon."),
    ("+1-202-555-0143", "Fax: {}"),
    ("+1 415 555 2671", "Text me at {} if the build breaks."),
    ("+33 1 23 45 67 89", "Le bureau de Paris: {}."),
    ("+420 601 123 456", "Prague contact: {}."),
    ("+48 22 123 45 67", "Warsaw: {}"),
    ("+81 3-1234-5678", "Tokyo office: {}."),
    ("+61 2 9374 4000", "Sydney team ({}) joins at 9."),
    ("06 (30) 123-4567", "Hívható: {} este hatig."),
    ("+36 30/123-4567", "Mobil: {}; e-mailt ne küldj."),
    ("06-20-123-45-67", "A szerelő száma {}."),
    ("(+36) 30 123 4567", "Telefonszám {} — köszönöm!"),
    ("+36-1-234-5678", "tel:{}"),
    ("+36.30.123.4567", "Visitenkarte: {}"),
    ("06-1/234-5678", "Titkárság: {}/123-as mellék."),
    ("＋３６ ３０ １２３ ４５６７", "Teljes szélességű számjegyek: {}."),
    ("+44 (0) 20 7946 0958", "London (switchboard): {}."),
)

_EMAILS = _cases(
    "email",
    ("john.doe@example.com", "Please forward the report to {} by Friday."),
    ("kovacs.eva@example.hu", "Írj nekem: {}, köszönöm!"),
    ("john.doe+newsletter@mail.example.co.uk", "I signed up as {} last year."),
    ("j.smith@sub.domain.example.org", "Contact {} for access."),
    ("anna-maria_mueller@firma.de", "Bitte schreiben Sie an {}."),
    ("kovács.józsef@példa.hu", "Az ékezetes címem {} — működik?"),
    ("büro@müller-gmbh.de", "Rechnungen bitte an {} senden."),
    ("First.Last@Example.COM", "Case should not matter: {}."),
    ("user%tag@example.net", "Legacy routing: {}"),
    ("info@ugyfelszolgalat.gov.hu", "Panasz esetén: {}"),
    ("max.mustermann@t-online.de", "Meine Adresse lautet {}."),
    ("peter.nagy@example.com", "Kérdés esetén ({}) keress."),
    ("jane@example.org", "From: Jane Roe <{}>"),
    ("hr@example.com", 'Click <a href="mailto:{}">here</a> to apply.'),
    ("12345@numbers.example.com", "Numeric local parts work too: {}"),
    ("dev.team@company.io", "Send logs to {}; we read them daily."),
    ("a.b-c_d@x-y.example.travel", "Long TLD: {}"),
)

_IBANS = _cases(
    "iban",
    ("HU42 1177 3016 1111 1018 0000 0000", "Utald a pénzt a {} számlára, légy szíves."),
    ("HU42117730161111101800000000", "Számlaszám (IBAN): {}"),
    ("HU93 1160 0006 0000 0000 1234 5676", "A bérlet díját a {} számlára kérjük."),
    ("HU27120100080012345600000000", "Cégünk számlája: {}."),
    ("DE89 3704 0044 0532 0130 00", "Bitte überweisen Sie an {}."),
    ("DE89370400440532013000", "IBAN: {} (Sparkasse)"),
    ("GB29 NWBK 6016 1331 9268 19", "Pay the invoice to {} within 30 days."),
    ("GB29NWBK60161331926819", "Account {} is ours."),
    ("FR14 2004 1010 0505 0001 3M02 606", "Virement vers {} s'il vous plaît."),
    ("AT61 1904 3002 3457 3201", "Konto in Wien: {}"),
    ("CH93 0076 2011 6238 5295 7", "Swiss account {}."),
    ("NL91 ABNA 0417 1643 00", "Dutch IBAN {} for the refund."),
    ("ES91 2100 0418 4502 0005 1332", "Cuenta: {}"),
    ("IT60 X054 2811 1010 0000 0123 456", "Conto {} (Milano)"),
    ("BE68 5390 0754 7034", "Belgian account {}."),
    ("PL61 1090 1014 0000 0712 1981 2874", "Przelew na {}."),
    ("NO93 8601 1117 947", "Norwegian IBAN {} is the shortest."),
    ("MT84 MALT 0110 0001 2345 MTLC AST0 01S", "Malta: {}"),
    ("BR97 0036 0305 0000 1000 9795 493P 1", "Brazil: {}"),
)

_CARDS = _cases(
    "card",
    ("4111 1111 1111 1111", "A kártyaszámom {}, lejárat 12/27."),
    ("4111111111111111", "Card: {}"),
    ("4111-1111-1111-1111", "Charge {} for the renewal."),
    ("4012 8888 8888 1881", "Meine Kreditkarte: {}."),
    ("5555 5555 5555 4444", "Mastercard {} was declined."),
    ("5105-1051-0510-5100", "Try {} instead."),
    ("3782 822463 10005", "Amex {} (CVC 1234)."),
    ("378282246310005", "Amex compact {}"),
    ("3714 496353 98431", "Second Amex: {}."),
    ("6011 1111 1111 1117", "Discover {} works in the sandbox."),
    ("3056 9309 0259 04", "Diners {}."),
    ("3530 1113 3330 0000", "JCB: {}"),
    ("4222222222222", "Old 13-digit Visa {}."),
    ("2223 0031 2200 3222", "New Mastercard range {}."),
    ("4917 6100 0000 0000 003", "19-digit Visa {}."),
    ("4000 0566 5566 5556", "Debit {}; CVC 123."),
    ("6200000000000005", "UnionPay {}."),
)

_IPS = _cases(
    "ip",
    ("10.0.0.1", "The database runs on {} in the VPC."),
    ("192.168.1.254", "A router címe {}, a jelszót ne küldd el."),
    ("172.16.254.1", "Gateway {}."),
    ("8.8.8.8", "DNS: {}"),
    ("203.0.113.42", "Login from {} was blocked."),
    ("255.255.255.255", "Broadcast {}."),
    ("192.168.0.10", "Open http://{}:8080/admin in the browser."),
    ("10.20.30.40", "ssh root@{} -p 2222"),
    ("2001:db8::1", "IPv6: {}"),
    ("::1", "It listens on {} only."),
    ("fe80::1ff:fe23:4567:890a", "Link-local {} on eth0."),
    ("2001:0db8:85a3:0000:0000:8a2e:0370:7334", "Full form {}."),
    ("::ffff:192.0.2.128", "Mapped address {}."),
    ("fe80::1%eth0", "Scoped {}"),
    ("2001:db8::ff00:42:8329", "Use https://[{}]:443/ for the test."),
    ("2001:db8:0:0:1:0:0:1", "Uncompressed {}."),
    ("fd12:3456:789a:1::1", "ULA {} inside the cluster."),
    ("10.0.0.0", "Allow {}/8 in the firewall."),
)

_SECRET_URLS = _cases(
    "url",
    ("https://user:pass@example.com/private", "Clone from {} please."),
    ("ftp://admin:hunter2@files.example.org/pub/", "Fájlok: {}"),
    ("postgres://app:S3cr3t!x@db.example.com:5432/analytics", "DATABASE_URL={}"),
    ("https://api.example.com/v1/items?access_token=abc123def456", "GET {} returned 401."),
    ("https://example.com/reset?token=Zm9vYmFyYmF6", "Password reset link: {}."),
    ("https://example.com/callback?state=xyz&code=4/0AbCdEf", "Redirected to {} after login."),
    ("https://bucket.s3.amazonaws.com/report.pdf?X-Amz-Signature=0f1e2d3c4b5a", "Presigned: {}"),
    ("https://storage.example.net/blob?sv=2022&sig=abcDEF123%3D", "SAS URL {}"),
    ("https://app.example.com/#access_token=ya29.a0AfH6S", "The implicit flow gave {}."),
    ("https://example.com/api?apiKey=12345abcde", "Der Link {} enthält den Schlüssel."),
    ("https://shop.example.com/cart;jsessionid=1A2B3C4D5E", "Session URL {}."),
    ("https://example.com/admin?password=hunter2", "Never send {} in chat."),
    ("https://hooks.example.com/trigger?secret=s3cr3t", "Webhook: {}"),
    ("https://example.com/login?sid=98ab76cd", "Bejelentkezés: {}"),
    ("https://example.com/x?auth=YWxhZGRpbjpvcGVuc2VzYW1l", "Auth link {}."),
    ("https://ghp_user:x-oauth-basic@github.com/org/repo.git", "Remote {} is set."),
    ("https://example.com/download?session=abc&file=a.zip", "Download ({}) expires soon."),
)

_SECRETS = _cases(
    "secret",
    ("sk-" + _fake(48), "My OpenAI key is {} — is it leaked?"),
    ("sk-proj-" + _fake(64, 3) + "-" + _fake(20, 4), "OPENAI_API_KEY={}"),
    ("sk-ant-api03-" + _fake(80, 1), "Anthropic: {}"),
    ("ghp_" + _fake(36, 2), "export GITHUB_TOKEN={}"),
    ("gho_" + _fake(36, 6), "OAuth token {}."),
    ("ghs_" + _fake(36, 8), "App token: {}"),
    ("github_pat_" + _fake(22, 1) + "_" + _fake(59, 2), "Fine-grained PAT {}."),
    ("xoxb-" + "123456789012-" + _fake(24, 3), "Slack bot token {}"),
    ("xoxp-" + "123456789012-123456789012-" + _fake(32, 4), "User token: {}."),
    ("xoxa-2-" + _fake(30, 5), "Slack app {}"),
    ("AKIAIOSFODNN7EXAMPLE", "aws_access_key_id = {}"),
    ("AKIA" + _fake(16, 7).upper(), "A hozzáférési kulcs: {}."),
    ("AIza" + _fake(35, 9), "Google Maps key {} in the frontend."),
    (_jwt({"sub": "1234567890", "name": "Kovács Éva", "iat": 1516239022}), "JWT: {}"),
    (_jwt({"user_id": 42, "role": "admin"}), "The cookie held {}; is that safe?"),
    ("dXNlcjpwYXNzd29yZA", "Authorization: Basic {}"),
    ("abc123def456ghi789", "curl -H 'Authorization: Bearer {}' https://api.example.com"),
    (_fake(40, 11), "Authorization: Bearer {}"),
    ("tok_" + _fake(24, 12) + "9", "headers = {'Authorization': 'bearer {}'}"),
    (_pem("RSA PRIVATE KEY"), "Here is the key:\n{}\nDo not share it."),
    (_pem("PRIVATE KEY", 6), "```\n{}\n```"),
    (_pem("OPENSSH PRIVATE KEY", 3), "id_ed25519:\n{}"),
    (_pem("EC PRIVATE KEY", 2), "Der EC-Schlüssel: {} (bitte löschen)"),
    (_pem("ENCRYPTED PRIVATE KEY", 5), "Encrypted: {}."),
)

# National formats of every default region (`DEFAULT_PII_REGIONS`), as people write them at home.
_NATIONAL_PHONES = _cases(
    "phone",
    ("030 1078001", "Ruf mich im Büro an: {}."),
    ("0151 23456789", "Meine Handynummer ist {}, ab 18 Uhr."),
    ("(030) 12345678", "Zentrale {} — bitte Durchwahl angeben."),
    ("0221 9876543", "Köln erreichen Sie unter {}."),
    ("0664 1234567", "Mein Handy (A1): {}."),
    ("01 5878888", "Wien, Festnetz: {}."),
    ("020 7946 0958", "Call the London office on {} today."),
    ("07911 123456", "My mobile is {} if it is urgent."),
    ("(0121) 496 0456", "Birmingham branch: {}."),
    ("01 23 45 67 89", "Le standard à Paris : {}."),
    ("06 12 34 56 78", "Mon portable : {}, merci."),
    ("02 1234 5678", "L'ufficio di Milano è al {}."),
    ("347 123 4567", "Il mio cellulare: {}."),
    ("912 345 678", "Llámame a la oficina de Madrid: {}."),
    ("612 345 678", "Mi móvil es {}."),
    ("020 123 4567", "Bel ons kantoor in Amsterdam: {}."),
    ("06 12345678", "Mijn mobiel: {}."),
    ("22 123 45 67", "Biuro w Warszawie: {}."),
    ("512 345 678", "Mój numer komórki to {}."),
    ("601 123 456", "Zavolejte mi na {}."),
    ("224 123 456", "Praha, pevná linka: {}."),
    ("0905 123 456", "Môj mobil je {}."),
    ("02 2345 6789", "Bratislava: {}."),
    ("021 123 4567", "Biroul din București: {}."),
    ("0721 234 567", "Numărul meu de mobil: {}."),
    ("(555) 223-8371", "Call me at {} after lunch."),
    ("(202) 555-0143", "The DC desk is {}."),
    ("415.555.2671", "Text {} when you land."),
    ("(212) 736-5000", "Reservations: {}."),
    ("(416) 555-0123", "Toronto team: {}."),
    ("604-555-0199", "Vancouver: {} (ask for the night shift)."),
)

# Checksum-verified identifiers: Hungarian TAJ and tax id, German tax id; US SSN by its structure.
_NATIONAL_IDS = _cases(
    "national_id",
    ("123 456 788", "A TAJ számom {}, kérlek írd be."),
    ("037462019", "TAJ: {}"),
    ("987-654-322", "Társadalombiztosítási azonosító: {}."),
    ("055198309", "A beteg TAJ-a {} (ellenőrizve)."),
    ("8123456786", "Adóazonosító jelem: {}."),
    ("8374620129", "Az adóazonosító jel {}, a bérszámfejtésnek kell."),
    ("8451239870", "Adóazonosító: {}"),
    ("86095742719", "Meine Steuer-ID lautet {}."),
    ("65 929 970 489", "Steuerliche Identifikationsnummer: {}."),
    ("47036892816", "IdNr {} für die Lohnabrechnung."),
    ("536-22-8726", "My SSN is {}, please keep it private."),
    ("219-09-9998", "SSN: {}"),
    ("123 45 6789", "Social security number {} on the W-2."),
)

# Names a salutation, title, honorific or sign-off marks (not users of the deployment).
_NAMES = _cases(
    "name",
    ("Anna", "Dear {},\nthe report is attached."),
    ("Tom", "Hi {}, can you review my pull request?"),
    ("John Smith", "Hello {}! Thanks for the quick reply."),
    ("Smith", "I spoke with Mr. {} about the contract."),
    ("Jones", "Mrs. {} will join the call."),
    ("Emily Watson", "Dr. {} reviewed the protocol."),
    ("Hans Becker", "Prof. {} leads the study."),
    ("O'Brien", "Please forward this to Mr. {}."),
    ("McDonald", "Dear Mrs. {},\nthank you for your letter."),
    ("Siobhan", "Hey {}!"),
    ("Sarah Connor", "Good morning {}, here is the draft."),
    ("Weber", "Ich habe gestern mit Herrn {} telefoniert."),
    ("Müller", "Frau {} ist heute im Urlaub."),
    ("Schmidt", "Sehr geehrte Frau {},\nvielen Dank für Ihre Nachricht."),
    ("Meier", "Sehr geehrter Herr Dr. {},\nanbei der Bericht."),
    ("Müller-Lüdenscheidt", "Sehr geehrter Herr {}, wir bestätigen den Termin."),
    ("Lukas", "Lieber {}, danke für die Hilfe!"),
    ("Jana", "Hallo {}, wie geht es dir?"),
    ("Péter", "Kedves {}! Köszönöm a gyors választ."),
    ("Kovács Péter", "Kedves {}!\nMellékelem a szerződést."),
    ("Nagy Anna", "Tisztelt {}!"),
    ("Szabó", "Tisztelt {} Úr! Köszönjük megkeresését."),
    ("Tóth", "Tegnap beszéltem {} úrral a projektről."),
    ("Horváth Eszter", "Tisztelt Dr. {}!"),
    ("Zsófi", "Szia {}, ráérsz holnap?"),
    ("Anna Kovács", "Best regards,\n{}"),
    ("Mark", "Thanks,\n{}"),
    ("Jennifer Lopez-Garcia", "Kind regards,\n{}\nHead of Procurement"),
    ("Tom", "Let me know what you think. Cheers, {}"),
    ("Hans Meier", "Mit freundlichen Grüßen\n{}"),
    ("Katrin", "Viele Grüße\n{}"),
    ("Nagy Péter", "Üdvözlettel:\n{}"),
    ("Eszter", "Köszönettel,\n{}"),
    ("Kiss Balázs", "Tisztelettel:\n{}\nügyvezető"),
    ("Kovács Zsófia", "Thanks, {}. Also see the attachment."),
    ("von der Leyen", "Frau {} hat zugestimmt."),
    ("Whitfield", "Sehr geehrter Herr Prof. Dr. {},"),
    ("Anna", "Viele Grüße {}"),
)

PLANTED: tuple[Planted, ...] = (
    *_PHONES,
    *_EMAILS,
    *_IBANS,
    *_CARDS,
    *_IPS,
    *_SECRET_URLS,
    *_SECRETS,
    *_NATIONAL_PHONES,
    *_NATIONAL_IDS,
    *_NAMES,
)

LOOKALIKES: tuple[str, ...] = (
    # dates, times, timestamps
    "A megbeszélés 2026-03-29-én lesz a nagyteremben.",
    "Határidő: 29.03.2026, 10:30.",
    "2026. március 29., 14:45-kor kezdünk.",
    "Am 29.03.2026 um 10:30 Uhr, bitte pünktlich.",
    "Logged at 2026-03-29T10:30:00Z and 2026-03-29T10:30:00.123+02:00.",
    "Created 2026-03-29 10:30:45 UTC, expires 03/2026, card valid thru 12/27.",
    "Run took 1:23:45.678 and started at 12:30:45.",
    # versions
    "Upgrade from v2.10.4 to 3.11.9; semver 1.2.3-beta.1+build.5 is fine.",
    "Python 3.11.4, numpy 1.26.4 and Django 5.0.1 are pinned.",
    "10.0.0 is a version number, not an address.",
    "Version 1.2.3.4.5 has five parts.",
    "Chapter 3.2.1 and section 4.5 explain it.",
    # IP-like fragments
    "The subnet fragment 192.168.1 is incomplete.",
    "999.1.1.1 and 256.256.256.256 are not valid addresses.",
    "MAC 00:1A:2B:3C:4D:5E is printed on the box.",
    # numbers, amounts, orders
    "We processed 12345 rows, then 67890, then 100000.",
    "Ár: 1 234 567 Ft, azaz 1,234,567 HUF.",
    "Ára 12 345 678 Ft bruttó.",
    "Preis: 12.345,67 € netto.",
    "Price $1,299.99 or 1299 USD.",
    "Order #4111 1111 1111 1112 failed.",
    "Rendelésszám: 1234567890123, szállítás holnap.",
    "Order 1234 5678 9012 3456 7890 was split.",
    "ID: 20260329-000123, invoice 2026/0001234.",
    "ISBN 978-3-16-148410-0 on the back cover.",
    "Large number 123456789012345678901234567890 overflowed.",
    '{"ts": 1711705800123, "id": 4500012345, "amount": 1299.5}',
    "Kiszállítás 3–5 munkanap, 1-2 db, 10:00–18:00 között.",
    "Vonalkód (EAN-13): 5901234123457, cikkszám 30-123-4567-A.",
    "Bestellnummer 100234567, Kundennummer 7654321, PLZ 10115 Berlin.",
    "Irányítószám 1052 Budapest, Váci utca 12., 3. emelet.",
    "The ratio was 3/4 and 1/2 of the budget.",
    "Coordinates 47.4979, 19.0402 mark the city centre.",
    "score 98.6%, 12.5 km, 3 x 4 = 12.",
    # IBAN-shaped strings with a wrong checksum
    "Wrong IBAN HU42 1177 3016 1111 1018 0000 0001 (last digit changed).",
    "Falsche IBAN DE89 3704 0044 0532 0130 01.",
    "GB00 NWBK 6016 1331 9268 19 has zero check digits.",
    "HU12345678901234567890123456 is not a checksum-valid account.",
    # text, paths, URLs, code
    "e.g. this, i.e. that, etc. – cf. the appendix.",
    "Edit /home/user/projects/app/main.py or C:\\Users\\dev\\Documents\\report.docx.",
    "See https://docs.python.org/3/library/ipaddress.html for details.",
    "Search https://example.com/search?q=redaction&page=2&sort=asc please.",
    "Read https://github.com/python/cpython/blob/main/README.rst#build-instructions.",
    "Open https://example.com/?keyword=python&monkey=1 now.",
    "Mirror: ftp://ftp.example.org/pub/file.tar.gz",
    "for i in range(10):\n    print(i * 2)\nitems[::2], items[1::3], items[::-1]",
    "std::vector<int> v; Foo::bar(); a::b",
    "api_key = os.environ['OPENAI_API_KEY']\nheaders = {'Authorization': f'Bearer {api_key}'}",
    "Authorization: Bearer $TOKEN",
    "The token count was 12345; max_tokens=4096.",
    "sk-learn is how some people misspell scikit-learn.",
    "Basic understanding of bearer bonds helps.",
    "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----",
    "UUID 123e4567-e89b-12d3-a456-426614174000 identifies the row.",
    "git commit a3f5c9e1b2d4f6a8c0e2b4d6f8a0c2e4b6d8f0a2",
    "sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "Write to user@localhost or @kovacs on Slack.",
    "name at example dot com",
    "port 8080, localhost:3000, 127.0.0 (truncated)",
    # versions, order and invoice numbers, dates, amounts, times (issue 12)
    "Version 1.2.3 and v10.0.19045 are installed; kernel 6.1.0-18-amd64.",
    "Invoice INV-2024-000123 is overdue.",
    "Order #5551234 shipped yesterday; order #2025550143 is still open.",
    "Rechnungsnummer 3012345678, Kundennummer 0301078001, Auftrag 0151234567.",
    "Rendelésszám: 0612345678, számlaszám 2026/000123.",
    "Dates: 2026-03-14, 14.03.2026, 03/14/2026 and 2026-03-14T22:15:07Z.",
    "Amounts: €1,234.56, 1 234 567 Ft, $12,345.00 and 12 345 678,90 EUR.",
    "Times: 10:30, 22:15:07 and 08:00-17:30.",
    "Build 2026-03-14 10:30:15 started, finished 2026-03-14 10:42:03.",
    "Tracking number 1Z999AA10123456784 via UPS.",
    # code
    "UUID 550e8400-e29b-41d4-a716-446655440000 and hex 0x7fff5fbff8a8 in the dump.",
    "Listening on port 5432 and 8080; the error is at line 1078 of main.py.",
    "x = 1234567 * 89 + 2026 - 3012345",
    'File "app.py", line 2101, in handler\n    total = 2025550143 // 7',
    'DearImGui::Begin("Window"); ImGui::Text("Hi %s", name);',
    "if (mr.Value > 0) { Dr.Load(config); Herr_Mueller = 3; }",
    'print("Hello World!")\nconsole.log("Hallo Welt");',
    # salutations and sign-offs that carry no name
    "Dear Sir or Madam,\nplease find the offer attached.",
    "Dear all, the release is out.",
    "Hi there, quick question about pandas.",
    "Hi team, the build is green again.",
    "Hi ChatGPT, can you explain recursion?",
    "Hi, Can you help me with Excel?",
    "The Dear John letter is a literary trope.",
    "Sehr geehrte Damen und Herren,\nanbei das Angebot.",
    "Hallo zusammen, kurze Frage zum Deployment.",
    "Kedves Kollégák! Holnap nincs állóértekezlet.",
    "Tisztelt Ügyfelünk! Számláját mellékelten küldjük.",
    "Kedves Mindenki, köszönöm a segítséget!",
    "Thanks,\nThe Release Team",
    "Best regards,\nACME Support",
    "Thanks, that worked!",
    "Der Herr der Ringe ist lang; Frau und Mann, Hi-Fi equipment.",
    "HTTP/1.1 200 OK; Content-Length: 5551234",
    "Tisztelt Cím! Kedves Ügyfelünk!",
    "Sehr geehrte Kundin, sehr geehrter Kunde,",
    "Dear Customer,\nDear Hiring Manager,",
    "Liebe Grüße aus Berlin! Guten Tag, wie kann ich helfen?",
    "Mit freundlichen Grüßen\nIhr Support-Team",
    "Üdvözlettel:\nA Csapat",
    "Best regards,\nThe Marketing Team",
    "Thanks, Python 3.12 fixed it.",
    "Best Practices\nThanks Google for the docs.",
    "Good morning everyone, Sziasztok! Holnap 10-kor kezdünk.",
    "ISBN 978-0-306-40615-7, serial SN-0301078001-X.",
    "Temperature 36.6 °C, pressure 1013 hPa, population 83 200 000.",
    "Git SHA 0301078 in the log; commit 0301078001abc.",
    "Revenue grew from 1 234 567 to 2 345 678 EUR.",
    "Tickets 2025-001234 and 2025-001235 are closed.",
    "The meeting is 0930-1030 tomorrow.",
    "Matrikelnummer 0123456, Raum 0.301, PLZ 01067 Dresden.",
    "SELECT * FROM t WHERE id = 0301078001; ticket #0301078001",
    '{"id": 4500012345, "ts": 1711705800, "count": 7012345678}',
    # identifiers whose checksum or structure fails
    "TAJ szám: 123 456 789 (hibás ellenőrző jegy).",
    "Adóazonosító jel: 8123456780 — rossz, újra kell kérni.",
    "Steuer-ID 86095742718 ist ungültig (Prüfziffer falsch).",
    "Steuer-ID 12345678903 hat keine doppelte Ziffer.",
    "SSN 000-12-3456, 666-45-6789, 900-12-3456, 123-00-4567 and 123-45-0000 are never issued.",
    # accents and emoji
    "Árvíztűrő tükörfúrógép — ÁRVÍZTŰRŐ TÜKÖRFÚRÓGÉP!",
    "Größe, Übermaß, Straße — schön! 🎉",
    "Emoji 😀👍🏽🇭🇺 and ligatures ﬁ ﬂ.",
)


_PLACEHOLDER = re.compile(r"\[[A-Z_]+\]")


def recall_and_survival(redact: Callable[[str], str]) -> tuple[float, float, list[Planted], list[str]]:
    """(recall, look-alike survival, planted values missed, look-alikes damaged) of `redact`.

    A planted value counts as caught when it no longer appears in the output and a
    placeholder does (of any kind: an older redactor may call a TAJ a phone number);
    a look-alike survives when the output equals the input.
    """
    missed = [
        case
        for case in PLANTED
        if case.value in (out := redact(case.sentence)) or _PLACEHOLDER.search(out) is None
    ]
    damaged = [text for text in LOOKALIKES if redact(text) != text]
    return 1 - len(missed) / len(PLANTED), 1 - len(damaged) / len(LOOKALIKES), missed, damaged
