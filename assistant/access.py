"""Who may do what: roles, API keys and the checks the shared faces make.

Once the assistant is served to several people, « who is asking » decides two things: which
documents they may see (a public caller never sees a document marked `visibility: interne`)
and whether they may change the corpus (upload, delete, re-index, export feedback). Three
roles cover that: `public` and `interne` read, `admin` also writes. The local faces (the CLI
run by whoever owns the index) are trusted and get `Caller.local`; network callers present a
key, checked by `KeyStore` against `<index dir>/keys.sqlite`, where only a hash of each key
is kept so that a copy of that file gives no access.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROLES: tuple[str, ...] = ("public", "interne", "admin")
ROLE_LABELS: dict[str, str] = {
    "public": "Public : documents publics, lecture seule",
    "interne": "Interne : tous les documents, lecture seule",
    "admin": "Administrateur : tous les documents, ajout, suppression, réindexation, export",
}

SECRET_PREFIX = "fpa_"
_MAX_SECRET_LEN = 256  # a real key is 47 characters; do not hash megabytes sent by anyone
_LAST_USED_EVERY = timedelta(minutes=1)


def _roles_text() -> str:
    return ", ".join(f"« {r} »" for r in ROLES)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Caller:
    """Who is asking: a role, a name for the logs, and the key used (None for local faces)."""

    role: str
    name: str
    key_id: str | None = None

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"Rôle inconnu : « {self.role} ». Rôles possibles : {_roles_text()}.")

    @property
    def audience(self) -> str:
        """The documents this caller may see: "public" for the public role, else "interne"."""
        return "public" if self.role == "public" else "interne"

    @property
    def can_write(self) -> bool:
        """Upload, delete, re-index, export feedback: admin only."""
        return self.role == "admin"

    @classmethod
    def local(cls, audience: str) -> Caller:
        """The trusted local faces (CLI): admin over an internal index, public otherwise."""
        return cls(role="admin" if audience == "interne" else "public", name="local")


class AccessDenied(Exception):
    """A refusal to show the user: `status` is 401 (no valid key) or 403 (role too low)."""

    def __init__(self, message: str, status: int = 403) -> None:
        if status not in (401, 403):
            raise ValueError(f"status must be 401 or 403, not {status}")
        super().__init__(message)
        self.message = message
        self.status = status

    @classmethod
    def unauthenticated(cls) -> AccessDenied:
        """401: no key, or a key that is unknown or revoked."""
        return cls(
            "Clé d'accès manquante, inconnue ou révoquée : envoyez l'en-tête "
            "« Authorization: Bearer <clé> ».",
            status=401,
        )


def _de(action: str) -> str:
    """« de » + action, elided before a vowel: « d'ajouter », « de supprimer »."""
    return f"d'{action}" if action[:1].lower() in "aàâeéèêëiîïoôuùûy" else f"de {action}"


def require_write(caller: Caller, action: str = "modifier le corpus") -> None:
    """Raise AccessDenied (403) unless `caller` may write.

    `action` is what was attempted, in French, as an infinitive: "ajouter des documents".
    """
    if not caller.can_write:
        raise AccessDenied(
            f"Ce rôle (« {caller.role} ») ne permet pas {_de(action)} : il faut une clé admin.",
            status=403,
        )


def parse_bearer(header: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header (scheme case-insensitive), else None."""
    if not header:
        return None
    parts = header.strip().split()
    if len(parts) != 2 or parts[0].lower() != "bearer":
        return None
    return parts[1]


@dataclass(frozen=True)
class KeyInfo:
    """A key as listed (never its secret). Dates are ISO 8601, UTC."""

    id: str
    name: str
    role: str
    prefix: str
    created_at: str
    revoked_at: str | None = None
    last_used_at: str | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


_SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    prefix TEXT NOT NULL,
    secret_sha256 TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    revoked_at TEXT,
    last_used_at TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS api_keys_active_name ON api_keys(name) WHERE revoked_at IS NULL;
"""
_COLUMNS = "id, name, role, prefix, created_at, revoked_at, last_used_at"


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


class KeyStore:
    """API keys in a SQLite file (`<index dir>/keys.sqlite`), shared by processes and threads.

    One connection per call, in autocommit mode, WAL journal: readers never wait for a
    writer, and any number of threads of an HTTP server can authenticate at once. The file
    and its table are created on first use.

    Only the SHA-256 of each secret is stored. A fast, unsalted hash is enough here because
    the secret is not a password: it is 256 random bits made by `secrets`, so there is no
    dictionary to try and nothing a salt or a slow hash would protect. The stored digest is
    compared in constant time (`hmac.compare_digest`).
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._ready = False
        self._lock = threading.Lock()

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        self._ensure()
        with closing(sqlite3.connect(self.path, timeout=10, isolation_level=None)) as conn:
            yield conn

    def _ensure(self) -> None:
        if self._ready:
            return
        with self._lock:
            if self._ready:
                return
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with closing(sqlite3.connect(self.path, timeout=10, isolation_level=None)) as conn:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.executescript(_SCHEMA)
            self._ready = True

    def add(self, name: str, role: str) -> tuple[KeyInfo, str]:
        """Create a key; returns its record and its secret, which is shown once and never kept."""
        name = (name or "").strip()
        if not name:
            raise ValueError("Le nom de la clé est vide : donnez un nom (personne ou service).")
        if role not in ROLES:
            raise ValueError(f"Rôle inconnu : « {role} ». Rôles possibles : {_roles_text()}.")
        secret = SECRET_PREFIX + secrets.token_urlsafe(32)
        info = KeyInfo(
            id=secrets.token_hex(4),
            name=name,
            role=role,
            prefix=secret[len(SECRET_PREFIX) : len(SECRET_PREFIX) + 8],
            created_at=_now(),
        )
        with self._connect() as conn:
            try:
                conn.execute(
                    "INSERT INTO api_keys (id, name, role, prefix, secret_sha256, created_at) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (info.id, info.name, info.role, info.prefix, _hash(secret), info.created_at),
                )
            except sqlite3.IntegrityError as err:
                if "api_keys.name" in str(err):
                    raise ValueError(
                        f"Une clé active porte déjà le nom « {name} » : "
                        "révoquez-la ou choisissez un autre nom."
                    ) from err
                raise  # an id collision (1 in 4 billion): rare enough to surface as is
        return info, secret

    def revoke(self, id_or_name: str) -> KeyInfo | None:
        """Revoke the active key with this id (or else this name); None if no active key matches."""
        with self._connect() as conn:
            row = conn.execute(
                f"SELECT {_COLUMNS} FROM api_keys WHERE id = ? AND revoked_at IS NULL", (id_or_name,)
            ).fetchone() or self._active(conn, id_or_name)
            if row is None:
                return None
            now = _now()
            cur = conn.execute(
                "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", (now, row[0])
            )
            if cur.rowcount == 0:  # revoked meanwhile by someone else
                return None
            return KeyInfo(*row[:5], now, row[6])

    @staticmethod
    def _active(conn: sqlite3.Connection, name: str) -> tuple | None:
        return conn.execute(
            f"SELECT {_COLUMNS} FROM api_keys WHERE name = ? AND revoked_at IS NULL", (name,)
        ).fetchone()

    def authenticate(self, secret: str | None) -> Caller | None:
        """The caller a secret stands for; None when missing, unknown or revoked.

        Records `last_used_at`, at most once a minute per key so that busy callers do not
        turn every request into a write.
        """
        if not secret or len(secret) > _MAX_SECRET_LEN:
            return None
        digest = _hash(secret)
        with self._connect() as conn:
            row = conn.execute(
                "SELECT id, name, role, secret_sha256, last_used_at FROM api_keys "
                "WHERE secret_sha256 = ? AND revoked_at IS NULL",
                (digest,),
            ).fetchone()
            if row is None or not hmac.compare_digest(row[3], digest):
                return None
            key_id, name, role, _, last_used = row
            now = datetime.now(UTC)
            if last_used is None or datetime.fromisoformat(last_used) <= now - _LAST_USED_EVERY:
                try:
                    conn.execute(
                        "UPDATE api_keys SET last_used_at = ? WHERE id = ?",
                        (now.isoformat(timespec="seconds"), key_id),
                    )
                except sqlite3.OperationalError:
                    pass  # busy for 10 s: the date of last use is a hint, not worth failing a request
        return Caller(role=role, name=name, key_id=key_id)

    def count_active(self) -> int:
        """How many keys are not revoked (0: the network faces have no key to accept)."""
        with self._connect() as conn:
            return conn.execute("SELECT COUNT(*) FROM api_keys WHERE revoked_at IS NULL").fetchone()[0]

    def list(self) -> list[KeyInfo]:
        """Every key, revoked ones included, oldest first."""
        with self._connect() as conn:
            rows = conn.execute(f"SELECT {_COLUMNS} FROM api_keys ORDER BY created_at, rowid").fetchall()
        return [KeyInfo(*row) for row in rows]


KEYS_FILE = "keys.sqlite"


def keys_of(store_dir: Path) -> KeyStore:
    """The API keys of one index: a file beside its registry, so that copying or moving an
    index moves its keys too."""
    return KeyStore(Path(store_dir) / KEYS_FILE)
