"""The redactor masks secrets, and only secrets, in linear time."""

from __future__ import annotations

import json
import logging
import sysconfig
from pathlib import Path

import pytest
from goldiff.capture.redaction import RedactingFilter, redact, redact_json

from tests.secret_corpus import CASES


def _masked(text: str, secret: str) -> bool:
    """Every character of `secret` (line breaks aside) is masked where it appears in `text`."""
    out = redact(text)
    assert len(out) == len(text)
    at = text.find(secret)
    assert at != -1
    return all(c in "*\r\n" for c in out[at : at + len(secret)])


def test_corpus_is_broad() -> None:
    assert len(CASES) >= 60
    assert len({c.kind for c in CASES}) >= 15
    assert len({c.placement for c in CASES}) >= 8


@pytest.mark.parametrize("case", CASES, ids=[f"{c.kind}-{c.placement}" for c in CASES])
def test_every_corpus_secret_is_fully_masked(case) -> None:  # type: ignore[no-untyped-def]
    assert _masked(case.text, case.secret), redact(case.text)


@pytest.mark.parametrize(
    "code",
    [
        # Code expressions that name secrets but hold none (a real signing library's lines).
        "secret_keys = [want_bytes(s) for s in secret_key]",
        "self.secret_keys = secret_keys",
        "    secret_key=secret_key,",
        'author = "Pallets"',
        'def factory(secret_key="secret-key", salt="itsdangerous"):',
        "token = self._token",
        "password = getpass.getpass()",
        "api_key: str | None = None",
        "private_key: PKCS7PrivateKeyTypes,",
        "headers = {'Authorization': f'Bearer {token}'}",
        'headers["Authorization"] = "Bearer " + access_token',
        "authorization = self.headers.get('authorization')",
        'eos_token="</s>", pad_token="<pad>", unk_token="[UNK]",',
        "if token == '#bygroup':",
        'DATABASE_URL = "postgres://user:password@localhost/app"',
        'API_KEY = os.environ["API_KEY"]',
        "export OPENAI_API_KEY=$OPENAI_API_KEY",
        'parser.add_argument("--password", help="the --password PASSWORD to use")',
        "token_pattern = r'(?u)\\b\\w\\w+\\b'",
        'ascii_letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"',
        'ENV_VAR_AUTH_TOKEN = "AWS_CONTAINER_AUTHORIZATION_TOKEN"',
        'ALLOW_CREDENTIALS = "Access-Control-Allow-Credentials"',
        '"AWS::ApiGateway::ApiKey": "8aa0ed3e6b4d6e52",',
        '"Resource": "arn:aws:secretsmanager:*:*:secret:prod-db-creds",',
        "sha = '5d41402abc4b2a76b9719d911017c592ae5ef3fa'",
        "    'a8f3d6e1b2c4f5a6b7c8d9e0f1a2b3c4d5e6f7a8',",
        "if '-----BEGIN RSA PRIVATE KEY-----' in pem:",
        "    password = self._password or prompt('Password: ')",
    ],
)
def test_code_expressions_are_never_masked(code: str) -> None:
    assert redact(code) == code


def test_private_key_body_is_masked_until_its_end_marker_only() -> None:
    case = next(c for c in CASES if c.placement == "pem")
    text = "key = load()\n" + case.text + "print('done')\n"
    out = redact(text)
    body = case.text.splitlines()[1:-1]
    assert all(line not in out for line in body)
    assert out.startswith("key = load()\n-----BEGIN")
    assert out.endswith("-----\nprint('done')\n")
    # A key kept in a JSON string (a service account file) is one line with \n escapes.
    one_line = json.dumps({"private_key": case.text})
    assert all(line not in redact(one_line) for line in body)


def test_json_stays_valid_and_keeps_keys() -> None:
    secret = next(c for c in CASES if c.kind == "anthropic").secret
    detail = json.dumps(
        {"command": f'ANTHROPIC_API_KEY={secret} claude "fix it"', "password": "Hunter2!x", "n": 3}
    )
    out = json.loads(redact_json(detail))
    assert secret not in out["command"]
    assert out["command"].endswith('claude "fix it"')
    assert out["password"] == "*********"
    assert out["n"] == 3
    plain = json.dumps({"path": "src/app.py", "kind": "save"})
    assert redact_json(plain) == plain


def test_log_records_are_masked() -> None:
    secret = next(c for c in CASES if c.kind == "openai-project").secret
    record = logging.LogRecord("goldiff", logging.INFO, __file__, 1, "ran %s", (f"export K={secret}",), None)
    assert RedactingFilter().filter(record)
    assert secret not in record.getMessage()
    assert record.getMessage().startswith("ran export K=***")


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    "line",
    [
        "a" * 1_000_000,
        "sk-" * 333_333,
        "eyJ" * 333_333,
        "AKC" * 333_333,
        "password token key " * 52_000,
        "a=" * 500_000,
        "://a:" * 200_000,
        '"a' * 500_000,
        "mysql " * 166_000,
        "--password " * 90_000,
        "secret_key_" * 90_000,
        "Authorization: " * 66_000,
        "http://" + "a" * 1_000_000,
        ("aZ09+/" * 170_000)[:1_000_000],
    ],
    ids=lambda line: repr(line[:12]),
)
def test_a_one_megabyte_line_is_redacted_in_linear_time(line: str) -> None:
    # No timing assertion: a quadratic pattern would take hours here, which the timeout
    # turns into a failure.
    assert len(redact(line)) == len(line)


# Standard-library modules that handle credentials, hashes, tokens and encodings: the code
# most likely to look like a secret without being one.
STDLIB_FILES = [
    *[f"{pkg}/{name}" for pkg in ("http", "urllib", "email", "logging") for name in ("__init__.py",)],
    "http/client.py",
    "http/server.py",
    "http/cookiejar.py",
    "urllib/request.py",
    "urllib/parse.py",
    "email/_header_value_parser.py",
    "email/message.py",
    "email/utils.py",
    "logging/handlers.py",
    "ssl.py",
    "smtplib.py",
    "ftplib.py",
    "imaplib.py",
    "poplib.py",
    "netrc.py",
    "getpass.py",
    "hmac.py",
    "secrets.py",
    "hashlib.py",
    "base64.py",
    "tokenize.py",
    "configparser.py",
    "argparse.py",
    "uuid.py",
    "test/test_hashlib.py",
    "test/test_base64.py",
    "test/test_binascii.py",
    "test/test_urllib2_localnet.py",
    "test/test_urllib2.py",
    "test/test_hmac.py",
    "test/test_ssl.py",
    "test/test_imaplib.py",
    "test/test_smtplib.py",
    "test/test_urlparse.py",
    "test/test_netrc.py",
    "test/test_tokenize.py",
    "test/test_configparser.py",
    "test/test_uuid.py",
    "test/test_httplib.py",
    "test/test_httpservers.py",
    "test/test_http_cookiejar.py",
    "test/test_email/test_email.py",
    "test/test_argparse.py",
    "test/test_secrets.py",
]


@pytest.mark.timeout(300)
def test_at_most_one_wrongly_masked_line_per_10000_in_real_python() -> None:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    lines = 0
    masked: list[str] = []
    for name in STDLIB_FILES:
        path = stdlib / name
        if not path.exists():  # the test suite is optional in some Python builds
            continue
        text = path.read_text(encoding="utf-8")
        out = redact(text)
        before = text.splitlines()
        lines += len(before)
        masked += [
            f"{name}:{i + 1}: {b}"
            for i, (b, a) in enumerate(zip(before, out.splitlines(), strict=False))
            if a != b
        ]
    if lines < 20_000:
        pytest.skip("this Python has no test suite to measure on")
    # The stdlib's own test passwords (`PASSWD = "testPass"`) are placeholders by rule;
    # what is left must be rare.
    assert len(masked) * 10_000 <= lines, "\n".join(masked)
