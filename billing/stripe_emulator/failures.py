"""Stripe-shaped errors: an HTTP status and Stripe's ``error`` object."""

from __future__ import annotations

from typing import Any


class StripeFailure(Exception):
    """A Stripe-shaped error: HTTP status + ``error`` object."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.error: dict[str, Any] = {"type": type, "message": message}
        if code:
            self.error["code"] = code
            self.error["doc_url"] = f"https://stripe.com/docs/error-codes/{code.replace('_', '-')}"
        if param:
            self.error["param"] = param

    def body(self) -> dict[str, Any]:
        return {"error": self.error}


def missing(kind: str, object_id: str, param: str = "id") -> StripeFailure:
    return StripeFailure(
        404, f"No such {kind}: '{object_id}'", code="resource_missing", param=param
    )


def missing_param(name: str) -> StripeFailure:
    return StripeFailure(
        400, f"Missing required param: {name}.", code="parameter_missing", param=name
    )
