"""One clear message (a `ConfigError`, exit status 2 at the CLI) for a buffer service that
cannot be reached, refuses the token or does not fit the config: no traceback."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from predprey.config import ConfigError
from predprey.service.client import BufferServiceError


@contextmanager
def service_errors(url: str) -> Iterator[None]:
    try:
        yield
    except httpx.TransportError as e:
        raise ConfigError(
            f"cannot reach the buffer service at {url} ({type(e).__name__}: {e}); "
            "gave up after retrying. Is `predprey serve-buffer` running there?"
        ) from None
    except BufferServiceError as e:
        if e.status in (401, 403):
            hint = "pass --token or set $PREDPREY_BUFFER_TOKEN to the server's token"
            raise ConfigError(f"the buffer service at {url} refused us ({e}); {hint}") from None
        raise ConfigError(f"the buffer service at {url} answered {e}") from None
    except ValueError as e:  # config/widths mismatch, or not a predprey buffer at all
        if isinstance(e, ConfigError):
            raise
        raise ConfigError(str(e)) from None
