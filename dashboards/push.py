"""Upload the dashboards to a running Grafana through its HTTP API, with grafana-client.

grafana-client is an optional extra (``pip install 'examwatch[grafana]'``) because its HTTP
stack (niquests, urllib3-future) replaces urllib3 in the environment; the import is deferred
so every other command works without it.
"""

from __future__ import annotations

from typing import Any

FOLDER_UID = "examwatch"
FOLDER_TITLE = "examwatch"


class PushError(Exception):
    """Grafana refused a request, or grafana-client is not installed."""


def push(url: str, token: str, dashboards: dict[str, dict[str, Any]], folder: str = FOLDER_TITLE) -> list[str]:
    """Create the folder if needed and upload every dashboard (overwriting); returns their URLs."""
    try:
        # Deferred: the extra may be absent, and importing it swaps urllib3 for urllib3-future.
        from grafana_client.api import GrafanaApi  # noqa: PLC0415
        from grafana_client.client import GrafanaClientError  # noqa: PLC0415
    except ImportError:
        raise PushError("grafana-client is not installed: pip install 'examwatch[grafana]'") from None
    api = GrafanaApi.from_url(url, credential=token)
    try:
        try:
            api.folder.get_folder(FOLDER_UID)
        except GrafanaClientError as exc:
            if exc.status_code != 404:
                raise
            api.folder.create_folder(folder, uid=FOLDER_UID)
        urls = []
        for doc in dashboards.values():
            body = {
                "dashboard": {**doc, "id": None},
                "folderUid": FOLDER_UID,
                "overwrite": True,
                "message": "examwatch dashboards push",
            }
            answer = api.dashboard.update_dashboard(body)
            urls.append(str(answer.get("url", doc["uid"])))
    except GrafanaClientError as exc:
        raise PushError(f"Grafana at {url} answered {exc.status_code}: {exc.message}") from None
    return urls
