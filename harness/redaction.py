"""Personal-data redaction (storage mode `redacted`): emails, phone numbers, payment cards
(Luhn-checked), IBANs (ISO 13616-checked) and account numbers, SSN-like numbers and IP
addresses become `[email]`, `[phone]`, `[card]`, `[iban]`, `[account]`, `[ssn]`, `[ip]`.

Pattern based: it errs on the side of removing too much (a 10-digit product code may become
`[phone]`), never on the side of keeping an address. Pure; `harness.privacy` applies it.
"""

from __future__ import annotations

import re

_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}")
# IBAN: country, check digits, 11-30 alphanumerics, optionally in groups of four.
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]){11,30}\b")
# Payment cards: 13-19 digits, optionally grouped by spaces or dashes; kept only if Luhn-valid.
_CARD = re.compile(r"(?<![\w.])\d(?:[ \-]?\d){12,18}(?![\w.])")
_SSN = re.compile(r"\b\d{3}-\d{2}-\d{4}\b")
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_IPV4 = re.compile(rf"\b(?:{_OCTET}\.){{3}}{_OCTET}\b")
# IPv6: full forms with at least five groups, or any compressed form with "::".
_IPV6 = re.compile(
    r"(?<![\w:])(?:[0-9A-Fa-f]{1,4}:){5,7}[0-9A-Fa-f]{1,4}(?![\w:])"
    r"|(?<![\w:])(?:[0-9A-Fa-f]{1,4}:){1,6}:(?:[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4}){0,5})?(?![\w:])")
# An account / routing / sort-code number introduced by its label.
_ACCOUNT = re.compile(
    r"(?i)\b((?:account|acct|a/c|routing|sort\s+code|bsb|iban)\s*(?:no\.?|number|num|#)?"
    r"\s*[:#]?\s*)[A-Z]{0,4}\d[\d \-]{4,32}\d")
# Phone numbers: optional +country, optional (area), 7-15 digits in groups.
_PHONE = re.compile(
    r"(?<![\w+])(?:\+\d{1,3}[ .\-]?)?(?:\(\d{1,5}\)[ .\-]?)?\d{2,5}(?:[ .\-]\d{2,5}){1,4}(?!\w)"
    r"|(?<![\w+])\+\d{7,15}(?!\w)|(?<!\w)\d{10,11}(?!\w)")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$|^\d{1,2}[./\-]\d{1,2}[./\-]\d{2,4}$")
_PII_HINT = re.compile(r"[@\d:]")


def luhn_valid(digits: str) -> bool:
    """Luhn checksum (ISO/IEC 7812-1 Annex B) of a digit string."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def iban_valid(text: str) -> bool:
    """ISO 13616 check: move the first four characters to the end, letters to 10..35,
    and the number mod 97 must be 1."""
    s = text.replace(" ", "").upper()
    if not 15 <= len(s) <= 34:
        return False
    moved = s[4:] + s[:4]
    try:
        return int("".join(str(int(c, 36)) for c in moved)) % 97 == 1
    except ValueError:
        return False


def _card(m: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", m.group(0))
    return "[card]" if 13 <= len(digits) <= 19 and luhn_valid(digits) else m.group(0)


def _iban(m: re.Match[str]) -> str:
    return "[iban]" if iban_valid(m.group(0)) else m.group(0)


def _phone(m: re.Match[str]) -> str:
    s = m.group(0)
    digits = sum(ch.isdigit() for ch in s)
    if _ISO_DATE.match(s.strip()):
        return s
    # Decimal numbers and version strings ("3.14 2.71", "1.2.3") are not phone numbers
    # unless they carry a + or parentheses.
    if "." in s and " " not in s and "-" not in s and "+" not in s and "(" not in s:
        return s
    if 7 <= digits <= 15:
        return "[phone]"
    return s


def redact_personal(text: str) -> str:
    """Replace emails, phone, card (Luhn), IBAN/account, SSN-like numbers and IP addresses.

    Order matters: emails and structured numbers (IBAN, card, SSN, IP) go before the
    generic phone pattern so each is named by its most specific placeholder.
    """
    if not _PII_HINT.search(text):
        return text
    text = _EMAIL.sub("[email]", text)
    text = _IBAN.sub(_iban, text)
    text = _CARD.sub(_card, text)
    text = _SSN.sub("[ssn]", text)
    text = _IPV4.sub("[ip]", text)
    text = _IPV6.sub("[ip]", text)
    text = _ACCOUNT.sub(lambda m: m.group(1) + "[account]", text)
    return _PHONE.sub(_phone, text)
