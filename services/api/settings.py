"""The API's settings: one typed object read from the environment (prefix API_).

MongoDB is reached through `services.shared.mongo.MongoSettings` (prefix MONGODB_), like the operator.

Solutions (services.shared.solutions): API_TOKEN, API_READ_TOKEN and API_NAMESPACE are the default
solution's; API_SOLUTIONS lists the others, each with its own namespace and tokens. Every token belongs to
exactly one solution and one role, so a token used twice is refused at start.
"""

from __future__ import annotations

from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any, Self

from pydantic import ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.shared.mongo import MongoSettings, read_secret_file
from services.shared.solutions import DEFAULT_SOLUTION, SolutionPlace, all_places

# The original platform's path and contract (v1alpha1); the platform's own shapes are under
# V1BETA1_PATH (services.api.contracts).
BASE_PATH = "/api/orchestrator/v1alpha1"
V1BETA1_PATH = "/api/orchestrator/v1beta1"
GIB = 1024**3


def _secret_from_file(path: Path, what: str) -> SecretStr | None:
    try:
        value = read_secret_file(path)
    except OSError as exc:
        raise ValueError(f"{what}: cannot read {path} ({exc.strerror})") from exc
    return SecretStr(value) if value else None


def _no_empty_token(value: SecretStr | None) -> SecretStr | None:
    return value if value is not None and value.get_secret_value() else None


class SolutionAccess(SolutionPlace):
    """A solution as the API serves it: where it lives, and its admin and read bearer tokens (each given
    directly or as a file holding it: the platform mounts the solution's Secrets, see API_SOLUTIONS)."""

    token: SecretStr | None = None
    token_file: Path | None = None
    read_token: SecretStr | None = None
    read_token_file: Path | None = None

    # A refused setting's error must not print the input: it holds tokens.
    model_config = ConfigDict(hide_input_in_errors=True)

    @model_validator(mode="before")
    @classmethod
    def _tokens_from_files(cls, data: Any) -> Any:
        # Before validation: the model is frozen, so the files are read into the input instead.
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for token, file in (("token", "token_file"), ("read_token", "read_token_file")):
            if not data.get(token) and data.get(file):
                data[token] = _secret_from_file(Path(data[file]), f"solution {data.get('name')!r}: {file}")
        return data

    @field_validator("token", "read_token")
    @classmethod
    def _empty_token_is_none(cls, value: SecretStr | None) -> SecretStr | None:
        return _no_empty_token(value)

    def tokens(self) -> list[tuple[str, SecretStr]]:
        """The configured tokens, each with what it is (for messages; never the value)."""
        named = [
            (f"the admin token of solution {self.name!r}", self.token),
            (f"the read token of solution {self.name!r}", self.read_token),
        ]
        return [(what, token) for what, token in named if token is not None]


class ApiSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="API_", extra="ignore", hide_input_in_errors=True)

    # The admin bearer token: reads and changes (POST, DELETE). Without one every change is refused.
    token: SecretStr | None = None
    # Or a file holding it (API_TOKEN_FILE: the platform mounts its Secret, keeping it out of the env).
    token_file: Path | None = None
    # A read-only bearer token (the frontend's): lists and downloads, never a change (403).
    read_token: SecretStr | None = None
    read_token_file: Path | None = None
    # Namespace of the default solution's Analytics resources (those the API creates, reads and deletes).
    namespace: str = "default"
    # The other solutions, as a JSON list (API_SOLUTIONS='[{"name": "lab", "namespace": "dt-lab",
    # "token_file": "...", "read_token_file": "..."}]'): served under <base>/solutions/<name>.
    solutions: list[SolutionAccess] = Field(default_factory=list)
    # Largest accepted upload, in bytes.
    max_upload_bytes: int = Field(default=GIB, ge=1)
    # Origins allowed by CORS, as a JSON list (API_CORS_ORIGINS='["https://dt.example.org"]').
    cors_origins: list[str] = Field(default_factory=list)
    # Where `dtpoc-api` listens.
    host: str = "0.0.0.0"  # noqa: S104 - in a pod the Service reaches it from outside
    port: int = Field(default=8000, ge=1, le=65535)
    # Kubernetes: this kubeconfig when set; otherwise in-cluster config, then KUBECONFIG or ~/.kube/config.
    kubeconfig: Path | None = None
    # Timeout of one Kubernetes API call, in seconds (a 503 follows when it runs out).
    kube_timeout_seconds: float = Field(default=10.0, gt=0)

    # GET /service/{id}/events sends a keep-alive comment after this many seconds without a change.
    events_keepalive_seconds: float = Field(default=15.0, gt=0, le=300)

    mongo: MongoSettings = Field(default_factory=MongoSettings)

    @field_validator("token", "read_token")
    @classmethod
    def _empty_token_is_none(cls, value: SecretStr | None) -> SecretStr | None:
        return _no_empty_token(value)

    @field_validator("cors_origins")
    @classmethod
    def _no_wildcard_origin(cls, origins: list[str]) -> list[str]:
        for origin in origins:
            if "*" in origin or not origin.startswith(("http://", "https://")):
                raise ValueError(
                    f"API_CORS_ORIGINS: {origin!r} is not an http(s) origin such as https://dt.example.org "
                    "(a wildcard would let any web page call the API)"
                )
        return origins

    @model_validator(mode="after")
    def _token_from_file(self) -> Self:
        if self.token is None and self.token_file is not None:
            self.token = _secret_from_file(self.token_file, "API_TOKEN_FILE")
        if self.read_token is None and self.read_token_file is not None:
            self.read_token = _secret_from_file(self.read_token_file, "API_READ_TOKEN_FILE")
        if (
            self.token is not None
            and self.read_token is not None
            and self.token.get_secret_value() == self.read_token.get_secret_value()
        ):
            raise ValueError("API_READ_TOKEN must differ from API_TOKEN (the read token can change nothing)")
        return self

    @model_validator(mode="after")
    def _each_token_belongs_to_one_solution(self) -> Self:
        all_places(self.namespace, list(self.solutions))  # names and namespaces unique, none "default"
        seen: dict[str, str] = {}
        for access in self.accesses:
            for what, token in access.tokens():
                first = seen.setdefault(token.get_secret_value(), what)
                if first != what:
                    raise ValueError(
                        f"API_SOLUTIONS: {first} and {what} are the same; every token must differ from "
                        "every other (a token belongs to one solution, with one role)"
                    )
        return self

    @cached_property
    def accesses(self) -> list[SolutionAccess]:
        """Every solution the API serves, the default one (API_NAMESPACE, API_TOKEN, API_READ_TOKEN) first."""
        default = SolutionAccess(
            name=DEFAULT_SOLUTION, namespace=self.namespace, token=self.token, read_token=self.read_token
        )
        return [default, *self.solutions]


@lru_cache
def get_settings() -> ApiSettings:
    """The process's settings, read once from the environment (tests build their own)."""
    return ApiSettings()
