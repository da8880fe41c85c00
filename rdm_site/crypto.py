"""Secrets at rest (secret variables, tool credentials) are stored encrypted, never in clear text.

The key is ``RDM_SECRETS_KEY`` (a Fernet key: ``python -c "from cryptography.fernet import Fernet;
print(Fernet.generate_key().decode())"``); production mode refuses to start without it. Development falls
back to a key derived from SECRET_KEY and logs a warning, so that ``make run`` works out of the box.

Rotation: put the new key in ``RDM_SECRETS_KEY`` and the old one(s) in ``RDM_SECRETS_KEY_PREVIOUS``
(comma-separated). Everything decrypts with any of them, encryption always uses the new one, and
``reencrypt_secret`` moves a stored value to the new key; once all are moved the old keys can go.

Secrets RDM only has to recognise, never to use (API tokens, calendar feed addresses), are kept as a digest
instead (``secret_digest``): nothing can recover them, and no key is involved.
"""

import base64
import functools
import hashlib
import logging

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

logger = logging.getLogger(__name__)


class SecretDecryptionError(Exception):
    """A stored secret is corrupt or was encrypted with a key that is no longer configured."""


def secret_digest(secret: str) -> str:
    """The SHA-256 of a random, long secret (hex): a fast hash is enough when the secret cannot be guessed."""
    return hashlib.sha256(secret.encode()).hexdigest()


def encrypt_secret(plaintext: str) -> str:
    return _fernet().encrypt(plaintext.encode()).decode("ascii")


def decrypt_secret(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode("ascii")).decode()
    except (InvalidToken, UnicodeError):
        raise SecretDecryptionError(
            "cannot decrypt a stored secret: it is corrupt, or its key is neither RDM_SECRETS_KEY "
            "nor one of RDM_SECRETS_KEY_PREVIOUS"
        ) from None


def reencrypt_secret(token: str) -> str:
    """The same secret encrypted with the current key (for rotating keys)."""
    try:
        return _fernet().rotate(token.encode("ascii")).decode("ascii")
    except (InvalidToken, UnicodeError):
        raise SecretDecryptionError("cannot re-encrypt a stored secret that no configured key decrypts") from None


def _fernet() -> MultiFernet:
    return _fernet_for(settings.RDM_SECRETS_KEY, tuple(settings.RDM_SECRETS_KEY_PREVIOUS), settings.SECRET_KEY)


@functools.lru_cache(maxsize=4)
def _fernet_for(key: str, previous_keys: tuple[str, ...], secret_key: str) -> MultiFernet:
    if not key:
        logger.warning("RDM_SECRETS_KEY is not set: secrets are encrypted with a key derived from SECRET_KEY")
        key = _derive_key(secret_key)
    return MultiFernet([Fernet(key), *(Fernet(previous) for previous in previous_keys)])


def _derive_key(secret_key: str) -> bytes:
    """A Fernet key from SECRET_KEY, bound to this purpose so it is never SECRET_KEY's own signing key."""
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"rdm secrets at rest")
    return base64.urlsafe_b64encode(hkdf.derive(secret_key.encode()))
