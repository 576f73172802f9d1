"""Web push: VAPID-signed, aes128gcm-encrypted messages to a browser's push service.

pywebpush does the encryption (RFC 8291) and the VAPID header (RFC 8292); the
keys come from `manage.py generate_vapid_keys`. A push service answering 404
or 410 says the subscription is gone: the worker removes it.
"""

from __future__ import annotations

from django.conf import settings
from py_vapid import Vapid02, b64urlencode
from pywebpush import WebPushException, webpush

from .models import masked
from .outcome import Outcome


def enabled() -> bool:
    return bool(settings.VAPID_PRIVATE_KEY and settings.VAPID_PUBLIC_KEY)


def generate_keys() -> tuple[str, str]:
    """(private key, public application server key), both base64url, for the settings."""
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    vapid = Vapid02()
    vapid.generate_keys()
    private = b64urlencode(vapid.private_key.private_numbers().private_value.to_bytes(32, "big"))
    public = b64urlencode(vapid.public_key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint))
    return private, public


def send(endpoint: str, keys: dict, payload: str, *, ttl: int = 3600) -> Outcome:
    try:
        response = webpush(
            subscription_info={"endpoint": endpoint, "keys": keys},
            data=payload,
            vapid_private_key=settings.VAPID_PRIVATE_KEY,
            vapid_claims={"sub": settings.VAPID_SUBJECT},  # a fresh dict: webpush adds aud/exp to it
            timeout=settings.ALERTS_SEND_TIMEOUT,
            ttl=ttl,
        )
    except WebPushException as error:
        status = error.response.status_code if error.response is not None else None
        return Outcome(False, status, f"push service answered {status or 'nothing'} "
                                      f"({masked(endpoint)})", retry=status not in (404, 410),
                       gone=status in (404, 410))
    except Exception as error:
        return Outcome(False, error=f"{type(error).__name__} pushing to {masked(endpoint)}")
    return Outcome(True, response.status_code)
