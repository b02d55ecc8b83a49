"""Nested request parameters checked against the SDK's typed ``params`` classes.

``stripe.params.InvoiceItemCreateParams`` declares ``period: InvoiceItemCreateParamsPeriod``
(a TypedDict with ``start`` and ``end``), ``metadata: Literal[''] | Dict[str, str]`` and so on.
A request whose hash holds a name the SDK's TypedDict does not declare (``period[middle]``),
or that sends a hash or array where the SDK declares a scalar, is refused the way Stripe
refuses it: ``400 parameter_unknown`` naming the full parameter (``period[middle]``).
Values over Stripe's limits are refused too (``limits``).
"""

from __future__ import annotations

import ast
import importlib
import inspect
import sys
import typing
from functools import cache
from typing import Any

from typing_extensions import is_typeddict

from billing.stripe_emulator.limits import check_limits
from billing.stripe_emulator.params import ParamError, allowed_params


@cache
def module_namespace(module_name: str) -> dict[str, Any]:
    """A ``stripe`` module's globals plus every ``from x import y [as z]`` in its source: the
    SDK imports the classes its annotations name only under ``TYPE_CHECKING``."""
    module = sys.modules[module_name]
    namespace = dict(vars(module))
    for node in ast.walk(ast.parse(inspect.getsource(module))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            imported = importlib.import_module(node.module)
            for alias in node.names:
                if hasattr(imported, alias.name):
                    namespace[alias.asname or alias.name] = getattr(imported, alias.name)
    return namespace


@cache
def fields_of(typed_dict: type) -> dict[str, Any]:
    """The TypedDict's fields, forward references resolved in its own module."""
    import stripe._request_options  # params classes extend RequestOptions

    namespace = {
        **module_namespace(stripe._request_options.__name__),
        **module_namespace(typed_dict.__module__),
    }
    return typing.get_type_hints(typed_dict, globalns=namespace, localns=namespace)


def _members(annotation: Any) -> tuple[Any, ...]:
    origin = typing.get_origin(annotation)
    if origin is typing.Union or type(annotation).__name__ == "UnionType":
        return typing.get_args(annotation)
    return (annotation,)


def check_value(value: Any, annotation: Any, name: str) -> None:
    """Refuse nested names and shapes the SDK's annotation does not allow."""
    members = _members(annotation)
    if isinstance(value, dict):
        typed = [m for m in members if is_typeddict(m)]
        if typed:
            check_hash(value, typed[0], name)
            return
        if any(_is_mapping(m) for m in members):
            return
        raise ParamError(f"Invalid {_kind(members)} for {name}: a hash was sent", name)
    if isinstance(value, list):
        lists = [m for m in members if typing.get_origin(m) is list]
        if not lists:
            raise ParamError(f"Invalid {_kind(members)} for {name}: an array was sent", name)
        (item,) = typing.get_args(lists[0]) or (Any,)
        for i, element in enumerate(value):
            check_value(element, item, f"{name}[{i}]")


def check_hash(value: dict[str, Any], typed_dict: type, name: str) -> None:
    fields = fields_of(typed_dict)
    for key, element in value.items():
        full = f"{name}[{key}]"
        if key not in fields:
            raise ParamError(f"Received unknown parameter: {full}", full, "parameter_unknown")
        check_value(element, fields[key], full)


def _is_mapping(annotation: Any) -> bool:
    origin = typing.get_origin(annotation) or annotation
    return origin is dict or getattr(origin, "__name__", "") in (
        "UntypedStripeObject",
        "StripeObject",
    )


def _kind(members: tuple[Any, ...]) -> str:
    names = {getattr(m, "__name__", str(m)) for m in members if m is not type(None)}
    return "/".join(sorted(names)) or "value"


def check_params(params: dict[str, Any], params_class: str) -> None:
    """Refuse a parameter (top-level or nested) the SDK's ``params_class`` does not declare,
    and values over Stripe's limits (``limits``)."""
    import stripe.params

    allowed = allowed_params(params_class)
    fields = fields_of(getattr(stripe.params, params_class))
    for name, value in params.items():
        if name not in allowed:
            raise ParamError(f"Received unknown parameter: {name}", name, "parameter_unknown")
        check_value(value, fields[name], name)
    check_limits(params, params_class)
