"""A corpus of realistic fake secrets, each written where developers write them.

Every secret is random (seeded, so the corpus is the same on every run) in its kind's real
format; every placement is a line (or block) as it appears in a Python file, a shell, a
`.env`, YAML, JSON, INI, a URL, a curl header or a key file. `CASES` pairs each text with
the secret inside it; the redactor must mask every character of it.
"""

from __future__ import annotations

import base64
import json
import random
import string
from dataclasses import dataclass

_rng = random.Random(14)
ALNUM = string.ascii_letters + string.digits


def _pick(chars: str, n: int) -> str:
    return "".join(_rng.choice(chars) for _ in range(n))


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _jwt() -> str:
    header = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = _b64url(json.dumps({"sub": _pick(string.digits, 10), "iat": 1716239022}).encode())
    return f"{header}.{payload}.{_b64url(_rng.randbytes(32))}"


def _password() -> str:
    # What a person picks: words, digits, a symbol.
    words = ["Tr0ub4dor", "Summer", "Kestrel", "Quokka", "Marble", "Zephyr"]
    return _rng.choice(words) + _pick(string.digits, 3) + _rng.choice("!#%&*") + _pick(ALNUM, 4)


@dataclass(frozen=True)
class Kind:
    name: str
    env: str  # the name it is usually kept under
    value: str


def kinds() -> list[Kind]:
    lower_hex = "0123456789abcdef"
    return [
        Kind(
            "aws-access-key-id",
            "AWS_ACCESS_KEY_ID",
            "AKIA" + _pick(string.ascii_uppercase + string.digits, 16),
        ),
        Kind("aws-secret-access-key", "AWS_SECRET_ACCESS_KEY", _pick(ALNUM + "/+", 40)),
        Kind("github-classic", "GITHUB_TOKEN", "ghp_" + _pick(ALNUM, 36)),
        Kind("github-fine-grained", "GH_TOKEN", "github_pat_" + _pick(ALNUM, 22) + "_" + _pick(ALNUM, 59)),
        Kind("gitlab", "GITLAB_TOKEN", "glpat-" + _pick(ALNUM + "-_", 20)),
        Kind("openai-project", "OPENAI_API_KEY", "sk-proj-" + _pick(ALNUM + "-_", 156)),
        Kind("openai-service-account", "OPENAI_API_KEY", "sk-svcacct-" + _pick(ALNUM + "-_", 156)),
        Kind("anthropic", "ANTHROPIC_API_KEY", "sk-ant-api03-" + _pick(ALNUM + "-_", 93) + "AA"),
        Kind(
            "slack-bot",
            "SLACK_BOT_TOKEN",
            f"xoxb-{_pick(string.digits, 12)}-{_pick(string.digits, 13)}-{_pick(ALNUM, 24)}",
        ),
        Kind("stripe-live", "STRIPE_SECRET_KEY", "sk_live_" + _pick(ALNUM, 99)),
        Kind("google-api-key", "GOOGLE_API_KEY", "AIza" + _pick(ALNUM + "-_", 35)),
        Kind("jwt", "AUTH_TOKEN", _jwt()),
        Kind("sendgrid", "SENDGRID_API_KEY", f"SG.{_pick(ALNUM, 22)}.{_pick(ALNUM + '-_', 43)}"),
        Kind("huggingface", "HF_TOKEN", "hf_" + _pick(string.ascii_letters, 34)),
        Kind("npm", "NPM_TOKEN", "npm_" + _pick(ALNUM, 36)),
        Kind("hex-api-key", "DATADOG_API_KEY", _pick(lower_hex, 32)),
        Kind("password", "DB_PASSWORD", _password()),
    ]


def _key_block(header: str, lines: int) -> tuple[str, str]:
    body = base64.b64encode(_rng.randbytes(48 * lines)).decode()
    rows = [body[i : i + 64] for i in range(0, len(body), 64)]
    return f"-----BEGIN {header}-----\n" + "\n".join(rows) + f"\n-----END {header}-----\n", rows[1]


def _placements(k: Kind) -> list[tuple[str, str]]:
    v, env = k.value, k.env
    low = env.lower()
    return [
        ("python", f'{low} = "{v}"'),
        ("python-kwarg", f'client = Client({"password" if k.name == "password" else "api_key"}="{v}")'),
        ("shell-export", f"export {env}={v}"),
        ("shell-inline", f"{env}={v} ./deploy.sh --prod"),
        (".env", f'{env}="{v}"'),
        ("yaml", f"  {low}: {v}"),
        ("json", f'  "{low}": "{v}",'),
        ("ini", f"{low} = {v}"),
    ]


@dataclass(frozen=True)
class Case:
    kind: str
    placement: str
    text: str
    secret: str


def build() -> list[Case]:
    cases: list[Case] = []
    for k in kinds():
        cases += [Case(k.name, where, text, k.value) for where, text in _placements(k)]
        if k.name in ("password", "hex-api-key", "github-classic"):
            cases.append(Case(k.name, "url", f"postgres://app:{k.value}@db.internal:5432/prod", k.value))
        if k.name.startswith(("openai", "github", "huggingface", "jwt")):
            cases.append(
                Case(
                    k.name,
                    "curl-header",
                    f'curl -H "Authorization: Bearer {k.value}" https://api.example.com',
                    k.value,
                )
            )
        if k.name == "anthropic":
            cases.append(
                Case(
                    k.name,
                    "curl-header",
                    f'curl https://api.anthropic.com/v1/messages -H "x-api-key: {k.value}" '
                    '-H "anthropic-version: 2023-06-01"',
                    k.value,
                )
            )
        if k.name == "aws-secret-access-key":
            cases.append(
                Case(k.name, "shell-aws", f"aws configure set aws_secret_access_key {k.value}", k.value)
            )
        if k.name == "password":
            cases.append(Case(k.name, "shell-mysql", f"mysql -u root -p{k.value} prod", k.value))
    for header in ("RSA PRIVATE KEY", "OPENSSH PRIVATE KEY", "EC PRIVATE KEY", "PRIVATE KEY"):
        block, inner = _key_block(header, 6)
        cases.append(Case("private-key", "pem", block, inner))
    return cases


CASES = build()
