"""``send-token``: lists the seeded organisations, and mints a token that says how long it lasts."""

from __future__ import annotations

import jwt
import pytest

from send_devkit.tokens import main
from send_shared.auth import DEV_SECRET
from send_shared.settings import ServiceSettings


def test_list_names_every_seeded_organisation_with_a_role_to_try(capsys: pytest.CaptureFixture[str]) -> None:
    main(["--list"])
    out = capsys.readouterr().out
    assert "org-riverside-primary" in out and "school" in out and "--role referrer" in out
    assert "org-northshire-la" in out


async def test_a_minted_token_is_accepted_and_its_lifetime_is_told(capsys: pytest.CaptureFixture[str]) -> None:
    main(["--org", "org-riverside-primary", "--role", "referrer", "--ttl", "5400"])
    captured = capsys.readouterr()
    claims = jwt.decode(captured.out.strip(), DEV_SECRET, algorithms=["HS256"], audience="send-referrals")
    assert (claims["org"], claims["role"], claims["exp"] - claims["iat"]) == ("org-riverside-primary", "referrer", 5400)
    assert "valid for 1 h 30 min" in captured.err
    assert ServiceSettings.model_fields["jwt_audience"].default == "send-referrals"


def test_org_and_role_are_required_without_list() -> None:
    with pytest.raises(SystemExit):
        main(["--org", "org-riverside-primary"])
