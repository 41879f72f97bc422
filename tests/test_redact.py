"""Credentials never reach a record: URI userinfo and secret-looking query values are masked, and credentials typed
into ``tracking.uri`` move to MLflow's environment variables before Hydra sees the command line."""

from __future__ import annotations

import pytest

from m9.record.redact import MASK, move_uri_credentials, redact


@pytest.mark.parametrize("text,masked", [
    ("https://mlflow.internal/?token=abc123&experiment=m9", f"https://mlflow.internal/?token={MASK}&experiment=m9"),
    ("http://h:5000/api?x=1&access_token=s3cr3t", f"http://h:5000/api?x=1&access_token={MASK}"),
    ("https://h/?API-KEY=k&sig=abcd&Signature=zz", f"https://h/?API-KEY={MASK}&sig={MASK}&Signature={MASK}"),
    ("s3://bucket/path?password=hunter2 then more", f"s3://bucket/path?password={MASK} then more"),
    ("tracking.uri=https://me:tok@h/?secret=q", f"tracking.uri=https://{MASK}@h/?secret={MASK}"),
])
def test_secret_query_values_are_masked_and_the_rest_is_kept(text, masked):
    assert redact(text) == masked


def test_text_without_a_secret_is_left_alone():
    for text in ("engine.max_seqs=8", "sqlite:////tmp/mlflow.db", "http://h:5000/?experiment=token-study&a=b",
                 "keyboard=qwerty"):
        assert redact(text) == text


def test_credentials_in_the_uri_move_to_mlflows_environment():
    environ: dict[str, str] = {}
    argv, said = move_uri_credentials(["-m", "tracking.uri=https://alice:p%40ss@mlflow.internal/x", "a=1"], environ)
    assert argv == ["-m", "tracking.uri=https://mlflow.internal/x", "a=1"]
    assert environ == {"MLFLOW_TRACKING_USERNAME": "alice", "MLFLOW_TRACKING_PASSWORD": "p@ss"}
    assert len(said) == 1 and "p@ss" not in said[0] and "alice" not in said[0]
