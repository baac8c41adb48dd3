"""Where the API is and how to authenticate: flags over environment (DTPOC_*) over a config file.

The config file is TOML (`~/.config/dtpoc/config.toml`, or the path in DTPOC_CONFIG / --config):

    url = "http://127.0.0.1:8000/api/orchestrator/v1beta1"
    token_file = "~/.config/dtpoc/token"

A token and a token file count as one setting: a layer that gives either overrides both of a lower
layer (DTPOC_TOKEN_FILE beats `token` in the config file); within one layer the token itself wins.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .errors import CliError, ExitCode

# The contract the CLI speaks; a URL without a path gets it appended.
API_PATH = "/api/orchestrator/v1beta1"
DEFAULT_URL = f"http://127.0.0.1:8000{API_PATH}"


class Layer(BaseModel):
    """One source of settings; None means "not given here"."""

    model_config = ConfigDict(extra="forbid")

    url: str | None = None
    token: SecretStr | None = None
    token_file: Path | None = None
    timeout_seconds: float | None = Field(default=None, gt=0)

    def given(self) -> dict[str, Any]:
        """What this layer sets, its token file already read into `token`."""
        values = self.model_dump(exclude_none=True, exclude={"token", "token_file"})
        if self.token is not None and self.token.get_secret_value():
            values["token"] = self.token
        elif self.token_file is not None:
            values["token"] = SecretStr(read_token_file(self.token_file))
        return values


class EnvironmentLayer(BaseSettings):
    """DTPOC_URL, DTPOC_TOKEN, DTPOC_TOKEN_FILE, DTPOC_TIMEOUT_SECONDS."""

    model_config = SettingsConfigDict(env_prefix="DTPOC_", extra="ignore", env_ignore_empty=True)

    url: str | None = None
    token: SecretStr | None = None
    token_file: Path | None = None
    timeout_seconds: float | None = Field(default=None, gt=0)

    def layer(self) -> Layer:
        return Layer(**self.model_dump())


class CliSettings(BaseModel):
    """The settings the commands use."""

    url: str = DEFAULT_URL
    token: SecretStr | None = None
    # Connect, read and write timeout of one request (a long upload only needs each chunk to move).
    timeout_seconds: float = Field(default=60.0, gt=0)

    @field_validator("url")
    @classmethod
    def _api_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"{value!r} is not an http(s) URL")
        value = value.rstrip("/")
        return value + API_PATH if parts.path in ("", "/") else value


def read_token_file(path: Path) -> str:
    try:
        token = path.expanduser().read_text().strip()
    except OSError as exc:
        raise CliError(f"cannot read the token file {path}: {exc.strerror}", ExitCode.USAGE) from None
    if not token:
        raise CliError(f"the token file {path} is empty", ExitCode.USAGE)
    return token


def config_path(flag: Path | None, environ: Mapping[str, str]) -> tuple[Path, bool]:
    """The config file, and whether it was named explicitly (then it must exist)."""
    if flag is not None:
        return flag.expanduser(), True
    if environ.get("DTPOC_CONFIG"):
        return Path(environ["DTPOC_CONFIG"]).expanduser(), True
    base = Path(environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "dtpoc" / "config.toml", False


def file_layer(path: Path, required: bool) -> Layer:
    if not path.exists() and not required:
        return Layer()
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except OSError as exc:
        raise CliError(f"cannot read the config file {path}: {exc.strerror}", ExitCode.USAGE) from None
    except tomllib.TOMLDecodeError as exc:
        raise CliError(f"the config file {path} is not valid TOML: {exc}", ExitCode.USAGE) from None
    try:
        return Layer(**data)
    except ValidationError as exc:
        raise CliError(f"the config file {path}: {_problems(exc)}", ExitCode.USAGE) from None


def _problems(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}" for error in exc.errors())


def load_settings(flags: Layer, config_flag: Path | None = None) -> CliSettings:
    """The settings from the config file, then the environment, then the flags (each overriding)."""
    path, required = config_path(config_flag, os.environ)
    try:
        environment = EnvironmentLayer().layer()
    except ValidationError as exc:
        raise CliError(f"the environment: {_problems(exc)}", ExitCode.USAGE) from None
    merged: dict[str, Any] = {}
    for layer in (file_layer(path, required), environment, flags):
        merged.update(layer.given())
    try:
        return CliSettings(**merged)
    except ValidationError as exc:
        raise CliError(f"bad setting: {_problems(exc)}", ExitCode.USAGE) from None
