"""Roles and API keys (assistant/access.py): who may see and change what. Fast: SQLite only."""

from __future__ import annotations

import threading
from datetime import datetime
from pathlib import Path

import pytest

from assistant.access import (
    ROLE_LABELS,
    ROLES,
    AccessDenied,
    Caller,
    KeyStore,
    parse_bearer,
    require_write,
)


@pytest.fixture
def keys(tmp_path: Path) -> KeyStore:
    return KeyStore(tmp_path / "index" / "keys.sqlite")


def test_add_then_authenticate_gives_the_role(keys: KeyStore) -> None:
    info, secret = keys.add("Équipe ANCT", "interne")
    assert secret.startswith("fpa_") and len(secret) > 40
    assert info.prefix == secret[4:12] and len(info.id) == 8
    assert info.role == "interne" and info.revoked_at is None and info.last_used_at is None
    datetime.fromisoformat(info.created_at)

    caller = keys.authenticate(secret)
    assert caller == Caller(role="interne", name="Équipe ANCT", key_id=info.id)
    assert keys.list()[0].last_used_at is not None
    assert keys.count_active() == 1


def test_file_and_folder_are_created_on_first_use(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "index" / "keys.sqlite"
    store = KeyStore(path)
    assert not path.exists()  # constructing does not touch the disk
    assert store.list() == []
    assert path.exists()


def test_secret_is_never_stored_in_clear(keys: KeyStore) -> None:
    _, secret = keys.add("alice", "admin")
    keys.authenticate(secret)
    stored = b"".join(p.read_bytes() for p in keys.path.parent.glob("keys.sqlite*"))
    assert stored  # the database (and its WAL) exist and were read
    assert secret.encode() not in stored
    assert secret[4:].encode() not in stored


def test_wrong_empty_and_revoked_keys_fail(keys: KeyStore) -> None:
    info, secret = keys.add("bob", "public")
    for bad in (None, "", "fpa_nope", secret + "x", secret[:-1], "x" * 100_000):
        assert keys.authenticate(bad) is None

    revoked = keys.revoke(info.name)
    assert revoked is not None and revoked.id == info.id and revoked.revoked_at is not None
    assert keys.authenticate(secret) is None
    assert keys.revoke(info.id) is None  # nothing active left to revoke
    assert keys.count_active() == 0
    assert keys.list()[0].revoked_at == revoked.revoked_at


def test_revoke_by_id_and_name_reuse_after_revoke(keys: KeyStore) -> None:
    first, _ = keys.add("carole", "interne")
    with pytest.raises(ValueError, match="déjà"):
        keys.add("carole", "admin")
    assert keys.revoke(first.id) is not None
    second, secret = keys.add("carole", "admin")  # the name is free again
    assert keys.authenticate(secret).role == "admin"
    assert [k.id for k in keys.list()] == [first.id, second.id]
    assert keys.revoke("personne") is None


@pytest.mark.parametrize("name, role", [("dora", "superadmin"), ("dora", "Admin"), ("  ", "admin")])
def test_bad_role_or_name_rejected_in_french(keys: KeyStore, name: str, role: str) -> None:
    with pytest.raises(ValueError) as err:
        keys.add(name, role)
    message = str(err.value)
    if role not in ROLES:
        assert "Rôle inconnu" in message and all(r in message for r in ROLES)
    else:
        assert "nom" in message
    assert keys.list() == []


def test_roles_decide_audience_and_writing() -> None:
    assert set(ROLE_LABELS) == set(ROLES)
    public = Caller("public", "p")
    interne = Caller("interne", "i")
    admin = Caller("admin", "a")
    assert (public.audience, public.can_write) == ("public", False)
    assert (interne.audience, interne.can_write) == ("interne", False)
    assert (admin.audience, admin.can_write) == ("interne", True)
    with pytest.raises(ValueError):
        Caller("root", "x")


def test_local_caller() -> None:
    assert Caller.local("interne") == Caller("admin", "local")
    assert Caller.local("public") == Caller("public", "local")
    assert Caller.local("public").audience == "public"


@pytest.mark.parametrize("role", ["public", "interne"])
def test_require_write_refuses_readers_with_403_in_french(role: str) -> None:
    with pytest.raises(AccessDenied) as err:
        require_write(Caller(role, "x"), "ajouter des documents")
    assert err.value.status == 403
    assert f"« {role} »" in err.value.message
    assert "d'ajouter des documents" in err.value.message and "clé admin" in err.value.message
    with pytest.raises(AccessDenied, match="de supprimer"):
        require_write(Caller(role, "x"), "supprimer des documents")


def test_require_write_lets_admin_through() -> None:
    require_write(Caller("admin", "a"), "réindexer")
    require_write(Caller.local("interne"), "exporter les retours")


def test_unauthenticated_is_401() -> None:
    err = AccessDenied.unauthenticated()
    assert err.status == 401 and "Bearer" in err.message
    with pytest.raises(ValueError):
        AccessDenied("x", status=500)


@pytest.mark.parametrize(
    "header, token",
    [
        ("Bearer fpa_abc", "fpa_abc"),
        ("bearer fpa_abc", "fpa_abc"),
        ("BEARER  fpa_abc ", "fpa_abc"),
        (None, None),
        ("", None),
        ("Bearer", None),
        ("Bearer ", None),
        ("Basic dXNlcjpwYXNz", None),
        ("fpa_abc", None),
        ("Bearer a b", None),
        ("Token fpa_abc", None),
    ],
)
def test_parse_bearer(header: str | None, token: str | None) -> None:
    assert parse_bearer(header) == token


def test_two_stores_on_one_file_share_keys(tmp_path: Path) -> None:
    path = tmp_path / "keys.sqlite"
    a, b = KeyStore(path), KeyStore(path)
    info, secret = a.add("eve", "interne")
    assert b.authenticate(secret).name == "eve"
    assert b.revoke("eve").id == info.id
    assert a.authenticate(secret) is None
    b.add("frank", "public")
    with pytest.raises(ValueError):  # the uniqueness of active names holds across objects
        a.add("frank", "public")


def test_concurrent_authenticate(keys: KeyStore) -> None:
    issued = [keys.add(f"k{i}", ROLES[i % 3]) for i in range(4)]
    errors: list[BaseException] = []
    seen: list[Caller | None] = []
    lock = threading.Lock()

    def work(n: int) -> None:
        info, secret = issued[n % len(issued)]
        try:
            for i in range(50):
                got = keys.authenticate(secret if i % 5 else "fpa_faux")
                with lock:
                    seen.append(got)
                if i % 5:
                    assert got == Caller(info.role, info.name, info.id)
                else:
                    assert got is None
        except BaseException as exc:  # noqa: BLE001 - reported to the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors
    assert len(seen) == 8 * 50
    assert all(k.last_used_at for k in keys.list())


def test_keys_command_shows_the_secret_once_and_revokes(tmp_path, capsys):
    """`fp-assistant keys`: the secret is printed at creation only, never listed, and a revoked
    key no longer opens anything."""
    import json

    from assistant.access import keys_of
    from assistant.cli import main

    store = str(tmp_path / "index")
    assert main(["keys", "add", "--name", "intranet", "--role", "public", "--store", store, "--json"]) == 0
    created = json.loads(capsys.readouterr().out)
    secret = created["secret"]
    assert secret.startswith("fpa_") and created["role"] == "public"
    assert keys_of(tmp_path / "index").authenticate(secret).role == "public"

    assert main(["keys", "list", "--store", store]) == 0
    listed = capsys.readouterr().out
    assert "intranet" in listed and secret not in listed and secret[4:] not in listed

    assert main(["keys", "revoke", "intranet", "--store", store]) == 0
    assert keys_of(tmp_path / "index").authenticate(secret) is None
    assert main(["keys", "revoke", "intranet", "--store", store]) == 2
    assert "aucune clé active" in capsys.readouterr().err
