"""Keeping secrets out of results files: conf values, command arguments and master URLs.

A conf whose key looks secret (password, secret, token, key, credentials) keeps its key and loses
its value; a URL keeps everything but its user info and secret-looking query values.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

REDACTED = "*****"
SECRET_WORDS = ("password", "passwd", "secret", "token", "credential")


def is_secret(key: str) -> bool:
    """Whether a conf key or query parameter names a secret: one of its words (split at . _ - and
    read without case) holds a SECRET_WORDS entry or ends in "key" (fs.s3a.access.key, apiKey)."""
    words = re.split(r"[._\-]", key.lower())
    return any(w.endswith("key") or any(s in w for s in SECRET_WORDS) for w in words)


def redact_url(url: str | None) -> str | None:
    """A URL without a password in its user info and without secret query values."""
    if not url or "://" not in url:
        return url
    scheme, _, rest = url.partition("://")
    if re.match(r"[a-zA-Z][a-zA-Z0-9+.-]*://", rest):  # k8s://https://host: the inner URL holds the secrets
        return f"{scheme}://{redact_url(rest)}"
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        user, _, host = netloc.rpartition("@")
        name = user.split(":", 1)[0]
        netloc = f"{name}:{REDACTED}@{host}" if ":" in user else f"{REDACTED}@{host}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, REDACTED if is_secret(k) else v) for k, v in pairs], safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def redact_confs(confs: dict[str, str]) -> dict[str, str]:
    """Spark confs with secret-looking values hidden and URLs cleaned."""
    return {k: REDACTED if is_secret(k) else (redact_url(v) or v) for k, v in confs.items()}


def redact_command(command: list[str]) -> list[str]:
    """A command line with `--conf KEY=VALUE` (or `KEY=VALUE`) secrets and URL user info hidden."""
    out = []
    for arg in command:
        key, eq, _ = arg.partition("=")
        if eq and is_secret(key.lstrip("-")):
            out.append(f"{key}={REDACTED}")
        else:
            out.append(redact_url(arg) or arg)
    return out
