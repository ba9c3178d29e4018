"""The epoch log: log.jsonl and the one summary line per epoch that rule logs show."""

from __future__ import annotations

import io
import json

from spcreid.engine.logging import EpochLog, summary_line

RECORD = {
    "epoch": 3,
    "lr": 0.00035,
    "n_clusters": 512,
    "n_outliers": 31,
    "n_images": 4000,
    "loss": 4.21299,
    "loss_contrast": 4.0,
    "loss_self_identity": 0.7,
    "seconds": 12.34,
}


def test_summary_line_hand_checked():
    assert summary_line(RECORD, epochs=40) == "epoch 3/40: 512 clusters, 31 outliers, loss 4.2130, lr 3.50e-04, 12.3 s"
    assert summary_line(RECORD).startswith("epoch 3: 512 clusters")


def test_append_writes_the_jsonl_and_one_line_per_epoch(tmp_path):
    stream = io.StringIO()
    log = EpochLog(tmp_path / "log.jsonl", stream=stream, epochs=4)
    log.reset()
    log.append(RECORD)
    log.append(dict(RECORD, epoch=4, n_clusters=498))
    assert stream.getvalue().splitlines() == [
        "epoch 3/4: 512 clusters, 31 outliers, loss 4.2130, lr 3.50e-04, 12.3 s",
        "epoch 4/4: 498 clusters, 31 outliers, loss 4.2130, lr 3.50e-04, 12.3 s",
    ]
    assert [json.loads(line)["epoch"] for line in (tmp_path / "log.jsonl").read_text().splitlines()] == [3, 4]


def test_no_stream_no_output(tmp_path, capsys):
    EpochLog(tmp_path / "log.jsonl").append(RECORD)
    assert capsys.readouterr() == ("", "")
