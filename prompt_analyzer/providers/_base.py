"""What every platform client shares: settings, the secrets to scrub, and the key check."""

from __future__ import annotations

from collections.abc import Sequence

from ..config import PlatformSettings
from .errors import AuthError


class BaseProvider:
    """Holds one platform's settings; subclasses own one HTTP client for the whole run."""

    name: str
    model: str

    def __init__(self, settings: PlatformSettings, *, secrets: Sequence[str] = ()) -> None:
        self.settings = settings
        self.name = settings.name
        self.model = settings.model
        key = settings.api_key.get() if settings.api_key is not None else ""
        # The platform's own key is always scrubbed, even if the caller forgot to pass it.
        self.secrets: tuple[str, ...] = tuple(s for s in (*secrets, key) if s and len(s) >= 4)
        if not key:
            raise AuthError(f"{self.name}: no API key configured", status=None)
        self._key = key

    @property
    def timeout_s(self) -> float:
        return float(self.settings.timeout_s)

    @property
    def pool_size(self) -> int:
        return max(1, int(self.settings.max_concurrency))

    async def aclose(self) -> None:  # pragma: no cover - overridden
        return None
