"""What the app's settings become when ``SANDBOX`` is on.

Paths on the one sandbox port never collide: each provider's real paths are distinct
(``/2010-04-01/…`` Twilio, ``/v1/listen`` Deepgram, ``/v1/chat/completions`` OpenAI,
``/v1/calls`` Bland, ``/maps/api/geocode/json`` Google, ``/v3/…`` CallRail, ``/api/…``
Shunya, ``/clerk/…`` the Clerk-style issuer, ``/media/…`` recordings), and ``/_sandbox/…``
is the control API.
"""

DEFAULT_URL = "http://127.0.0.1:8001"

# Fixed, public, sandbox-only credentials. The sandbox accepts them and signs its
# outbound webhooks with the same secrets the app verifies with.
CREDENTIALS: dict[str, str] = {
    "CALLRAIL_API_KEY": "sandbox-callrail-api-key",
    "CALLRAIL_ACCOUNT_ID": "ACC0000sandbox",
    "TWILIO_ACCOUNT_SID": "AC00000000000000000000000000000000",
    "TWILIO_AUTH_TOKEN": "sandbox-twilio-auth-token",
    "TWILIO_FROM_NUMBER": "+15005550006",
    "DEEPGRAM_API_KEY": "sandbox-deepgram-key",
    "UWC_API_KEY": "sandbox-uwc-api-key",
    "UWC_JWT_SECRET": "sandbox-uwc-jwt-secret-0123456789abcdef",
    "UWC_HMAC_SECRET": "sandbox-uwc-hmac-secret",
    "BLAND_API_KEY": "sandbox-bland-api-key",
    "BLAND_WEBHOOK_SECRET": "sandbox-bland-webhook-secret",
    "GOOGLE_MAPS_API_KEY": "AIzaSandboxKey000000000000000000000000",
    # svix secrets are base64 behind "whsec_".
    "CLERK_WEBHOOK_SECRET": "whsec_c2FuZGJveC1jbGVyay13ZWJob29rLXNlY3JldA==",
    "CLERK_SECRET_KEY": "sk_test_sandbox",
}
# Apart from CREDENTIALS because it is the one list-valued setting.
OPENAI_API_KEYS = ["sk-sandbox-key-1", "sk-sandbox-key-2"]


def sandbox_settings(url: str) -> dict[str, object]:
    url = url.rstrip("/")
    return {
        "CALLRAIL_BASE_URL": f"{url}/v3",
        "TWILIO_API_BASE_URL": url,
        "DEEPGRAM_API_BASE_URL": url,
        "OPENAI_BASE_URL": f"{url}/v1",
        "UWC_BASE_URL": url,
        "UWC_STAGING_BASE_URL": url,
        "BLAND_BASE_URL": url,
        "GOOGLE_MAPS_BASE_URL": url,
        "CLERK_ISSUER": f"{url}/clerk",
        "CLERK_API_URL": f"{url}/clerk/v1",
        **CREDENTIALS,
        "OPENAI_API_KEYS": list(OPENAI_API_KEYS),
    }
