"""The live local stack's "previous release": a placeholder that answers /health.

The release gates need the slot that holds the weight to be healthy before
any weight moves, so the blue slot a live stack starts with must answer its
target group's checks. The plain base AMI has no app; this image is the base
root file system plus one unit answering ``GET /health`` (and ``/``) with 200
on the app's port, version ``seed``. It is only made on the live local stack.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

NAME = "rodeo-local-seed-app"
UNIT = "rodeo-seed-app.service"
MARK = "srv/rodeo-seed/health"  # the last file ``write_layer`` writes: the layer is whole

_UNIT_TEXT = """[Unit]
Description=Rodeo local stack placeholder app (answers /health until the first release)
After=network.target

[Service]
ExecStart=/usr/bin/python3 -m http.server {port} --directory /srv/rodeo-seed
Restart=on-failure
DynamicUser=yes

[Install]
WantedBy=multi-user.target
"""


def write_layer(layer: Path, port: int) -> Path:
    """Write the placeholder's layer into ``layer`` (replacing it) and return it."""
    shutil.rmtree(layer, ignore_errors=True)
    units = layer / "etc/systemd/system"
    (units / "multi-user.target.wants").mkdir(parents=True)
    (units / UNIT).write_text(_UNIT_TEXT.format(port=port))
    (units / "multi-user.target.wants" / UNIT).symlink_to(f"../{UNIT}")
    site = layer / "srv/rodeo-seed"
    site.mkdir(parents=True)
    (site / "index.html").write_text(
        "<!doctype html><title>Rodeo</title><p>Rodeo local stack: nothing released yet</p>\n"
    )
    (layer / MARK).write_text(json.dumps({"status": "ok", "version": "seed"}))
    return layer
