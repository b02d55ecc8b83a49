"""Stripe's API contract, read from the installed ``stripe`` SDK's typed classes.

The SDK's resource classes (``stripe.Invoice`` ...) annotate every field Stripe returns: a
field that is always present and never null is annotated with its plain type, a field that
may be absent or null is ``Optional[...]``. The request ``params`` TypedDicts
(``stripe.params.InvoiceCreateParams`` ...) declare every parameter a call accepts, nested
hashes included. ``problems(json, cls)`` lists where a response breaks that contract.

Annotations are forward references to classes imported only under ``TYPE_CHECKING`` (some
under aliases, ``Card as CardResource``), so ``typing.get_type_hints`` alone fails
(``NameError: TaxId``); each module's own imports are read from its source (``ast``) to
resolve them (``billing.stripe_emulator.param_schema.module_namespace``).
"""

from __future__ import annotations

import inspect
import types
import typing
from decimal import Decimal, InvalidOperation
from functools import cache
from typing import Any

import stripe
from stripe._list_object import ListObject
from stripe._search_result_object import SearchResultObject
from stripe._stripe_object import StripeObject, UntypedStripeObject

from billing.stripe_emulator.param_schema import module_namespace

NoneType = type(None)
LIST_KEYS = {"object", "data", "has_more", "url"}
# ``SearchResultObject`` annotates ``next_page: str`` but Stripe sends null on the last page
# (docs.stripe.com/search: "next_page ... null if there are no more results"), and it omits
# ``object``/``url`` (declared by Stripe's API reference); ``total_count`` only with
# ``expand[]=total_count``.
SEARCH_KEYS = {"object", "data", "has_more", "next_page", "url"}


@cache
def hints(cls: type) -> dict[str, Any]:
    """The fields ``cls`` declares (inherited ones included), annotations resolved."""
    fields: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        if klass.__module__.startswith("stripe") and "__annotations__" in vars(klass):
            namespace = module_namespace(klass.__module__)
            resolved = typing.get_type_hints(klass, globalns=namespace, localns=namespace)
            fields.update({k: resolved[k] for k in vars(klass)["__annotations__"]})
    return {
        k: v
        for k, v in fields.items()
        if not k.startswith("_") and typing.get_origin(v) is not typing.ClassVar
    }


def is_optional(annotation: Any) -> bool:
    return NoneType in typing.get_args(annotation)


def problems(value: Any, annotation: Any, where: str) -> list[str]:
    """Where ``value`` (decoded JSON) does not fit ``annotation`` (an SDK type)."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation is Any:
        return []
    if origin in (typing.Union, types.UnionType):
        if value is None:
            return [] if NoneType in args else [f"{where}: null, but the SDK never allows null"]
        attempts = [problems(value, a, where) for a in args if a is not NoneType]
        return [] if any(not p for p in attempts) else min(attempts, key=len)
    if value is None:
        return [f"{where}: null, but the SDK declares it {_name(annotation)} (never null)"]
    if origin is typing.Literal:
        return [] if value in args else [f"{where}: {value!r} is not one of {list(args)}"]
    if origin is list:
        if not isinstance(value, list):
            return [f"{where}: {type(value).__name__}, expected a JSON array"]
        return [p for i, item in enumerate(value) for p in problems(item, args[0], f"{where}[{i}]")]
    if origin is ListObject or annotation is ListObject:
        return list_problems(value, args[0] if args else Any, where)
    if origin is UntypedStripeObject or annotation is UntypedStripeObject:
        if not isinstance(value, dict):
            return [f"{where}: {type(value).__name__}, expected a JSON object"]
        item = args[0] if args else Any
        return [p for k, v in value.items() for p in problems(v, item, f"{where}.{k}")]
    if inspect.isclass(annotation) and issubclass(annotation, StripeObject):
        return object_problems(value, annotation, where)
    return _scalar_problems(value, annotation, where)


def _scalar_problems(value: Any, annotation: Any, where: str) -> list[str]:
    if annotation is bool:
        ok = isinstance(value, bool)
    elif annotation is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif annotation is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    elif annotation is str:
        ok = isinstance(value, str)
    elif annotation is Decimal:  # a decimal string on the wire ("12.5")
        try:
            ok = isinstance(value, str) and Decimal(value).is_finite()
        except InvalidOperation:
            ok = False
    elif annotation is dict or typing.get_origin(annotation) is dict:
        ok = isinstance(value, dict)
    else:
        return [f"{where}: the contract check cannot read the SDK type {annotation!r}"]
    return [] if ok else [f"{where}: {value!r} is not a JSON {_name(annotation)}"]


def object_problems(value: Any, cls: type, where: str) -> list[str]:
    """Missing required fields, fields the SDK does not declare, wrong types (recursive)."""
    if not isinstance(value, dict):
        return [f"{where}: {type(value).__name__}, expected a {cls.__qualname__} object"]
    fields = hints(cls)
    if value.get("deleted") is True and "deleted" in fields:  # a deletion's answer
        extra = set(value) - {"id", "object", "deleted"}
        return [f"{where}.{k}: not part of a deleted object" for k in sorted(extra)]
    found = []
    for name, annotation in fields.items():
        if name not in value:
            if not is_optional(annotation):
                found.append(f"{where}.{name}: missing; {cls.__qualname__} requires it")
            continue
        found += problems(value[name], annotation, f"{where}.{name}")
    for name in sorted(set(value) - set(fields)):
        found.append(f"{where}.{name}: not declared by stripe {cls.__qualname__}")
    return found


def list_problems(value: Any, item: Any, where: str) -> list[str]:
    """A ``list`` object: ``object``, ``data``, ``has_more``, ``url`` and nothing else."""
    if not isinstance(value, dict):
        return [f"{where}: {type(value).__name__}, expected a list object"]
    found = [f"{where}.{k}: missing from a list object" for k in sorted(LIST_KEYS - set(value))]
    found += [f"{where}.{k}: not part of a list object" for k in sorted(set(value) - LIST_KEYS)]
    if value.get("object") != "list":
        found.append(f"{where}.object: {value.get('object')!r}, expected 'list'")
    found += problems(value.get("has_more"), bool, f"{where}.has_more")
    found += problems(value.get("url"), str, f"{where}.url")
    return found + problems(value.get("data"), list[item], f"{where}.data")


def search_problems(value: Any, item: Any, where: str = "search") -> list[str]:
    """A ``search_result`` page (``total_count`` only when expanded, which Meterline never does)."""
    if not isinstance(value, dict):
        return [f"{where}: {type(value).__name__}, expected a search_result object"]
    declared = set(hints(SearchResultObject))
    assert declared <= SEARCH_KEYS, f"the SDK's search result changed: {sorted(declared)}"
    found = [f"{where}.{k}: missing from a search result" for k in sorted(SEARCH_KEYS - set(value))]
    found += [f"{where}.{k}: not part of a search result" for k in sorted(set(value) - SEARCH_KEYS)]
    if value.get("object") != "search_result":
        found.append(f"{where}.object: {value.get('object')!r}, expected 'search_result'")
    found += problems(value.get("has_more"), bool, f"{where}.has_more")
    found += problems(value.get("next_page"), str | None, f"{where}.next_page")
    return found + problems(value.get("data"), list[item], f"{where}.data")


def _name(annotation: Any) -> str:
    return getattr(annotation, "__name__", None) or str(annotation)


# request parameters -------------------------------------------------------------------------
@cache
def params_class(name: str) -> type:
    import stripe.params

    return getattr(stripe.params, name)


def sdk_version() -> str:
    return stripe.VERSION
