"""The HTTP ingress: signed supplier and order webhooks into the durable inbox (see `app.create_app`)."""

from demand_control.gateway.app import create_app
from demand_control.gateway.signing import SourceVerifier, VerificationFailure, sign_headers

__all__ = ["SourceVerifier", "VerificationFailure", "create_app", "sign_headers"]
