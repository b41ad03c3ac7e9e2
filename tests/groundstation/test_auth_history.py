"""Authentication refuses the unknown and the read-only; the command history survives a reopen."""
from __future__ import annotations

import pytest

from groundstation.auth import Authenticator, AuthError, Operator, read_token
from groundstation.history import CommandHistory

OPS_TOKEN = "operator-token-0123456789"
VIEW_TOKEN = "viewer-token-0123456789ab"


def make_auth() -> Authenticator:
    auth = Authenticator()
    auth.add(OPS_TOKEN, Operator("li.wei", "operator"))
    auth.add(VIEW_TOKEN, Operator("wall-display", "viewer"))
    return auth


def test_operator_may_command_viewer_may_not():
    auth = make_auth()
    assert auth.require_commander(f"Bearer {OPS_TOKEN}").name == "li.wei"
    assert auth.identify(f"Bearer {VIEW_TOKEN}").role == "viewer"
    with pytest.raises(AuthError) as refused:
        auth.require_commander(f"Bearer {VIEW_TOKEN}")
    assert refused.value.status == 403


@pytest.mark.parametrize("header", [None, "", "Basic abc", "Bearer ", "Bearer wrong-token-000000000"])
def test_unknown_or_missing_tokens_are_refused(header):
    # Logged once per refused request by the HTTP layer (tests/groundstation/test_http_hardening.py).
    with pytest.raises(AuthError, match="authentication required|unknown token") as refused:
        make_auth().require_commander(header, peer="127.0.0.1")
    assert refused.value.status == 401


def test_a_token_that_is_not_utf8_is_unknown():
    with pytest.raises(AuthError, match="unknown token"):
        make_auth().identify("Bearer " + b"\xff\xfe-token".decode("utf-8", "surrogateescape"))


def test_tokens_come_from_environment_or_file(monkeypatch, tmp_path):
    monkeypatch.setenv("QQ_TEST_TOKEN", OPS_TOKEN)
    assert read_token(env="QQ_TEST_TOKEN") == OPS_TOKEN
    (tmp_path / "t").write_text(VIEW_TOKEN + "\n")
    assert read_token(file=str(tmp_path / "t")) == VIEW_TOKEN
    monkeypatch.setenv("QQ_SHORT", "short")
    with pytest.raises(ValueError, match="shorter"):
        read_token(env="QQ_SHORT")
    with pytest.raises(ValueError, match="not set"):
        read_token(env="QQ_UNSET_VARIABLE")


def test_history_records_stages_and_survives_reopen(tmp_path):
    path = tmp_path / "history.sqlite"
    history = CommandHistory(path)
    cid = history.add("zhurong", "PING", {}, "li.wei", now=100.0)
    history.set_packet(cid, 0x120, 7)
    history.advance(cid, "uplinked", now=101.0)
    history.advance(cid, "accepted", now=102.0)
    history.advance(cid, "completed", now=103.0)
    history.advance(cid, "failed", error_code=5, now=104.0)  # ignored: already final
    history.close()
    reopened = CommandHistory(path)
    record = reopened.get(cid)
    assert (record.state, record.operator, record.apid, record.sequence_count) == ("completed", "li.wei", 0x120, 7)
    assert [s["stage"] for s in record.stages] == ["queued", "uplinked", "accepted", "completed"]
    assert [r.id for r in reopened.query(spacecraft="zhurong")] == [cid]
    assert reopened.query(spacecraft="tianwen1") == []
    assert reopened.in_flight() == []
