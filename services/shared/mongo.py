"""How both services reach MongoDB: one typed settings object, one client factory."""

from __future__ import annotations

from urllib.parse import quote_plus

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict
from pymongo import AsyncMongoClient


class MongoSettings(BaseSettings):
    """MONGODB_URL wins; otherwise the URL is built from host, port and the credentials that the
    platform passes in from its Secret (MONGODB_USERNAME / MONGODB_PASSWORD)."""

    model_config = SettingsConfigDict(env_prefix="MONGODB_", extra="ignore")

    url: SecretStr | None = None
    host: str = "mongodb"
    port: int = 27017
    username: str | None = None
    password: SecretStr | None = None
    # Fail fast when the database is away, so requests get a clear 503 instead of hanging.
    timeout_ms: int = 5000

    def connection_url(self) -> str:
        if self.url is not None:
            return self.url.get_secret_value()
        credentials = ""
        if self.username and self.password:
            credentials = f"{quote_plus(self.username)}:{quote_plus(self.password.get_secret_value())}@"
        return f"mongodb://{credentials}{self.host}:{self.port}/"


def connect(settings: MongoSettings) -> AsyncMongoClient:
    """An async client; it connects lazily and reconnects by itself after an outage."""
    return AsyncMongoClient(
        settings.connection_url(),
        serverSelectionTimeoutMS=settings.timeout_ms,
        connectTimeoutMS=settings.timeout_ms,
        tz_aware=True,
    )
