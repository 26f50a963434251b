"""The HTTP endpoint's TLS and basic authentication, in the web configuration file format of
Prometheus exporters (exporter-toolkit's `--web.config.file`), named by `http.web_config_file`:

    tls_server_config:
      cert_file: server.crt            # relative to this file's directory
      key_file: server.key
      client_auth_type: NoClientCert   # or VerifyClientCertIfGiven, RequireAndVerifyClientCert
      client_ca_file: clients-ca.crt   # for the two that check client certificates
      min_version: TLS12               # TLS10..TLS13; max_version likewise
    basic_auth_users:
      prometheus: $2y$10$...           # bcrypt hashes (htpasswd -nBC 10 prometheus)
    http_server_config:
      headers: {X-Frame-Options: deny} # added to every response

So a Prometheus scrape job written for an exporter (`scheme: https`, `tls_config`,
`basic_auth`) works unchanged, and the same file can serve both. What exporter-toolkit has and
Python's ssl module cannot do (cipher and curve choices, a client certificate requested but not
verified, allowed SANs) is refused by name, never ignored: a setting that silently does nothing
is a false sense of security. The file holds password hashes: no message quotes its values.
The certificate and key are loaded here once, so that a wrong key, a passphrase-protected key
or a mismatched pair is refused with the configuration, not at the first scrape.
"""

from __future__ import annotations

import re
import ssl
from dataclasses import dataclass, field
from pathlib import Path

from monitor.config.credentials import Secret
from monitor.config.fields import Fields, open_document
from monitor.config.problems import ConfigProblem

_TOP_KEYS = ("tls_server_config", "basic_auth_users", "http_server_config")
_TLS_KEYS = (
    "cert_file",
    "key_file",
    "client_auth_type",
    "client_ca_file",
    "min_version",
    "max_version",
    "cipher_suites",
    "curve_preferences",
    "prefer_server_cipher_suites",
    "client_allowed_sans",
)
_UNSUPPORTED_TLS = {
    "cipher_suites": "Python's TLS takes OpenSSL's cipher choice",
    "curve_preferences": "Python's TLS takes OpenSSL's curve choice",
    "prefer_server_cipher_suites": "the server's order always applies",
    "client_allowed_sans": "client certificates are checked against client_ca_file only",
}
CLIENT_AUTH = {
    "NoClientCert": ssl.CERT_NONE,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
_UNSUPPORTED_CLIENT_AUTH = ("RequestClientCert", "RequireAnyClientCert")
TLS_VERSIONS = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}
_BCRYPT = re.compile(r"\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


@dataclass(frozen=True, slots=True)
class WebTls:
    cert_file: Path
    key_file: Path
    client_auth: ssl.VerifyMode = ssl.CERT_NONE
    client_ca_file: Path | None = None
    min_version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2  # exporter-toolkit's default
    max_version: ssl.TLSVersion | None = None


@dataclass(frozen=True, slots=True)
class WebConfig:
    """`users` maps each user to its bcrypt hash (never shown)."""

    file: Path
    tls: WebTls | None = None
    users: dict[str, Secret] = field(default_factory=dict)
    headers: tuple[tuple[str, str], ...] = ()


def server_context(tls: WebTls) -> ssl.SSLContext:
    """The server side of TLS for these settings (raises ssl.SSLError or OSError)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = tls.min_version
    if tls.max_version is not None:
        context.maximum_version = tls.max_version
    context.load_cert_chain(tls.cert_file, tls.key_file, password=_no_passphrase)
    context.verify_mode = tls.client_auth
    if tls.client_ca_file is not None:
        context.load_verify_locations(cafile=tls.client_ca_file)
    return context


def _no_passphrase() -> str:
    raise ssl.SSLError("the key file is protected by a passphrase: give an unprotected key")


def read_web_config(path: Path, problems: list[ConfigProblem]) -> WebConfig | None:
    top = open_document(path, problems, sensitive=True)
    if top is None:
        return None
    top.sink.public = frozenset((*_TOP_KEYS, *_TLS_KEYS, "headers", "http2"))
    top.expect(_TOP_KEYS)
    tls = _read_tls(top.mapping("tls_server_config"), path.parent)
    users: dict[str, Secret] = {}
    section = top.mapping("basic_auth_users", null_is_empty=True)
    if section is not None:
        for user in section.node:
            value = section.get(user)
            if not isinstance(value, str) or not _BCRYPT.fullmatch(value):
                section.problem(
                    user,
                    "must be a bcrypt hash ($2y$..., e.g. from `htpasswd -nBC 10 USER`)",
                )
                continue
            users[user] = Secret(value)
    return WebConfig(path, tls, users, _read_headers(top.mapping("http_server_config")))


def _read_tls(fields: Fields | None, directory: Path) -> WebTls | None:
    if fields is None:
        return None
    fields.expect(_TLS_KEYS, required=("cert_file", "key_file"))
    for key, why in _UNSUPPORTED_TLS.items():
        if fields.has(key):
            fields.problem(key, f"not supported by districtmon ({why}); remove it")
    files: dict[str, Path | None] = {}
    for key in ("cert_file", "key_file", "client_ca_file"):
        text = fields.text(key)
        files[key] = None if text is None else directory / text
        path = files[key]
        if path is not None and not path.is_file():
            fields.problem(key, f"file not found: {path}")
            files[key] = None
    auth = ssl.CERT_NONE
    auth_name = fields.text("client_auth_type")
    if auth_name in _UNSUPPORTED_CLIENT_AUTH:
        fields.problem(
            "client_auth_type",
            f"{auth_name} is not supported (Python's TLS cannot ask for a certificate without "
            "verifying it): use VerifyClientCertIfGiven or RequireAndVerifyClientCert",
        )
    elif auth_name is not None and auth_name not in CLIENT_AUTH:
        fields.problem("client_auth_type", f"must be one of {', '.join(CLIENT_AUTH)}")
    elif auth_name is not None:
        auth = CLIENT_AUTH[auth_name]
    if auth != ssl.CERT_NONE and files["client_ca_file"] is None:
        fields.problem("client_auth_type", "checking client certificates needs client_ca_file")
    versions = {key: _version(fields, key) for key in ("min_version", "max_version")}
    cert_file, key_file = files["cert_file"], files["key_file"]
    if cert_file is None or key_file is None:
        return None
    tls = WebTls(
        cert_file,
        key_file,
        auth,
        files["client_ca_file"],
        versions["min_version"] or ssl.TLSVersion.TLSv1_2,
        versions["max_version"],
    )
    try:
        server_context(tls)
    except (ssl.SSLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or str(exc)
        fields.problem("cert_file", f"cannot load the certificate and key: {reason}")
        return None
    return tls


def _version(fields: Fields, key: str) -> ssl.TLSVersion | None:
    name = fields.text(key)
    if name is None:
        return None
    if name not in TLS_VERSIONS:
        fields.problem(key, f"must be one of {', '.join(TLS_VERSIONS)}")
        return None
    return TLS_VERSIONS[name]


def _read_headers(fields: Fields | None) -> tuple[tuple[str, str], ...]:
    if fields is None:
        return ()
    fields.expect(("headers", "http2"))
    headers = fields.mapping("headers", null_is_empty=True)
    found: list[tuple[str, str]] = []
    if headers is None:
        return ()
    for name in headers.node:
        value = headers.get(name)
        if not _HEADER_NAME.fullmatch(name) or not isinstance(value, str) or "\n" in value:
            headers.problem(name, "must be an HTTP header name with a one-line text value")
            continue
        found.append((name, value))
    return tuple(found)
