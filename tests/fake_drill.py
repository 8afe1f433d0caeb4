"""A fake of `examwatch drill run` for the API's drill tests, used until the simulator's command is merged.

It takes the same arguments the API passes (scenario, --speed, --json, --quiet, --config),
writes a report of the shape the real command writes, and exits 0.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

parser = argparse.ArgumentParser()
parser.add_argument("scenario")
parser.add_argument("--speed")
parser.add_argument("--json", dest="json_path", required=True)
parser.add_argument("--quiet", action="store_true")
parser.add_argument("--config")
args = parser.parse_args()
print(f"fake drill: {args.scenario} at speed {args.speed}")
Path(args.json_path).write_text(json.dumps({"scenario": Path(args.scenario).stem, "faults": [
    {"fault": "power_cut", "seen": True, "detect_s": 12.5}], "unseen": 0}))
