"""Request decoding and parameter checking against the installed ``stripe`` SDK.

The allowed parameters of every emulated call are read from the SDK's own typed parameter
classes (``stripe.params.InvoiceCreateParams`` ...), so the emulator accepts exactly what the
SDK version in ``uv.lock`` can send and cannot drift from it.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any
from urllib.parse import parse_qsl

_KEY_PART = re.compile(r"\[([^\]]*)\]")


class ParamError(ValueError):
    def __init__(self, message: str, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.param = param
        self.code = code


def decode_form(body: str) -> dict[str, Any]:
    """``metadata[a]=1&expand[0]=x`` -> ``{"metadata": {"a": "1"}, "expand": ["x"]}``."""
    result: dict[str, Any] = {}
    for raw_key, value in parse_qsl(body, keep_blank_values=True):
        head, _, rest = raw_key.partition("[")
        parts = [head] + (_KEY_PART.findall("[" + rest) if rest else [])
        node: Any = result
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if last:
                node[part] = value
            else:
                node = node.setdefault(part, {})
                if not isinstance(node, dict):
                    raise ParamError(f"Invalid array or hash for parameter {head}", head)
    return _lists(result)


def _lists(value: Any) -> Any:
    if isinstance(value, dict):
        converted = {k: _lists(v) for k, v in value.items()}
        if converted and all(k.isdigit() for k in converted):
            return [converted[k] for k in sorted(converted, key=int)]
        if converted and "" in converted and len(converted) == 1:
            item = converted[""]
            return item if isinstance(item, list) else [item]
        return converted
    return value


@cache
def _request_option_keys() -> frozenset[str]:
    from stripe._request_options import RequestOptions

    return frozenset(RequestOptions.__annotations__)


@cache
def allowed_params(params_class: str) -> frozenset[str]:
    """Top-level parameter names the SDK's typed ``params_class`` defines."""
    import stripe.params

    cls = getattr(stripe.params, params_class)
    names: set[str] = set()
    for klass in reversed(cls.__mro__):
        names.update(getattr(klass, "__annotations__", {}))
    return frozenset(names - _request_option_keys())


def as_int(params: dict[str, Any], name: str, default: int | None = None) -> int | None:
    value = params.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ParamError(f"Invalid integer: {value}", name, "parameter_invalid_integer") from None


def as_bool(params: dict[str, Any], name: str, default: bool | None = None) -> bool | None:
    value = params.get(name)
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return value == "true"
    raise ParamError(f"Invalid boolean: {value}", name, "parameter_invalid_boolean")


def as_metadata(params: dict[str, Any], name: str = "metadata") -> dict[str, str] | None:
    value = params.get(name)
    if value is None:
        return None
    if value == "":
        return {}
    if not isinstance(value, dict):
        raise ParamError(f"Invalid object: {name} must be a hash of string keys", name)
    for key, item in value.items():
        if not isinstance(item, str):
            raise ParamError(f"Invalid value for {name}[{key}]: must be a string", f"{name}[{key}]")
    return dict(value)


_CLAUSE = re.compile(
    r"""\s*(?:(?P<field>[a-z_]+)|metadata\[(?P<q>['"])(?P<mkey>[^'"]+)(?P=q)\])"""
    r"""\s*(?P<op>:)\s*(?P<vq>['"])(?P<value>[^'"]*)(?P=vq)\s*"""
)


def parse_search_query(query: str, fields: set[str]) -> tuple[str, list[tuple[str, str]]]:
    """Parse the subset of Stripe's search query language the emulator supports.

    Clauses ``field:'value'`` and ``metadata['key']:'value'`` joined by ``AND`` or by ``OR``
    (not mixed, as in Stripe). Returns ``(joiner, [(field_or_metadata.key, value), ...])``.
    """
    if not query or not query.strip():
        raise ParamError("query is required", "query")
    parts = re.split(r"\s+(AND|OR)\s+", query.strip())
    clauses: list[tuple[str, str]] = []
    joiners = set(parts[1::2])
    if len(joiners) > 1:
        raise ParamError("Search queries cannot mix AND and OR", "query")
    for text in parts[0::2]:
        match = _CLAUSE.fullmatch(text)
        if not match:
            raise ParamError(
                f"Unsupported search clause {text!r}: the emulator supports field:'value' and "
                "metadata['key']:'value' joined by AND or OR",
                "query",
            )
        if match.group("mkey"):
            clauses.append((f"metadata.{match.group('mkey')}", match.group("value")))
        else:
            field = match.group("field")
            if field not in fields:
                raise ParamError(
                    f"Field {field!r} is not supported for search (use one of "
                    f"{', '.join(sorted(fields))} or metadata['key'])",
                    "query",
                )
            clauses.append((field, match.group("value")))
    return (joiners.pop() if joiners else "AND"), clauses


def reject_unimplemented(params: dict[str, Any], names: tuple[str, ...]) -> None:
    for name in names:
        if params.get(name) not in (None, ""):
            raise ParamError(
                f"{name} is a valid Stripe parameter the Meterline emulator does not implement "
                "for this call; filter client-side instead",
                name,
            )


def in_created_range(obj: dict[str, Any], params: dict[str, Any]) -> bool:
    """Stripe's ``created`` list filter: an exact timestamp or ``{gt, gte, lt, lte}``."""
    created = params.get("created")
    if created in (None, ""):
        return True
    if not isinstance(created, dict):
        return obj["created"] == as_int(params, "created")
    unknown = set(created) - {"gt", "gte", "lt", "lte"}
    if unknown:
        raise ParamError(f"Received unknown parameter: created[{sorted(unknown)[0]}]", "created")
    bound = {op: as_int(created, op) for op in created}
    return (
        ("gt" not in bound or obj["created"] > bound["gt"])
        and ("gte" not in bound or obj["created"] >= bound["gte"])
        and ("lt" not in bound or obj["created"] < bound["lt"])
        and ("lte" not in bound or obj["created"] <= bound["lte"])
    )
