"""Encryption at rest of the store's customer text (ASSIST_STORE_KEY).

`ASSIST_STORE_KEY` holds one or more Fernet keys (AES-128-CBC + HMAC-SHA256, from the `cryptography`
package), comma-separated. The first key encrypts; every key decrypts, so a key is rotated by putting
the new one first, running `assist db rekey`, then dropping the old one.

A sealed value is `enc1:` + the Fernet token, so rows written before a key was set (plain text) are still
read, and a store read without the key it needs fails with a clear message instead of showing tokens.
"""

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from assist.errors import AssistError

PREFIX = "enc1:"
_BPREFIX = PREFIX.encode()


def new_key() -> str:
    """A fresh random key for ASSIST_STORE_KEY."""
    return Fernet.generate_key().decode()


def _keys(spec: str) -> list[Fernet]:
    keys = []
    for n, key in enumerate((k.strip() for k in spec.split(",")), start=1):
        if not key:
            continue
        try:
            keys.append(Fernet(key))
        except ValueError:
            raise AssistError(f"ASSIST_STORE_KEY: key {n} is not a Fernet key (44 characters of url-safe base64); "
                              "make one with `assist db new-key`") from None
    return keys


class Cipher:
    """Seals text and bytes for the store and opens them again; without keys it stores plain text."""

    def __init__(self, spec: str = ""):
        keys = _keys(spec or "")
        self.enabled = bool(keys)
        self._writer = keys[0] if keys else None
        self._reader = MultiFernet(keys) if keys else None

    def seal(self, text: str | None) -> str | None:
        if text is None or self._writer is None:
            return text
        return PREFIX + self._writer.encrypt(text.encode("utf-8")).decode("ascii")

    def seal_bytes(self, data: bytes | None) -> bytes | None:
        if data is None or self._writer is None:
            return data
        return _BPREFIX + self._writer.encrypt(data)

    def open(self, value: str | None) -> str | None:
        if value is None or not value.startswith(PREFIX):
            return value  # plain text: written before encryption was switched on
        return self._decrypt(value[len(PREFIX):].encode("ascii")).decode("utf-8")

    def open_bytes(self, value: bytes | None) -> bytes | None:
        if value is None or not bytes(value).startswith(_BPREFIX):
            return value
        return self._decrypt(bytes(value)[len(_BPREFIX):])

    def _decrypt(self, token: bytes) -> bytes:
        if self._reader is None:
            raise AssistError("the store holds encrypted text: set ASSIST_STORE_KEY to the key it was written with")
        try:
            return self._reader.decrypt(token)
        except InvalidToken:
            raise AssistError("stored text was encrypted with a key that ASSIST_STORE_KEY does not hold "
                              "(keep the old key in the list, after the new one, until `assist db rekey` has run)") from None
