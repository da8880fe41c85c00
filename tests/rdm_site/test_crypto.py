"""Secrets at rest: encrypted with the current key, readable through a key rotation, unreadable without a key."""

import pytest
from cryptography.fernet import Fernet

from rdm_site.crypto import SecretDecryptionError, decrypt_secret, encrypt_secret, reencrypt_secret


def test_round_trip_keeps_the_secret_and_stores_no_clear_text(settings):
    # given a configured key
    settings.RDM_SECRETS_KEY = Fernet.generate_key().decode()

    # when a secret is encrypted
    token = encrypt_secret("p@ss wörd")

    # then the stored form does not show it, and decrypts back to it
    assert "p@ss" not in token
    assert decrypt_secret(token) == "p@ss wörd"


def test_development_falls_back_to_a_key_derived_from_secret_key(settings, caplog):
    # given no RDM_SECRETS_KEY
    settings.RDM_SECRETS_KEY = ""
    settings.SECRET_KEY = "a-development-secret-key-for-this-test-only"

    # when a secret is encrypted and decrypted
    token = encrypt_secret("dev secret")

    # then it works, and the fallback is announced
    assert decrypt_secret(token) == "dev secret"
    assert "RDM_SECRETS_KEY is not set" in caplog.text

    # and the key comes from SECRET_KEY: another one cannot read it
    settings.SECRET_KEY = "another-development-secret-key"
    with pytest.raises(SecretDecryptionError):
        decrypt_secret(token)


def test_rotation_reads_old_secrets_and_reencrypts_them_with_the_new_key(settings):
    # given a secret stored under the old key
    old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.RDM_SECRETS_KEY = old_key
    old_token = encrypt_secret("rotate me")

    # when the key is rotated, keeping the old one as previous
    settings.RDM_SECRETS_KEY, settings.RDM_SECRETS_KEY_PREVIOUS = new_key, [old_key]

    # then the old secret still decrypts, and re-encrypted it no longer needs the old key
    assert decrypt_secret(old_token) == "rotate me"
    new_token = reencrypt_secret(old_token)
    settings.RDM_SECRETS_KEY_PREVIOUS = []
    assert decrypt_secret(new_token) == "rotate me"
    with pytest.raises(SecretDecryptionError, match="RDM_SECRETS_KEY_PREVIOUS"):
        decrypt_secret(old_token)


def test_corrupt_secret_is_reported_not_returned(settings):
    # given a key, when a token that is not ours is decrypted, then it is refused
    settings.RDM_SECRETS_KEY = Fernet.generate_key().decode()
    with pytest.raises(SecretDecryptionError):
        decrypt_secret("not-a-token")
