"""Service settings: defaults, then `FHIR_ASSIST_*` environment variables, then CLI options.

The Helm chart configures a deployment through the environment only, so every
option of `fhir-assist serve` has an environment twin with the same meaning:

    --host H               FHIR_ASSIST_HOST
    --port P               FHIR_ASSIST_PORT
    --redis-url URL        FHIR_ASSIST_REDIS_URL
    --fhir-base-url URL    FHIR_ASSIST_FHIR_BASE_URL
    --trust ISS=FILE …     FHIR_ASSIST_TRUST  ("ISS=FILE" entries separated by whitespace or ';')
    --no-auth              FHIR_ASSIST_NO_AUTH=true
    --models DIR           FHIR_ASSIST_MODELS
    --device D             FHIR_ASSIST_DEVICE  (auto, cpu, cuda or cuda:N)
    --debug                FHIR_ASSIST_DEBUG=true

and a few settings that have no flag (deployment tuning):

    FHIR_ASSIST_PUBLIC_URL        external base URL of the service, e.g. https://cds.example.org;
                                  the expected JWT `aud` is derived from it; required when
                                  authentication is on (also --public-url)
    FHIR_ASSIST_TRUST_PROXY       honour X-Forwarded-* from one reverse proxy (default false)
    FHIR_ASSIST_WRITE_BACK        write recommended codes back on encounter-discharge (default true)
    FHIR_ASSIST_WRITE_BACK_MAX    most recommended codes written back per encounter (default 15)
    FHIR_ASSIST_WRITE_BACK_PRECISION  write back only codes scored where validation precision
                                  reached this share (default 0.5)
    FHIR_ASSIST_WRITE_BACK_RETRY_S  seconds before the first retry of a write-back the FHIR server
                                  could not take (doubling each time, at most 15 min; default 5)
    FHIR_ASSIST_WRITE_BACK_GIVE_UP  failed retries before a queued write-back is given up (default 12)
    FHIR_ASSIST_TARGET_RECALL     recall the recommended list aims at, per encounter (default 0.9;
                                  also `serve --target-recall`)
    FHIR_ASSIST_CUT_RULE          per-encounter (the codes scored above the threshold that reached
                                  the target recall on validation, default), expected-recall (the
                                  shortest list whose calibrated scores add up to the target share
                                  of their sum) or global-k (one list length per stratum)
    FHIR_ASSIST_CUT_MIN_PROBABILITY  with the per-encounter rule and a fusion model: also stop the
                                  list before the first code scored below this (default 0: off)
    FHIR_ASSIST_SYSTEM_ACTIONS    also return recommended codes as systemActions (default false)
    FHIR_ASSIST_CORS_ORIGINS      allowed browser origins, comma separated, or * (default *)
    FHIR_ASSIST_FHIR_TIMEOUT      seconds per FHIR request (default 5)
    FHIR_ASSIST_STATE_TTL         seconds a patient's medication state is kept (default 30 days)
    FHIR_ASSIST_JWT_LEEWAY        allowed clock skew in seconds for exp/iat (default 60)
    FHIR_ASSIST_JWT_MAX_AGE       refuse tokens issued longer ago than this many seconds (default 3600)
    FHIR_ASSIST_JWT_ALGORITHMS    accepted signature algorithms (default RS384,ES384,RS256,RS512,ES256,ES512,PS256,PS384,PS512)
    FHIR_ASSIST_PUBLIC_DISCOVERY  serve GET /cds-services without a token (default false)
    FHIR_ASSIST_THREADS           worker threads of the production server (default 8, per process)
    FHIR_ASSIST_WORKERS           server processes (default 0 = automatic: one per CPU core with
                                  --redis-url, else one; see `fhir-assist serve --help`)
    FHIR_ASSIST_MAX_REQUEST_MB    largest accepted request body (default 32)
    FHIR_ASSIST_STATE_FILE        without Redis, the SQLite file the server processes share (default:
                                  a temporary one, removed at exit)
    FHIR_ASSIST_STATE_FILE_DURABLE  false: that file is not flushed to disk (it survives a process
                                  that dies, not a machine that does; default true, false for the
                                  temporary one)
    FHIR_ASSIST_MAX_PREFETCH_RESOURCES  most resources one call's prefetch may hold; more is
                                  answered 413 before any is read (default 50,000)
    FHIR_ASSIST_TOP_CODES         coding suggestions shown per card (default 20)
    FHIR_ASSIST_TOP_MEDICATIONS   medications to start / to stop shown per card (default 8 each)
    FHIR_ASSIST_EVIDENCE          compute the evidence (medications, procedures) shown with each coding
                                  suggestion of the structured ranker (default true; ~0.1 s per call)
    FHIR_ASSIST_ALLOWED_FHIR_SERVERS  fhirServer base URLs a hook call may name, comma separated, compared
                                  as scheme + host + port + path prefix (default: none besides
                                  --fhir-base-url; a call naming another server is answered from its
                                  prefetch only, and gets 412 when that is not enough: the service
                                  never sends an EHR's token to a server not listed here)
    FHIR_ASSIST_FHIR_MAX_RESPONSE_MB  largest FHIR server answer read (default 16)
    FHIR_ASSIST_ADMIN_TOKEN_SHA256    SHA-256 (hex) of the admin bearer secret that reads stored feedback
                                  at GET /admin/feedback (default: unset, admin functions off)
    FHIR_ASSIST_METRICS_TOKEN_SHA256  SHA-256 (hex) of the bearer secret Prometheus must send for /metrics
                                  (default: unset, /metrics open: bind it to the cluster network only)
    FHIR_ASSIST_ISSUER_TENANTS    the tenants each trusted issuer may name in its tokens' `tenant` claim,
                                  "ISS=T1,T2;ISS2=T3" (default: only "default"); records are kept per
                                  (issuer, tenant), so no two issuers ever share one
    FHIR_ASSIST_FHIR_BASE_URL_ISSUERS  issuers whose calls may use --fhir-base-url without naming a
                                  fhirServer: reads and write-back with the service's own access
                                  (default: none; always allowed with --no-auth)
    FHIR_ASSIST_SOURCE_URL        the cards' source link: a page about this deployment and its models
                                  (default https://fhir-assist.example.org)
    FHIR_ASSIST_SECRET_KEY        signs the worklist's session cookie; the same on every replica
                                  (default: a random key per process)
    FHIR_ASSIST_REVIEW_*          the coder worklist (`ReviewSettings`, docs/review.md): TENANT, USER,
                                  OIDC_ISSUER, OIDC_JWKS, OIDC_AUDIENCE, OIDC_USER_CLAIM,
                                  SECURE_COOKIES, MODEL, PAGE_SIZE, MAX_CONDITIONS

Each variable is the field's name in capitals unless the field names another (`setting(env=…)`);
`env_values` reads them all, parsing by the field's type.
"""
from __future__ import annotations

import os
import re
from dataclasses import MISSING, asdict, dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any, Callable, Mapping

from . import url_policy
from .suggest.placement import PlacementError, checked_device

ENV_PREFIX = "FHIR_ASSIST_"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
DEFAULT_ALGORITHMS = ("RS384", "ES384", "RS256", "RS512", "ES256", "ES512", "PS256", "PS384", "PS512")
# Symmetric and unsigned algorithms are refused whatever the configuration says:
# the spec forbids them for CDS client tokens.
FORBIDDEN_ALGORITHMS = frozenset({"none", "HS256", "HS384", "HS512"})


class SettingsError(ValueError):
    """A setting has a value that cannot be used."""


@dataclass(frozen=True)
class TrustedIssuerSpec:
    """One `--trust ISS=SOURCE` entry: SOURCE is a PEM public key, a JWK / JWK Set file, or a JWKS URL."""

    issuer: str
    source: str

    @property
    def is_url(self) -> bool:
        return self.source.startswith(("https://", "http://"))


def setting(default: Any = MISSING, *, env: str | None = None, parse: Callable | None = None,
            section: type | None = None) -> Any:
    """A settings field: `env` names its variable (after FHIR_ASSIST_ and the section's
    prefix; default: the field name in capitals), `parse` reads it (default: by the
    field's type), `section` makes it a nested settings dataclass whose variables
    start with FHIR_ASSIST_{env}."""
    metadata = {k: v for k, v in (("env", env), ("parse", parse), ("section", section)) if v is not None}
    if section is not None:
        return field(default_factory=section, metadata=metadata)
    return field(default=default, metadata=metadata)


def env_values(cls: type, env: Mapping[str, str], prefix: str = ENV_PREFIX) -> dict[str, Any]:
    """The fields of settings dataclass `cls` that `env` sets, parsed: the one place that
    maps fields to environment variables."""
    values: dict[str, Any] = {}
    for f in fields(cls):
        name = prefix + f.metadata.get("env", f.name.upper())
        section = f.metadata.get("section")
        if section is not None:
            values[f.name] = section(**env_values(section, env, name))
            continue
        raw = env.get(name)
        if raw is not None:
            values[f.name] = (f.metadata.get("parse") or _PARSERS[f.type])(name, raw)
    return values


@dataclass(frozen=True)
class ReviewSettings:
    """The coder worklist (`/review`); variables FHIR_ASSIST_REVIEW_*."""

    tenant: str = "default"                 # feedback and pending actions are kept per tenant
    user: str | None = None                 # demo: every request is this coder
    oidc_issuer: str | None = None          # bearer mode: expected `iss`
    oidc_jwks: str | None = None            # JWKS file path or http(s) URL
    oidc_audience: str | None = None        # expected `aud`
    oidc_user_claim: str = "preferred_username"
    secure_cookies: bool = True             # off only for plain-http development (…_SECURE_COOKIES=false)
    model: str = "icd-ranker"               # coding artifact for evidence and the cut-off K
    page_size: int = 50
    max_conditions: int = 5000              # upper bound of suggested Conditions read per worklist

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "ReviewSettings":
        return cls(**env_values(cls, os.environ if env is None else env, ENV_PREFIX + "REVIEW_"))

    @property
    def auth_mode(self) -> str:
        if self.oidc_issuer and self.oidc_jwks:
            return "bearer"
        if self.user:
            return "single-user"
        return "none"


@dataclass(frozen=True)
class Settings:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    redis_url: str | None = None
    # without Redis: a SQLite file the server processes share (serve makes a temporary one)
    state_file: str | None = None
    # False: the state file is not flushed to disk at checkpoints (serve's temporary file, removed at
    # exit: a crashed machine loses it either way); a process that dies loses nothing
    state_file_durable: bool = True
    fhir_base_url: str | None = None
    trust: tuple[TrustedIssuerSpec, ...] = setting((), parse=lambda name, v: tuple(
        parse_trust(item) for item in re.split(r"[\s;]+", v) if item))
    no_auth: bool = False
    models_dir: str | None = setting(None, env="MODELS")
    device: str = "auto"            # where the models run (suggest.placement): auto, cpu, cuda, cuda:N
    debug: bool = False
    public_url: str | None = setting(None, parse=lambda name, v: v.strip().rstrip("/") or None)
    trust_proxy: bool = False
    write_back: bool = True
    write_back_max: int = 15                        # most codes written back per encounter
    write_back_precision: float = 0.5               # validation precision above the write-back floor
    write_back_retry_s: float = 5.0                 # first retry of a write-back the server could not take
    write_back_give_up: int = 12                    # failed retries before a queued write-back is given up
    target_recall: float = 0.9                      # the recommended list's expected recall
    cut_rule: str = "per-encounter"                 # or "expected-recall", "global-k"
    cut_min_probability: float = 0.0                # fused list: stop below this score (0 = off)
    system_actions: bool = False
    cors_origins: tuple[str, ...] = setting(("*",), parse=lambda name, v: _url_list(v))
    fhir_timeout: float = 5.0
    state_ttl_s: int = setting(30 * 24 * 3600, env="STATE_TTL")
    jwt_leeway_s: int = setting(60, env="JWT_LEEWAY")
    jwt_max_age_s: int = setting(3600, env="JWT_MAX_AGE")
    jwt_algorithms: tuple[str, ...] = DEFAULT_ALGORITHMS
    public_discovery: bool = False
    threads: int = 8
    workers: int = 0                                # server processes; 0 = automatic (serve picks)
    max_request_mb: int = 32
    max_prefetch_resources: int = 50_000            # resources one call's prefetch may hold (else 413)
    top_codes: int = 20
    top_medications: int = 8
    evidence: bool = True                           # attribution per coding suggestion (~0.1 s per call)
    # fhirServer base URLs a hook call may name, besides fhir_base_url (url_policy compares them)
    allowed_fhir_servers: tuple[str, ...] = setting((), parse=lambda name, v: _url_list(v))
    fhir_max_response_mb: int = 16
    admin_token_sha256: str | None = setting(None, parse=lambda name, v: v.strip().lower() or None)
    metrics_token_sha256: str | None = setting(None, parse=lambda name, v: v.strip().lower() or None)
    # issuer → the tenants its tokens may name (default: only "default", within that issuer)
    issuer_tenants_spec: tuple = setting((), env="ISSUER_TENANTS", parse=lambda name, v: parse_issuer_tenants(v))
    # issuers whose calls may use --fhir-base-url (reads and write-back) without naming a fhirServer
    fhir_base_url_issuers: tuple[str, ...] = ()
    source_url: str = "https://fhir-assist.example.org"      # set to your deployment's documentation
    session_key: str | None = setting(None, env="SECRET_KEY")   # signs the worklist's session cookie
    review: ReviewSettings = setting(section=ReviewSettings, env="REVIEW_")

    # ------------------------------------------------------------------ build
    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        return cls(**env_values(cls, os.environ if env is None else env)).checked()

    @classmethod
    def from_args(cls, args: object, env: Mapping[str, str] | None = None) -> "Settings":
        """Environment first, then every CLI option the user actually gave (None = not given)."""
        settings = cls.from_env(env)
        overrides: dict[str, object] = {}
        if getattr(args, "public_url", None):
            overrides["public_url"] = args.public_url.strip().rstrip("/")
        for name in ("host", "port", "redis_url", "fhir_base_url", "workers", "target_recall", "device"):
            value = getattr(args, name, None)
            if value is not None:
                overrides[name] = value
        if getattr(args, "models", None):
            overrides["models_dir"] = args.models
        trust = getattr(args, "trust", None)
        if trust:
            # CLI entries add to those from the environment (a chart may set a base list).
            overrides["trust"] = settings.trust + tuple(parse_trust(t) for t in trust)
        if getattr(args, "no_auth", False):
            overrides["no_auth"] = True
        if getattr(args, "debug", False):
            overrides["debug"] = True
        return replace(settings, **overrides).checked()

    def with_(self, **changes: object) -> "Settings":
        return replace(self, **changes).checked()

    # ---------------------------------------------------------------- checks
    def checked(self) -> "Settings":
        if not (0 <= self.port <= 65535):
            raise SettingsError(f"port {self.port} is not between 0 and 65535")
        if self.fhir_timeout <= 0:
            raise SettingsError("the FHIR timeout must be positive")
        if not self.write_back_retry_s > 0 or self.write_back_give_up < 1:
            raise SettingsError("the write-back retry delay must be positive and the give-up count at least 1")
        if self.write_back_max < 1 or self.top_codes < 1 or self.top_medications < 1:
            raise SettingsError("write-back and card limits must be at least 1")
        if not (0 < self.target_recall <= 1) or not (0 <= self.write_back_precision <= 1):
            raise SettingsError("the target recall must be in (0, 1] and the write-back precision in [0, 1]")
        if not (0 <= self.cut_min_probability < 1):
            raise SettingsError("the cut's probability floor must be in [0, 1)")
        if self.cut_rule not in ("per-encounter", "expected-recall", "global-k"):
            raise SettingsError("the cut rule must be per-encounter, expected-recall or global-k, "
                                f"not {self.cut_rule!r}")
        if self.threads < 1:
            raise SettingsError("threads must be at least 1")
        try:
            checked_device(self.device)
        except PlacementError as exc:
            raise SettingsError(str(exc)) from None
        if self.workers < 0:
            raise SettingsError("workers must be 0 (automatic) or more")
        if self.max_request_mb < 1 or self.fhir_max_response_mb < 1 or self.max_prefetch_resources < 1:
            raise SettingsError("the request and FHIR answer size limits must be at least 1 MB")
        for name in ("admin_token_sha256", "metrics_token_sha256"):
            if getattr(self, name) and not re.fullmatch(r"[0-9a-f]{64}", getattr(self, name)):
                raise SettingsError(f"FHIR_ASSIST_{name.upper()} must be 64 hex digits (sha256sum of the secret)")
        try:
            self.fhir_server_allow_list
        except url_policy.UrlRefused as exc:
            raise SettingsError(f"FHIR server allow-list / --fhir-base-url: {exc}") from None
        bad = [a for a in self.jwt_algorithms if a in FORBIDDEN_ALGORITHMS]
        if bad:
            raise SettingsError(f"JWT algorithms {', '.join(bad)} are not allowed for CDS clients "
                                "(unsigned and shared-secret algorithms are forbidden)")
        for url_name in ("redis_url", "fhir_base_url", "public_url"):
            url = getattr(self, url_name)
            if url and "://" not in url:
                raise SettingsError(f"{url_name.replace('_', '-')} {url!r} is not a URL")
        if self.trust and not self.no_auth and not self.public_url:
            # Without it the expected `aud` would come from the request's Host header, and
            # a token issued for another service behind the same name would be accepted.
            raise SettingsError("authentication is on: set FHIR_ASSIST_PUBLIC_URL (--public-url) to this "
                                "service's external base URL, the audience its tokens must name")
        for spec in self.trust:
            if spec.source.startswith("http://") and not _is_loopback(spec.source):
                raise SettingsError(f"trusted issuer {spec.issuer!r}: its JWKS URL must be https "
                                    "(plain http only on this machine's loopback)")
            if not spec.is_url and not Path(spec.source).is_file():
                raise SettingsError(f"trusted issuer {spec.issuer!r}: key file {spec.source!r} not found")
        if self.models_dir and not Path(self.models_dir).is_dir():
            raise SettingsError(f"models directory {self.models_dir!r} not found")
        return self

    @property
    def issuer_tenants(self) -> dict[str, tuple[str, ...]]:
        return dict(self.issuer_tenants_spec)

    @property
    def fhir_server_allow_list(self) -> tuple:
        """Where an EHR's token may be sent: the allow-list and the configured FHIR server."""
        urls = self.allowed_fhir_servers + ((self.fhir_base_url,) if self.fhir_base_url else ())
        return url_policy.parse_all(urls)

    @property
    def auth_required(self) -> bool:
        return not self.no_auth

    def describe(self) -> dict[str, object]:
        """Settings for the start-up log, with nothing secret in them."""
        out: dict[str, object] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "redis_url" and value:
                value = _hide_password(value)
            if f.name == "trust":
                value = [f"{t.issuer}={t.source}" for t in value]
            if f.name in ("session_key", "admin_token_sha256", "metrics_token_sha256") and value:
                value = "***"
            if is_dataclass(value):
                value = asdict(value)
            out[f.name] = value
        return out


def parse_trust(item: str) -> TrustedIssuerSpec:
    """'https://ehr.example.org=keys/ehr.jwks.json' → TrustedIssuerSpec.

    An issuer URL may itself contain '=', so the split is at the last '=' whose
    right side is an existing file or a URL.
    """
    item = item.strip()
    positions = [i for i, ch in enumerate(item) if ch == "="]
    for i in reversed(positions):
        iss, src = item[:i], os.path.expanduser(item[i + 1:])
        if iss and src and (src.startswith(("https://", "http://")) or Path(src).exists()):
            return TrustedIssuerSpec(iss, src)
    if positions and 0 < positions[-1] < len(item) - 1:
        # Nothing exists yet: split at the last '=' and let `checked()` name the missing file.
        i = positions[-1]
        return TrustedIssuerSpec(item[:i], os.path.expanduser(item[i + 1:]))
    raise SettingsError(f"--trust expects ISS=FILE (or ISS=JWKS-URL), got {item!r}")


def parse_issuer_tenants(text: str) -> tuple:
    """'https://ehr-a.org=hospA,hospA-east; https://ehr-b.org=hospB' → ((iss, (tenants…)), …)."""
    out = []
    for item in re.split(r"[\s;]+", text.strip()):
        if not item:
            continue
        issuer, eq, tenants = item.rpartition("=")
        names = tuple(t.strip() for t in tenants.split(",") if t.strip())
        if not eq or not issuer or not names:
            raise SettingsError(f"FHIR_ASSIST_ISSUER_TENANTS expects ISS=TENANT[,TENANT…], got {item!r}")
        out.append((issuer, names))
    return tuple(out)


def _is_loopback(url: str) -> bool:
    from urllib.parse import urlsplit
    host = (urlsplit(url).hostname or "").lower()
    return host in ("localhost", "::1") or host.startswith("127.")


def _hide_password(url: str) -> str:
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)


def _bool(name: str, value: str) -> bool:
    v = value.strip().lower()
    if v in {"1", "true", "yes", "on"}:
        return True
    if v in {"0", "false", "no", "off", ""}:
        return False
    raise SettingsError(f"{name} must be true or false, got {value!r}")


def _int(name: str, value: str | int) -> int:
    try:
        return int(str(value).strip())
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, got {value!r}") from None


def _float(name: str, value: str) -> float:
    try:
        return float(value.strip())
    except ValueError:
        raise SettingsError(f"{name} must be a number, got {value!r}") from None


def _text(name: str, value: str) -> str:
    return value.strip()


def _optional_text(name: str, value: str) -> str | None:
    return value.strip() or None


def _list(name: str, value: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in value.split(",") if item.strip())


def _url_list(value: str) -> tuple[str, ...]:
    return tuple(url.rstrip("/") for url in _list("", value))


# How a variable is read, by the field's declared type (fields with other types name a parser).
_PARSERS: dict[str, Callable[[str, str], Any]] = {
    "str": _text, "str | None": _optional_text, "int": _int, "float": _float, "bool": _bool,
    "tuple[str, ...]": _list,
}
