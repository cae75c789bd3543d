"""The OpenAPI 3.1 ``webhooks`` section: what this service POSTs to a subscribed endpoint, and what the
endpoint should answer. Documentation only; ``docs/asyncapi.yaml`` describes the same deliveries."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import FastAPI, Header

from send_shared.events.schemas import (
    WEBHOOK_PING,
    ClockAlertV1,
    ReferralConsentV1,
    ReferralEventV1,
    ReferralSignpostedV1,
    SignpostTakenUpV1,
    WebhookPingV1,
)
from send_shared.events.webhooks import StructuredEvent
from send_shared.web.problems import add_problem_responses

_ANSWERS: dict[int | str, dict[str, Any]] = {
    200: {"description": "Any 2xx: delivered. Answer within 10 seconds; do the work afterwards."},
    410: {"description": "Gone: the endpoint is disabled at once and nothing more is sent to it."},
    500: {"description": "Anything else (or no answer): retried with exponential backoff over about five days, "
                         "then the endpoint is disabled and its organisation told by email."},
}  # fmt: skip
WebhookId = Annotated[str, Header(alias="webhook-id", description="`msg_` and the event id; the same on every retry.")]
WebhookTimestamp = Annotated[
    str, Header(alias="webhook-timestamp", description="Unix seconds when this attempt was signed.")
]
WebhookSignature = Annotated[
    str,
    Header(
        alias="webhook-signature",
        description="Space-separated `v1,<base64 HMAC-SHA256>` over `{webhook-id}.{webhook-timestamp}.{body}` with "
        "the endpoint's secret (`whsec_...`); two while a secret rotates. Verify with a Standard Webhooks library.",
    ),
]


def document_webhooks(app: FastAPI) -> None:
    """Add the webhooks to the app's OpenAPI document (without FastAPI's 422, which is about our own
    requests, not what a subscriber answers)."""

    @app.webhooks.post("referral-event", responses=_ANSWERS)
    def referral_event(
        body: StructuredEvent[ReferralEventV1], id_: WebhookId, at: WebhookTimestamp, signature: WebhookSignature
    ) -> None:
        """A change of a referral your organisation sent or receives (`uk.send.referral.<status>.v1`), in the
        order of its versions. De-duplicate on `webhook-id`; a version gap cannot happen: later versions wait.
        While the family's consent is withdrawn only the receiving organisation hears of the referral's changes;
        the referrer hears only the withdrawal a withdrawal of consent before acceptance causes (reason code
        `consent_withdrawn`), then nothing more until consent is given again."""

    @app.webhooks.post("referral-consent", responses=_ANSWERS)
    def referral_consent(
        body: StructuredEvent[ReferralConsentV1], id_: WebhookId, at: WebhookTimestamp, signature: WebhookSignature
    ) -> None:
        """The family's consent to share a referral your organisation sent or receives was given, changed or
        withdrawn (`uk.send.referral.consent.<given|changed|withdrawn>.v1`): always to both the referrer and the
        receiving organisation. Numbered by `consent_version`, not the referral's version; the newest is the
        consent in force (an older one that comes late is not sent). On `withdrawn` the receiver stops or closes
        the work (or records the statutory basis it goes on under) and the referrer stops sharing."""

    @app.webhooks.post("clock-alert", responses=_ANSWERS)
    def clock_alert(
        body: StructuredEvent[ClockAlertV1], id_: WebhookId, at: WebhookTimestamp, signature: WebhookSignature
    ) -> None:
        """A statutory or service clock of a referral that concerns you is about to breach
        (`uk.send.waitlist.clock_breach_imminent.v1`) or has breached (`uk.send.waitlist.clock_breached.v1`).
        While the family's consent is withdrawn, to the receiving organisation only."""

    @app.webhooks.post("referral-signposted", responses=_ANSWERS)
    def referral_signposted(
        body: StructuredEvent[ReferralSignpostedV1], id_: WebhookId, at: WebhookTimestamp, signature: WebhookSignature
    ) -> None:
        """A referral your organisation sent or receives was signposted to support while waiting
        (`uk.send.referral.signposted.v1`): accepted at a service whose predicted wait is long (`long_wait`), or a
        clock nearing breach (`clock_breach_imminent`). Ids only: read the offers in the referrals service's
        directory (`GET /v1/directory/interim-offers`) and tell the family. While the family's consent is
        withdrawn, to the receiving organisation only."""

    @app.webhooks.post("signpost-taken-up", responses=_ANSWERS)
    def signpost_taken_up(
        body: StructuredEvent[SignpostTakenUpV1], id_: WebhookId, at: WebhookTimestamp, signature: WebhookSignature
    ) -> None:
        """Support while waiting that a referral was signposted to was taken up, as its referrer, its receiver or
        the family recorded (`uk.send.referral.signpost_taken_up.v1`)."""

    @app.webhooks.post(
        "ping",
        responses=_ANSWERS,
        description=f"`{WEBHOOK_PING}`: sent on request "
        "(`POST /v1/endpoints/{endpoint_id}/test`) to check an endpoint.",
    )
    def ping(
        body: StructuredEvent[WebhookPingV1], id_: WebhookId, at: WebhookTimestamp, signature: WebhookSignature
    ) -> None:
        """Ping."""

    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = generate()
            for path in document.get("webhooks", {}).values():
                path["post"]["responses"].pop("422", None)
            # Again, now that nothing refers to FastAPI's validation schemas: it drops them.
            app.openapi_schema = add_problem_responses(document)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
