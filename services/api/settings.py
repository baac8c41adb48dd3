"""The API's settings: one typed object read from the environment (prefix API_).

MongoDB is reached through `services.shared.mongo.MongoSettings` (prefix MONGODB_), like the operator.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Self

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.shared.mongo import MongoSettings, read_secret_file

# The original platform's path and contract (v1alpha1); the platform's own shapes are under
# V1BETA1_PATH (services.api.contracts).
BASE_PATH = "/api/orchestrator/v1alpha1"
V1BETA1_PATH = "/api/orchestrator/v1beta1"
GIB = 1024**3


class ApiSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="API_", extra="ignore")

    # The admin bearer token: reads and changes (POST, DELETE). Without one every change is refused.
    token: SecretStr | None = None
    # Or a file holding it (API_TOKEN_FILE: the platform mounts its Secret, keeping it out of the env).
    token_file: Path | None = None
    # A read-only bearer token (the frontend's): lists and downloads, never a change (403).
    read_token: SecretStr | None = None
    read_token_file: Path | None = None
    # Namespace of the Analytics resources the API creates, reads and deletes.
    namespace: str = "default"
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
        return value if value is not None and value.get_secret_value() else None

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
            value = read_secret_file(self.token_file)
            self.token = SecretStr(value) if value else None
        if self.read_token is None and self.read_token_file is not None:
            value = read_secret_file(self.read_token_file)
            self.read_token = SecretStr(value) if value else None
        if (
            self.token is not None
            and self.read_token is not None
            and self.token.get_secret_value() == self.read_token.get_secret_value()
        ):
            raise ValueError("API_READ_TOKEN must differ from API_TOKEN (the read token can change nothing)")
        return self


@lru_cache
def get_settings() -> ApiSettings:
    """The process's settings, read once from the environment (tests build their own)."""
    return ApiSettings()
