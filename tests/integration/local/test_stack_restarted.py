"""Issue 9, case 8: a local stack whose moto server died is restarted, and the loss is said once."""

from __future__ import annotations

import json
import subprocess

from toolkit.local import stack


def test_a_dead_server_is_replaced_and_the_loss_is_said_once(tmp_path, capsys):
    st = stack.Stack(state_dir=tmp_path, cache_dir=tmp_path)
    gone = subprocess.Popen(["true"])
    gone.wait()
    st.dir.mkdir(parents=True)
    (st.dir / "stack.json").write_text(json.dumps({"pid": gone.pid, "endpoint": "http://127.0.0.1:9", "port": 9}))
    try:
        url = stack.up(st, "us-east-1")
        err = capsys.readouterr().err
        assert (
            f"the local stack had stopped (pid {gone.pid}); started a new, empty one: its AMIs, releases and local images are gone"
            in err
        )
        assert stack.up(st, "us-east-1") == url
        assert "had stopped" not in capsys.readouterr().err
    finally:
        stack.down(st)
