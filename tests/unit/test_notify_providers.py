"""Provider settings that cannot work are refused at start with one line naming the setting."""

from __future__ import annotations

from typing import Any

import pytest

from examwatch.settings import NotifySettings
from notify import providers


@pytest.mark.parametrize(
    ("cfg", "expected"),
    [
        ({"provider": "kannel"}, "kannel_username and notify.kannel_password must be set"),
        ({"provider": "kannel", "kannel_username": "u", "kannel_password": "p", "kannel_url": "ftp://x"},
         "not an http(s) URL"),
        ({"provider": "apprise"}, "must be set and contain {phone}"),
        ({"provider": "apprise", "apprise_url": "nosuchplugin://x/{phone}"}, "Apprise does not accept this URL"),
    ],
)
def test_incomplete_provider_settings_are_refused(cfg: dict[str, Any], expected: str) -> None:
    with pytest.raises(providers.ProviderError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        providers.make(NotifySettings.model_validate(cfg))
