"""Mask secrets, and only secrets, before anything reaches the trace store, the logs or an export.

A secret is a value: a token of a known format (detect-secrets' format detectors plus the
formats they lack: OpenAI project and service-account keys, Anthropic keys, whole JWTs), a
high-entropy quoted string (detect-secrets' entropy measure and limits), a literal assigned
to a name that says it is a secret (`password = "..."`, `API_KEY=...`, `x-api-key: ...`), a
token in a command line or header (`--password X`, `mysql -pX`, `Authorization: Bearer X`,
`aws configure set aws_secret_access_key X`), a URL's password, or the body of a private
key block. A code expression is never a secret: `secret_key=secret_key`, `token =
self._token`, `password = getpass()`, `api_key: str` stay as written, because the store is
also training data and a model that learns asterisks is worse than useless. Placeholders
(`<token>`, `${TOKEN}`, `changeme`, `xxxx`, `[MASK]`) are allowed, as gitleaks allows them.

Masking keeps the text's length (each secret character becomes `*`), so the offsets of
recorded edits stay valid. Every pattern either starts at a fixed literal or at a token
boundary and has bounded repetition, so detection is linear in the line's length: a
megabyte-long minified line costs milliseconds, not minutes. A cheap pre-filter skips the
lines that cannot hold a secret (most code lines).
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from functools import lru_cache
from typing import Any

MASK = "*"

# A line can hold a secret only if it names one, carries credentials in a URL or a flag,
# or has a long run of token characters (every key format and every high-entropy string
# has one). Both alternatives are linear: no lookahead, bounded runs.
_CANDIDATE = re.compile(
    r"(?i)pass|pwd|secret|token|key|auth|credential|bearer|cookie|://|sshpass|mysql|mariadb"
    r"|[A-Za-z0-9+/=_\-.]{16}"
)

_TOKEN_CHARS = r"A-Za-z0-9_\-"
_B = rf"(?<![{_TOKEN_CHARS}])"  # a token starts here
_E = rf"(?![{_TOKEN_CHARS}])"  # and ends here

# Known formats detect-secrets lacks, or matches only in part.
_FORMATS = [
    # OpenAI: sk-proj-..., sk-svcacct-..., sk-admin-..., and the older sk-<48>.
    rf"{_B}sk-(?:proj|svcacct|admin|None)-[A-Za-z0-9_\-]{{20,400}}{_E}",
    rf"{_B}sk-[A-Za-z0-9]{{32,64}}{_E}",
    # Anthropic: sk-ant-api03-..., sk-ant-admin01-..., sk-ant-oat01-...
    rf"{_B}sk-ant-[a-z]{{2,8}}\d{{2}}-[A-Za-z0-9_\-]{{20,400}}{_E}",
    # A whole JWT, signature included.
    rf"{_B}eyJ[A-Za-z0-9_\-]{{4,4000}}\.eyJ[A-Za-z0-9_\-]{{4,8000}}\.[A-Za-z0-9_\-]{{0,4000}}",
    rf"{_B}github_pat_[A-Za-z0-9_]{{60,100}}{_E}",
    rf"{_B}gh[pousr]_[A-Za-z0-9]{{36,80}}{_E}",
    rf"{_B}AIza[0-9A-Za-z_\-]{{35}}{_E}",  # Google API key
    rf"{_B}hf_[A-Za-z]{{30,40}}{_E}",  # Hugging Face
    rf"{_B}gsk_[A-Za-z0-9]{{48,56}}{_E}",  # Groq
    rf"{_B}r8_[A-Za-z0-9]{{37}}{_E}",  # Replicate
    rf"{_B}npm_[A-Za-z0-9]{{36}}{_E}",
    rf"{_B}dop_v1_[a-f0-9]{{64}}{_E}",  # DigitalOcean
    rf"{_B}(?:sk|rk)_(?:live|test)_[0-9a-zA-Z]{{20,120}}{_E}",  # Stripe secret / restricted
    rf"{_B}xox[abposr]-[A-Za-z0-9\-]{{10,200}}{_E}",  # Slack
    rf"{_B}(?:ASIA|AKIA|ABIA|ACCA|A3T[A-Z0-9])[0-9A-Z]{{16}}{_E}",  # AWS access key id
    rf"{_B}glpat-[A-Za-z0-9_\-]{{20,50}}{_E}",
    rf"{_B}key-[0-9a-f]{{32}}{_E}",  # Mailgun
    # Bounded forms of detect-secrets' unbounded patterns (see below).
    rf"{_B}sk-[A-Za-z0-9_\-]{{0,200}}?[A-Za-z0-9]{{20}}T3BlbkFJ[A-Za-z0-9]{{20}}",
    rf"{_B}pypi-AgE[A-Za-z0-9_\-]{{70,400}}{_E}",
    rf"(?<![A-Za-z0-9])AKC[a-zA-Z0-9]{{10,200}}{_E}",
    r"https://hooks\.slack\.com/services/T[A-Za-z0-9_]{1,40}/B[A-Za-z0-9_]{1,40}/[A-Za-z0-9_]{1,80}",
]

# detect-secrets' format detectors whose patterns are bounded (linear on any line). Its
# keyword, IP address and private-key-header detectors are replaced by the rules below,
# which raise fewer false alarms in code; its unbounded patterns (JWT, legacy OpenAI, PyPI,
# Artifactory, Slack) by the bounded equivalents above.
_DETECT_SECRETS_FORMATS = set(
    "AzureStorageKeyDetector DiscordBotTokenDetector GitHubTokenDetector"
    " GitLabTokenDetector MailchimpDetector SendGridDetector SquareOAuthDetector StripeDetector"
    " TelegramBotTokenDetector TwilioKeyDetector".split()
)


@lru_cache(maxsize=1)
def _format_patterns() -> tuple[re.Pattern[str], ...]:
    from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class

    patterns = [re.compile(p) for p in _FORMATS]
    cls: Any
    for cls in get_mapping_from_secret_type_to_class().values():
        if cls.__name__ in _DETECT_SECRETS_FORMATS:
            patterns.extend(cls().denylist)
    return tuple(patterns)


@lru_cache(maxsize=1)
def _entropy() -> tuple[Any, Any]:
    """detect-secrets' own entropy measures and default limits (the hex one discounts all-digit strings)."""
    from detect_secrets.plugins.high_entropy_strings import Base64HighEntropyString, HexHighEntropyString

    return Base64HighEntropyString(limit=4.5), HexHighEntropyString(limit=3.0)


# ------------------------------------------------------------------ keyword rules

# NAME <op> value, where NAME ends in a word that says "secret". The name is captured whole
# (bounded), the value is looked at in Python: only a literal that is not a placeholder is
# a secret.
_ASSIGN = re.compile(
    r"(?<![\w\-.])(?P<key>[A-Za-z_][\w.\-]{0,60})"
    r"(?P<kq>\\?[\"'`])?\]?\s{0,8}(?P<op>:=|=>|==|!=|=|:)\s{0,8}"
)
_KEYWORD = re.compile(r"(?i)pass|pwd|secret|token|key|credential|auth|pw")
_SECRET_WORDS = set(
    "password passwd passphrase secret token credential credentials apikey pwd pass pw".split()
)
# `<word>_key` is a secret when <word> says so (secret_key, api_key); `sort_key` is not.
_KEY_QUALIFIERS = set(
    "api access secret private signing client auth encryption master account app"
    " subscription service webhook license consumer storage admin x".split()
)
# Tokenizers name their special tokens `bos_token = "<s>"`: words, not secrets.
_NOT_SECRET_QUALIFIERS = set(
    "bos eos pad unk sep cls mask special start end begin next prev first last max"
    " min num n type kind default current cur new old is has use get set no by".split()
)

_PLACEHOLDER = re.compile(
    r"(?i)^(?:"
    r"[x*.#_\-]+|(?:x{3,}|\*{3,}).*|<[^>]*>?|\[[^\]]*\]?|\{[^}]*\}?|\(.*|\$.*|%.*|@.*|:.*|/.*|\.?\./.*|~/.*"
    r"|none|null|nil|true|false|undefined|empty|changeme|change[_\-]?me|secret|password|passwd|pass"
    r"|token|apikey|api[_\-]key|redacted|masked|hidden|dummy|fake|sample|example|placeholder|todo|tbd"
    r"|(?:your|my|the|some|an?|test|fake|dummy|example|sample|foo|bar)[_\-].*"
    r"|(?:test|dummy|fake|example|sample|demo)[_\-]?[A-Za-z]*\d{0,4}"
    r"|(?:password|passwd|secret|token|changeme|pass)\d{0,4}|(?:abc|xyz|qwerty)?123\d*"
    r"|#.*|.*::.*|[A-Za-z]+:[A-Za-z]+"
    r"|(?-i:[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+|[A-Z][a-z]+(?:-[A-Z][a-z]+)+)"  # NAMES, Header-Names
    r"|.*(?:\{\{|\}\}|\$\{|\$\(|%\().*"
    r")$"
)
_IDENTIFIER_PATH = re.compile(r"^[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*$")
_SYMBOLS = set("!#$%&*+/=?@^|~")


def is_secret_name(key: str) -> bool:
    """Whether a name (variable, setting, header, flag) says its value is a secret."""
    key = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", key.rsplit(".", 1)[-1])
    words = [w for w in re.split(r"[_\-]+", key.lower()) if w]
    if not words:
        return False
    last = words[-1]
    prev = words[-2] if len(words) > 1 else ""
    if prev in _NOT_SECRET_QUALIFIERS or "public" in words:  # public_key, public_api_token
        return False
    if last in _SECRET_WORDS:
        # `pass`, `pw`, `PWD` (the working directory) alone are not secrets
        return not (last in ("pass", "pw", "pwd") and len(words) == 1)
    if last == "key":
        return prev in _KEY_QUALIFIERS
    if last == "auth":
        return prev in ("basic", "http", "proxy")
    # PGPASSWORD, MYSQL_PWD-like run-together names
    return len(last) > 8 and last.endswith(
        ("password", "passwd", "secret", "apikey", "accesskey", "authtoken")
    )


def _looks_secret(value: str, *, strict: bool) -> bool:
    """A literal that could be a secret: not a placeholder, not prose, not trivially short.

    `strict` (for values of a name that could equally be code) asks for a digit, a symbol,
    mixed case or high entropy; a lowercase word like "secret-key" is a placeholder.
    """
    if len(value) < 4 or len(value) > 1000 or any(c.isspace() for c in value):
        return False
    if _PLACEHOLDER.match(value):
        return False
    if not strict:
        return True
    if len(value) < 6:
        return False
    has_digit = any(c.isdigit() for c in value)
    has_alpha = any(c.isalpha() for c in value)
    if has_digit and has_alpha:
        return True
    if any(c in _SYMBOLS for c in value) and (has_alpha or has_digit):
        return True
    if len(value) >= 8 and re.search(r"[a-z][A-Z]", value) and not _IDENTIFIER_PATH.match(value):
        return True  # mixed case inside the value, not a capitalised word or a camelCase name
    if re.fullmatch(r"[a-z.\-_]+", value):
        return False  # lower-case words: a name or a placeholder ("secret-key")
    return len(value) >= 12 and not _IDENTIFIER_PATH.match(value) and _shannon(value) >= 3.5


def _shannon(data: str) -> float:
    n = len(data)
    return -sum(k / n * math.log2(k / n) for k in Counter(data).values())


_UNQUOTED_END = re.compile(r"[\s,;'\"`&]")


def _assignment_spans(line: str) -> Iterator[tuple[int, int]]:
    for m in _ASSIGN.finditer(line):
        key = m.group("key")
        if not _KEYWORD.search(key) or not is_secret_name(key):
            continue
        if line[max(m.start() - 2, 0) : m.start()] == "::":
            continue  # a qualified type name: AWS::ApiGateway::ApiKey
        op = m.group("op")
        pos = m.end()
        if pos >= len(line):
            continue
        quote = line[pos]
        if quote == "\\" and pos + 1 < len(line) and line[pos + 1] in "\"'":  # JSON inside JSON
            pos += 1
            quote = line[pos]
        if quote in "\"'`":
            end = line.find(quote, pos + 1, pos + 1002)
            if end == -1:
                continue
            value = line[pos + 1 : end]
            if value.endswith("\\"):
                value = value[:-1]
            if line[pos - 1 : pos] in "fF" and "{" in value:
                continue  # an f-string built from variables
            if _looks_secret(value, strict=True):
                yield pos + 1, pos + 1 + len(value)
            continue
        if op in ("==", "!="):
            continue  # comparing with a name is code
        if op == ":" and not line[m.end("op") : m.end("op") + 1].isspace() and line[: m.start()].strip():
            # YAML puts a space after the colon, an INI line (`password:x`) starts with its
            # name; `arn:aws:secret:name` and `f(token:Token)` are neither.
            continue
        stop = _UNQUOTED_END.search(line, pos, pos + 1002)
        end = stop.start() if stop else min(len(line), pos + 1000)
        value = line[pos:end]
        if op == ":" and "=" in value:
            value = value.split("=", 1)[0]  # `name:Type=default`, an annotated parameter
        # NAME=value with no spaces and an upper-case name: a shell or .env assignment,
        # where a bare word is the value itself, not a variable.
        env_style = op == "=" and key.isupper() and m.group("kq") is None and line[m.end() - 1] == "="
        env_style = env_style and not line[m.start("op") - 1 : m.start("op")].isspace()
        if not value or (any(c in value for c in "()[]{}") if env_style else _is_code(value, line[end:])):
            continue
        if _looks_secret(value, strict=not env_style):
            yield pos, pos + len(value)


def _is_code(value: str, rest: str) -> bool:
    """An unquoted value that reads as a code expression: a name, attribute, call, subscript."""
    if any(c in value for c in "()[]{}"):
        return True
    if value.isdigit():
        return True
    if _IDENTIFIER_PATH.match(value):
        # `password = hunter2` closing a config line is a secret; a dotted name, a name
        # without digits, a CamelCase type or a name with more code after it is code.
        if "." in value or not any(c.isdigit() for c in value) or re.search(r"[A-Z][a-z]", value):
            return True
        return bool(rest.strip())
    return False


# ------------------------------------------------------------------ command lines and headers

_COMMAND_PATTERNS = [
    # aws configure set aws_secret_access_key KEY
    re.compile(
        r"aws\s{1,8}configure\s{1,8}set\s{1,8}(?:[\w\-]{1,40}\.)?"
        r"(?:aws_secret_access_key|aws_session_token|aws_access_key_id)\s{1,8}[\"']?(?P<s>[^\s'\"]{8,400})"
    ),
    # mysql -pS3cret (a -p flag joined to its value, on a mysql command line only)
    re.compile(r"(?:mysql|mysqldump|mysqladmin|mariadb)\b[^\n]{0,200}?\s-p(?P<s>[^\s'\"]{3,200})"),
    re.compile(r"sshpass\s{1,8}-p\s{0,8}[\"']?(?P<s>[^\s'\"]{3,200})"),
    # curl -u user:password
    re.compile(
        r"(?:curl|wget|http)\b[^\n]{0,200}?\s(?:-u|--user)[\s=]{1,8}[\"']?[^\s:'\"]{1,100}:(?P<s>[^\s'\"@]{3,200})"
    ),
    # Authorization: Bearer xyz / Basic xyz / token xyz; `authorization = ...` is code
    # unless a scheme word follows.
    re.compile(
        r"(?i)(?<![\w\-])(?:proxy-)?authorization\\?[\"']?\]?\s{0,4}"
        r"(?::\s{0,4}\\?[\"']?\s{0,2}(?:(?:bearer|basic|token|bot|digest|apikey|sso-key)\s{1,4})?"
        r"|=\s{0,4}\\?[\"']?\s{0,2}(?:bearer|basic|token|bot|digest|apikey|sso-key)\s{1,4})"
        r"(?P<s>[A-Za-z0-9._~+/=:\-]{8,4000})(?![(\[])"
    ),
]
# --password X, --token=X, --api-key X (a flag that names a secret, then its value)
_FLAG = re.compile(r"(?<![\w\-])--(?P<key>[a-z][a-z0-9\-]{1,40})(?:=|\s{1,4})[\"']?(?P<s>[^\s'\"]{4,400})")
# scheme://user:password@host
_URL_PASSWORD = re.compile(r"://[^\s:/?#@'\"<>]{1,256}:(?P<s>[^\s/?#@'\"<>]{1,512})@")


def _command_spans(line: str) -> Iterator[tuple[int, int]]:
    for rx in _COMMAND_PATTERNS:
        for m in rx.finditer(line):
            value = m.group("s")
            if _IDENTIFIER_PATH.match(value) and not any(c.isdigit() for c in value):
                continue  # a name or attribute: `Authorization: self.token`
            if _looks_secret(value, strict=False):
                yield m.start("s"), m.end("s")
    if "--" in line:
        for m in _FLAG.finditer(line):
            value = m.group("s")
            secret = is_secret_name(m.group("key")) and not value.startswith("-") and not value.isupper()
            if secret and _looks_secret(value, strict=True):
                yield m.start("s"), m.end("s")
    if "://" in line:
        for m in _URL_PASSWORD.finditer(line):
            # strict: `http://user:pass@`, `wiki:pedia@` in docs and tests are examples.
            if _looks_secret(m.group("s"), strict=True):
                yield m.start("s"), m.end("s")


# ------------------------------------------------------------------ entropy

_QUOTED = re.compile(r"([\"'])([A-Za-z0-9+/=_\-]{20,2000})\1")
_HEX = re.compile(r"^[0-9a-fA-F]+$")
_SECRET_CONTEXT = re.compile(r"(?i)secret|token|passw|api.?key|auth|credential|private")
_WORD = re.compile(r"[A-Z][a-z]{2,}|[a-z]{4,}")
_ALPHABET = re.compile(r"(?i)0123456|abcdefg|hijklmn|qrstuvw")
# Encoded test data: a string being decoded is data, not a credential.
_CODEC_CONTEXT = r"fromhex|hexlify|b64|base64|binascii|decode|encode"
_CODEC = re.compile(_CODEC_CONTEXT)
# A quoted hash next to a word that says what it is, is a hash (gitleaks allowlists these).
_HASH_CONTEXT = re.compile(
    r"(?i)hash|sha\d*|md5|digest|checksum|fingerprint|crc|uuid|guid|commit|revision|\brev\b|oid|etag"
    r"|color|colour|test|vector|expected|nonce|salt|seed|version|_id\b|\bid\b|ids\b|blake|hmac|mac\b"
    r"|" + _CODEC_CONTEXT
)


def _entropy_spans(line: str, before: str = "") -> Iterator[tuple[int, int]]:
    """High-entropy quoted strings; `before` (the lines just above) names what a hash is."""
    if '"' not in line and "'" not in line:
        return
    b64, hexa = _entropy()
    for m in _QUOTED.finditer(line):
        value = m.group(2)
        if not line[: m.start()].strip(" \t([{,+#bBrRuU"):
            continue  # a bare string on its own line: one row of a table of test vectors
        if value.isdigit() or _ALPHABET.search(value):
            continue
        if _HEX.match(value):
            # A bare hex string is far more often a hash than a key: only one beside a word
            # that names a secret is taken for one.
            context = before + line
            if (
                hexa.calculate_shannon_entropy(value) > hexa.entropy_limit
                and _SECRET_CONTEXT.search(context)
                and not _HASH_CONTEXT.search(context)
            ):
                yield m.start(2), m.end(2)
            continue
        # Random base64 of this length has upper, lower and digits; words and identifiers
        # (camelCase, snake_case, the alphabet) do not.
        if not (
            sum(c.isdigit() for c in value) >= 2
            and any(c.isupper() for c in value)
            and any(c.islower() for c in value)
        ):
            continue
        if "_" in value and not any(c in value for c in "+/="):
            words = [w for w in value.split("_") if w]
            if all(w.isalpha() or w.isdigit() for w in words):
                continue  # SOME_CONSTANT_NAME_2
        if _IDENTIFIER_PATH.match(value) and len("".join(_WORD.findall(value))) >= 0.6 * len(value):
            continue  # CamelCase words: NFCISO15693CustomCommandConfiguration
        if b64.calculate_shannon_entropy(value) > b64.entropy_limit and not _CODEC.search(line):
            yield m.start(2), m.end(2)


# ------------------------------------------------------------------ key blocks

_KEY_HEADER = re.compile(r"-----BEGIN ((?:[A-Z0-9]+ ){0,4})PRIVATE KEY(?: BLOCK)?-----")
_KEY_BODY_LINE = re.compile(
    r"^\s{0,8}(?:[A-Za-z0-9+/=]{8,200}|(?:Proc-Type|DEK-Info|Comment|Version|Hash): [^\n]{0,200})\s*$"
)
_KEY_BODY_ESCAPED = re.compile(r"(?:\\[rn]|[A-Za-z0-9+/=]|(?:Proc-Type|DEK-Info): [\w,\-]{1,100}){8,}")


def _key_block_spans(text: str) -> Iterator[tuple[int, int]]:
    """The body of each private key block: the base64 lines after its header."""
    for m in _KEY_HEADER.finditer(text):
        pos = m.end()
        esc = _KEY_BODY_ESCAPED.match(text, pos)
        if esc and "\n" not in text[pos : esc.end()]:
            yield pos, esc.end()  # a key kept in a JSON string, on one line
            continue
        line_start = text.find("\n", pos)
        while line_start != -1:
            line_end = text.find("\n", line_start + 1)
            line = text[line_start + 1 : line_end if line_end != -1 else len(text)]
            if not line or not _KEY_BODY_LINE.match(line):
                break
            yield line_start + 1, line_start + 1 + len(line)
            line_start = line_end


def key_block_open(text: str) -> int:
    """Where the last private key header in `text` starts, if no END marker follows it; else -1."""
    at = text.rfind("PRIVATE KEY")
    if at == -1 or "-----END" in text[at:]:
        return -1
    return text.rfind("-----BEGIN", 0, at)


# ------------------------------------------------------------------ the API


def secret_spans(text: str) -> list[tuple[int, int]]:
    """Character spans of secrets in `text`, merged and sorted."""
    spans: list[tuple[int, int]] = []
    pos = 0
    above: list[str] = ["", ""]
    for line in text.splitlines(keepends=True):
        if _CANDIDATE.search(line):
            spans.extend((pos + a, pos + b) for a, b in _line_spans(line, "".join(above)))
        above = [above[1], line[:400]]
        pos += len(line)
    if "PRIVATE KEY" in text:
        spans.extend(_key_block_spans(text))
    return _merge(spans)


def _line_spans(line: str, above: str = "") -> Iterable[tuple[int, int]]:
    for rx in _format_patterns():
        for m in rx.finditer(line):
            # A detector that captures its secret after some context (AWS's `aws...key =
            # "..."`) masks the capture; one that captures a prefix (`(ghp|gho)_...`) the match.
            if rx.groups and m.group(1) and m.start(1) > m.start() and m.end(1) - m.start(1) >= 8:
                yield m.start(1), m.end(1)
            elif m.end() > m.start():
                yield m.start(), m.end()
    yield from _assignment_spans(line)
    yield from _command_spans(line)
    yield from _entropy_spans(line, above)


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for a, b in sorted(spans):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def mask_spans(text: str, spans: Iterable[tuple[int, int]]) -> str:
    chars = list(text)
    for a, b in spans:
        for i in range(max(a, 0), min(b, len(chars))):
            if chars[i] not in "\r\n":
                chars[i] = MASK
    return "".join(chars)


def redact(text: str) -> str:
    """`text` with every detected secret masked, same length."""
    spans = secret_spans(text)
    return mask_spans(text, spans) if spans else text


def redact_json(text: str) -> str:
    """A JSON document with the secrets in its strings masked; still valid JSON.

    Each string is looked at with its key (`{"password": "..."}` is a keyword rule), and the
    document is written back only when something was masked.
    """
    try:
        data = json.loads(text)
    except ValueError:
        return redact(text)
    changed = False

    def walk(node: Any, key: str | None) -> Any:
        nonlocal changed
        if isinstance(node, str):
            masked = redact(node)
            if key is not None and is_secret_name(key) and _looks_secret(node, strict=True):
                masked = MASK * len(node)
            if masked != node:
                changed = True
            return masked
        if isinstance(node, dict):
            return {k: walk(v, k) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v, key) for v in node]
        return node

    out = walk(data, None)
    return json.dumps(out) if changed else text


class RedactingFilter(logging.Filter):
    """Masks secrets in every log record's message before a handler writes it."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: let logging report it as usual
            return True
        masked = redact(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True
