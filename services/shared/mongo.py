"""How both services reach MongoDB: one typed settings object, one client factory."""

from __future__ import annotations

from pathlib import Path
from typing import Self
from urllib.parse import quote_plus

from pydantic import SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from pymongo import AsyncMongoClient


def read_secret_file(path: Path) -> str:
    """A credential mounted from a Kubernetes Secret (a file per key), without a trailing newline."""
    return path.read_text().rstrip("\r\n")


class MongoSettings(BaseSettings):
    """MONGODB_URL wins; otherwise the URL is built from host, port and the credentials that the
    platform passes in from its Secret: as files (MONGODB_USERNAME_FILE / MONGODB_PASSWORD_FILE, the
    Secret mounted as a volume, so the values never sit in the process environment) or as
    MONGODB_USERNAME / MONGODB_PASSWORD."""

    model_config = SettingsConfigDict(env_prefix="MONGODB_", extra="ignore")

    url: SecretStr | None = None
    host: str = "mongodb"
    port: int = 27017
    username: str | None = None
    password: SecretStr | None = None
    username_file: Path | None = None
    password_file: Path | None = None
    # FerretDB 1.x (the local stand-in) takes the PLAIN mechanism only; MongoDB negotiates SCRAM.
    auth_mechanism: str | None = None
    # Fail fast when the database is away, so requests get a clear 503 instead of hanging.
    timeout_ms: int = 5000

    @model_validator(mode="after")
    def _credentials_from_files(self) -> Self:
        if self.username is None and self.username_file is not None:
            self.username = read_secret_file(self.username_file)
        if self.password is None and self.password_file is not None:
            self.password = SecretStr(read_secret_file(self.password_file))
        return self

    def connection_url(self) -> str:
        if self.url is not None:
            return self.url.get_secret_value()
        credentials = ""
        if self.username and self.password:
            credentials = f"{quote_plus(self.username)}:{quote_plus(self.password.get_secret_value())}@"
        options = (
            f"?authMechanism={quote_plus(self.auth_mechanism)}" if credentials and self.auth_mechanism else ""
        )
        return f"mongodb://{credentials}{self.host}:{self.port}/{options}"


def connect(settings: MongoSettings) -> AsyncMongoClient:
    """An async client; it connects lazily and reconnects by itself after an outage."""
    return AsyncMongoClient(
        settings.connection_url(),
        serverSelectionTimeoutMS=settings.timeout_ms,
        connectTimeoutMS=settings.timeout_ms,
        tz_aware=True,
    )
