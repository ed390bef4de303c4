"""Where firmware release files live, and the limits of the update flow.

Two mixins, so each part reads only what it uses: the runtime serves files from
the local directory (`FirmwareFileSettings`); the API also uploads, signs and
decides (`FirmwareSettings`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self

from pydantic import Field, SecretStr, model_validator

from shared.settings import BaseOpenDotSettings, SettingsError


class FirmwareFileSettings(BaseOpenDotSettings):
    data_dir: Path = Field(
        default=Path(".opendot"),
        alias="OPENDOT_DATA_DIR",
        description="Where `opendot up` keeps its data: the embedded PostgreSQL (pgdata/) "
        "and, with local firmware storage, the release files (firmware/).",
    )
    firmware_storage: Literal["local", "s3"] = Field(
        default="local",
        alias="OPENDOT_FIRMWARE_STORAGE",
        description="local: release files under OPENDOT_DATA_DIR/firmware, served by the "
        "runtime; s3: an S3 bucket (Supabase Storage's S3 API, AWS S3, MinIO, ...).",
    )

    @property
    def firmware_dir(self) -> Path:
        return self.data_dir.expanduser().resolve() / "firmware"


class FirmwareSettings(FirmwareFileSettings):
    firmware_max_bytes: int = Field(
        default=8 * 1024 * 1024,
        alias="OPENDOT_FIRMWARE_MAX_BYTES",
        ge=1024,
        le=64 * 1024 * 1024,
        description="Largest release file accepted (an ESP32-S3 OTA slot is 4-6 MiB). "
        "Behind AWS Lambda keep it under 4 MiB: Lambda refuses requests over 6 MB.",
    )
    firmware_url_ttl_s: int = Field(
        default=900,
        alias="OPENDOT_FIRMWARE_URL_TTL_S",
        ge=60,
        le=86_400,
        description="Lifetime of a download URL in an OTA answer (the Dot downloads at once).",
    )
    firmware_max_offers: int = Field(
        default=3,
        alias="OPENDOT_FIRMWARE_MAX_OFFERS",
        ge=1,
        le=100,
        description="Offers of one rollout to one Dot; still on the old version after that "
        "and the Dot is 'stuck' and not offered it again.",
    )
    firmware_s3_endpoint: str | None = Field(
        default=None,
        alias="OPENDOT_FIRMWARE_S3_ENDPOINT",
        description="S3 endpoint, path-style (Supabase: https://<ref>.supabase.co/storage/v1/s3);"
        " unset means AWS S3 in OPENDOT_FIRMWARE_S3_REGION, virtual-hosted.",
    )
    firmware_s3_region: str = Field(
        default="us-east-1",
        alias="OPENDOT_FIRMWARE_S3_REGION",
        description="Region the S3 signatures name (Supabase: the project's region).",
    )
    firmware_s3_bucket: str | None = Field(
        default=None, alias="OPENDOT_FIRMWARE_S3_BUCKET", description="Bucket of release files."
    )
    firmware_s3_access_key_id: str | None = Field(
        default=None, alias="OPENDOT_FIRMWARE_S3_ACCESS_KEY_ID", description="S3 access key id."
    )
    firmware_s3_secret_access_key: SecretStr | None = Field(
        default=None,
        alias="OPENDOT_FIRMWARE_S3_SECRET_ACCESS_KEY",
        description="S3 secret access key.",
    )

    @model_validator(mode="after")
    def _s3_complete(self) -> Self:
        if self.firmware_storage != "s3":
            return self
        missing = [
            alias
            for alias, value in (
                ("OPENDOT_FIRMWARE_S3_BUCKET", self.firmware_s3_bucket),
                ("OPENDOT_FIRMWARE_S3_ACCESS_KEY_ID", self.firmware_s3_access_key_id),
                ("OPENDOT_FIRMWARE_S3_SECRET_ACCESS_KEY", self.firmware_s3_secret_access_key),
            )
            if not value
        ]
        if missing:
            raise SettingsError(
                "OPENDOT_FIRMWARE_STORAGE=s3 needs " + ", ".join(missing) + " to be set."
            )
        return self
