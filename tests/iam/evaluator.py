"""Offline evaluation of AWS policies: may this principal perform this action on this resource?

`decide()` follows the evaluation logic in AWS's IAM documentation for a request that meets a principal's
identity-based policies and at most one resource-based policy (bucket, key, topic, queue or role trust policy):

- an explicit Deny in any of the policies wins;
- in the same account an Allow in either kind of policy is enough, except that a resource policy that names only
  the account (its root ARN or id) delegates to the identity policies, which must then allow too;
- KMS key policies and role trust policies must allow even in the same account (directly, or by naming the
  account with an identity Allow alongside); a missing key or trust policy therefore allows nothing;
- across accounts, both the identity policies and the resource policy must allow;
- service principals (``sns.amazonaws.com``) have no identity policies: the resource policy alone decides.

Statements support Action/NotAction (case-insensitive, with ``*`` and ``?``), Resource/NotResource
(case-sensitive, wildcards never cross the colons of the ARN), Principal and NotPrincipal (the latter only in
Deny statements), every condition operator family with ``IfExists``, ``ForAnyValue``/``ForAllValues`` and
``Null``, and policy variables (``${aws:username}``, ``${key, 'default'}``, ``${*}``, ``${?}``, ``${$}``).

Not modelled: service control policies, resource control policies, permission boundaries, session policies,
VPC endpoint policies, S3 ACLs, Object Ownership and Block Public Access, KMS grants, anonymous requests, and
principals other than IAM roles, users and account roots (assumed-role sessions, federated users, canonical
users). Nothing is inferred: the caller supplies every context key the request carries (``aws:PrincipalArn``,
``aws:SecureTransport``, ``s3:ExistingObjectTag/<key>``...). Input the evaluator cannot model faithfully raises
`Unsupported` instead of producing a guess.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

Value = str | list[str]
Policy = Mapping[str, Any]

_DIRECT = "direct"  # the resource policy names the principal itself, or everyone
_ACCOUNT = "account"  # it names only the principal's account, which delegates to the identity policies

# ${*} and ${?} stand for a literal '*' and '?'. Private-use characters carry them through substitution so that
# the wildcard matcher can tell them apart from real wildcards.
_LITERAL_STAR, _LITERAL_QM = "\ue000", "\ue001"
_TO_LITERAL = str.maketrans({_LITERAL_STAR: "*", _LITERAL_QM: "?"})
_VARIABLE = re.compile(r"\$\{([^}]*)\}")
_IAM_ARN = re.compile(r"arn:aws[a-z-]*:iam::(\d{12}):(root|role/.+|user/.+)")


class Unsupported(ValueError):
    """The policy or request uses something this evaluator does not model."""


@dataclass
class Decision:
    allowed: bool
    reason: str  # "allowed", "explicit-deny" or "implicit-deny"
    deny: list[tuple[str, str]] = field(default_factory=list)  # (policy label, Sid) of each matching Deny
    allow: list[tuple[str, str]] = field(default_factory=list)  # (policy label, Sid) of each matching Allow


@dataclass(frozen=True)
class _Request:
    principal: str
    action: str
    resource: str
    context: dict[str, Value]  # keys lower-cased: context keys are case-insensitive

    @property
    def is_service(self) -> bool:
        return not self.principal.startswith("arn:")

    @property
    def account(self) -> str | None:
        return None if self.is_service else self.principal.split(":")[4]


def _as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def _as_text(value: Any) -> str:
    # JSON booleans in policies and contexts mean the strings "true"/"false", as in AWS's own policy grammar
    return str(value).lower() if isinstance(value, bool) else str(value)


# ------------------------------------------------------------------------------------------------ wildcards
@lru_cache(maxsize=4096)
def _wildcard_regex(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    parts = []
    for ch in pattern:
        if ch == "*":
            parts.append(".*")
        elif ch == "?":
            parts.append(".")
        else:  # everything else is literal, including regex syntax such as '+' or '(' in S3 keys
            parts.append(re.escape(ch.translate(_TO_LITERAL)))
    return re.compile("".join(parts), re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def _wildcard_match(pattern: str, value: str, ignore_case: bool = False) -> bool:
    return _wildcard_regex(pattern, ignore_case).fullmatch(value) is not None


def _arn_match(pattern: str, arn: str) -> bool:
    """Match segment by segment, so that a wildcard in the region or account cannot swallow a colon."""
    if pattern == "*":
        return True
    pattern_parts, arn_parts = pattern.split(":", 5), arn.split(":", 5)
    if len(pattern_parts) != 6:
        # AWS pads some short patterns and rejects others depending on the policy type; not worth modelling
        raise Unsupported(f"ARN pattern with fewer than six segments: {pattern!r}")
    if len(arn_parts) != 6:
        return False
    return all(_wildcard_match(p, a) for p, a in zip(pattern_parts, arn_parts, strict=True))


# ------------------------------------------------------------------------------------------------ variables
def _variable_value(inner: str, context: dict[str, Value]) -> str | None:
    """The text that replaces ${inner}, or None if the variable cannot be resolved."""
    specials = {"*": _LITERAL_STAR, "?": _LITERAL_QM, "$": "$"}
    if inner in specials:
        return specials[inner]
    key, comma, default = (part.strip() for part in inner.partition(","))
    if comma and not (len(default) >= 2 and default[0] == default[-1] == "'"):
        raise Unsupported(f"policy variable default must be in single quotes: ${{{inner}}}")
    value = context.get(key.lower())
    if isinstance(value, str):
        # a substituted value is data, never a wildcard
        return value.replace("*", _LITERAL_STAR).replace("?", _LITERAL_QM)
    # an absent or multivalued key cannot be substituted; AWS then uses the default if there is one
    return default[1:-1].replace("''", "'") if comma else None


def _resolve(text: str, context: dict[str, Value]) -> str | None:
    """Substitute the policy variables in text; None if one of them cannot be resolved."""
    if "${" not in text:
        return text
    unresolved = False

    def replace(match: re.Match[str]) -> str:
        nonlocal unresolved
        value = _variable_value(match.group(1), context)
        unresolved |= value is None
        return value or ""

    text = _VARIABLE.sub(replace, text)
    return None if unresolved else text


# ------------------------------------------------------------------------------------------------ conditions
# Each comparison takes a resolved policy value and one context value. Parse errors (a number that is not one,
# an invalid address) make the comparison false rather than crash, like a request value that does not match.
def _parsed(parse: Callable[[str], Any], test: Callable[[Any, Any], bool]) -> Callable[[str, str], bool]:
    def compare(policy_value: str, value: str) -> bool:
        try:
            return test(parse(value), parse(policy_value))
        except (ValueError, TypeError):
            return False

    return compare


def _date(text: str) -> dt.datetime:
    if re.fullmatch(r"-?\d+(\.\d+)?", text):  # epoch seconds are accepted too
        return dt.datetime.fromtimestamp(float(text), dt.UTC)
    parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _in_network(value: str, network: str) -> bool:
    try:
        return ipaddress.ip_address(value) in ipaddress.ip_network(network, strict=False)
    except ValueError:
        return False


def _string_equals(policy_value: str, value: str) -> bool:
    return policy_value.translate(_TO_LITERAL) == value


def _string_equals_ignore_case(policy_value: str, value: str) -> bool:
    return policy_value.translate(_TO_LITERAL).lower() == value.lower()


def _arn_like(policy_value: str, value: str) -> bool:
    return _arn_match(policy_value, value)


_NUMERIC = {
    "Equals": float.__eq__,
    "LessThan": float.__lt__,
    "LessThanEquals": float.__le__,
    "GreaterThan": float.__gt__,
    "GreaterThanEquals": float.__ge__,
}
_DATE = {
    "Equals": dt.datetime.__eq__,
    "LessThan": dt.datetime.__lt__,
    "LessThanEquals": dt.datetime.__le__,
    "GreaterThan": dt.datetime.__gt__,
    "GreaterThanEquals": dt.datetime.__ge__,
}

# base operator -> (negated, comparison). A negated operator holds when no policy value matches.
_OPERATORS: dict[str, tuple[bool, Callable[[str, str], bool]]] = {
    "StringEquals": (False, _string_equals),
    "StringNotEquals": (True, _string_equals),
    "StringEqualsIgnoreCase": (False, _string_equals_ignore_case),
    "StringNotEqualsIgnoreCase": (True, _string_equals_ignore_case),
    "StringLike": (False, _wildcard_match),
    "StringNotLike": (True, _wildcard_match),
    "ArnEquals": (False, _arn_like),  # ArnEquals and ArnLike behave identically, wildcards included
    "ArnLike": (False, _arn_like),
    "ArnNotEquals": (True, _arn_like),
    "ArnNotLike": (True, _arn_like),
    "Bool": (False, lambda p, v: p.lower() == v.lower()),
    "BinaryEquals": (False, _parsed(base64.b64decode, bytes.__eq__)),
    "IpAddress": (False, lambda p, v: _in_network(v, p)),
    "NotIpAddress": (True, lambda p, v: _in_network(v, p)),
    **{f"Numeric{name}": (False, _parsed(float, test)) for name, test in _NUMERIC.items()},
    "NumericNotEquals": (True, _parsed(float, float.__eq__)),
    **{f"Date{name}": (False, _parsed(_date, test)) for name, test in _DATE.items()},
    "DateNotEquals": (True, _parsed(_date, dt.datetime.__eq__)),
}


def _parse_operator(operator: str) -> tuple[str, str, bool]:
    """'ForAnyValue:StringLikeIfExists' -> ('ForAnyValue', 'StringLike', True)."""
    qualifier, _, base = operator.rpartition(":")
    if_exists = base.endswith("IfExists")
    base = base.removesuffix("IfExists")
    if base not in _OPERATORS or qualifier not in ("", "ForAnyValue", "ForAllValues"):
        raise Unsupported(f"condition operator {operator}")
    return qualifier, base, if_exists


def _condition_holds(operator: str, key: str, policy_values: Any, context: dict[str, Value]) -> bool:
    """One key of one operator block: the policy values are ORed (NORed for a negated operator)."""
    values = [_as_text(v) for v in _as_list(policy_values)]
    present = key.lower() in context
    if operator == "Null":
        return any(v.lower() == ("false" if present else "true") for v in values)
    qualifier, base, if_exists = _parse_operator(operator)
    negated, compare = _OPERATORS[base]
    resolved = [_resolve(v, context) for v in values]

    def holds_for(request_value: str) -> bool:
        # An unresolvable policy value matches nothing, yet it must not make a negated operator true either:
        # AWS documents such a variable as invalidating the statement.
        if negated:
            return all(p is not None and not compare(p, request_value) for p in resolved)
        return any(p is not None and compare(p, request_value) for p in resolved)

    if qualifier:
        request_values = _as_list(context[key.lower()]) if present else []
        if qualifier == "ForAllValues":
            return all(holds_for(v) for v in request_values)  # vacuously true for an absent or empty key
        return any(holds_for(v) for v in request_values)  # false for an absent or empty key
    if not present:
        return if_exists or negated  # AWS: a negated operator matches a missing key, a positive one does not
    value = context[key.lower()]
    if isinstance(value, list):
        raise Unsupported(f"{operator} on the multivalued key {key}: use ForAnyValue or ForAllValues")
    return holds_for(value)


def _conditions_hold(condition: Mapping[str, Mapping[str, Any]] | None, context: dict[str, Value]) -> bool:
    """Operators AND together, and so do the keys within one operator."""
    return all(
        _condition_holds(operator, key, values, context)
        for operator, block in (condition or {}).items()
        for key, values in block.items()
    )


# ------------------------------------------------------------------------------------------------ statements
def _action_matches(statement: Mapping[str, Any], action: str) -> bool:
    for element, wanted in (("Action", True), ("NotAction", False)):
        if element in statement:
            hit = any(_wildcard_match(p, action, ignore_case=True) for p in _as_list(statement[element]))
            return hit == wanted
    raise Unsupported("statement without Action or NotAction")


def _resource_matches(statement: Mapping[str, Any], request: _Request) -> bool:
    for element, wanted in (("Resource", True), ("NotResource", False)):
        if element in statement:
            patterns = [_resolve(p, request.context) for p in _as_list(statement[element])]
            if not wanted and None in patterns:
                return False  # as for negated operators, an unresolvable pattern spoils a NotResource
            hit = any(p is not None and _arn_match(p, request.resource) for p in patterns)
            return hit == wanted
    return True  # some resource policies (KMS, trust policies) leave Resource out


def _account_names(request: _Request) -> set[str]:
    """The ways a policy can name the principal's whole account."""
    partition = request.principal.split(":")[1]
    return {f"arn:{partition}:iam::{request.account}:root", str(request.account)}


def _check_principal_block(block: Any) -> dict[str, list[str]]:
    if not isinstance(block, Mapping):
        raise Unsupported(f"Principal {block!r}")
    unknown = set(block) - {"AWS", "Service"}
    if unknown:
        raise Unsupported(f"principal type {sorted(unknown)}")
    return {kind: [str(x) for x in _as_list(names)] for kind, names in block.items()}


def _principal_grant(block: Any, request: _Request) -> str | None:
    """How a Principal element covers the request's principal: _DIRECT, _ACCOUNT or not at all (None)."""
    if block == "*":
        return _DIRECT
    names = _check_principal_block(block)
    aws = set(names.get("AWS", []))
    if "*" in aws:  # {"AWS": "*"} is everyone, as "*" is
        return _DIRECT
    if request.is_service:
        return _DIRECT if request.principal in names.get("Service", []) else None
    if request.principal in aws:
        return _DIRECT
    return _ACCOUNT if aws & _account_names(request) else None


def _not_principal_exempts(block: Any, request: _Request) -> bool:
    """Whether a NotPrincipal element spares the request's principal from its Deny."""
    if block == "*":
        return True
    names = _check_principal_block(block)
    if request.is_service:
        return request.principal in names.get("Service", [])
    aws = set(names.get("AWS", []))
    # AWS's NotPrincipal page: list the principal and its account, or the Deny still applies to it
    return "*" in aws or (request.principal in aws and bool(aws & _account_names(request)))


def _statement_grant(statement: Mapping[str, Any], request: _Request, resource_policy: bool) -> str | None:
    if not resource_policy:
        return _DIRECT  # an identity policy speaks for its own principal only
    if "Principal" in statement:
        return _principal_grant(statement["Principal"], request)
    if "NotPrincipal" in statement:
        if statement.get("Effect") != "Deny":
            raise Unsupported("NotPrincipal with Allow")
        return None if _not_principal_exempts(statement["NotPrincipal"], request) else _DIRECT
    raise Unsupported("resource policy statement without Principal or NotPrincipal")


def _matching_statements(
    policy: Policy | None, label: str, request: _Request, resource_policy: bool
) -> Iterator[tuple[str, str, tuple[str, str]]]:
    """(effect, grant, (label, Sid)) for each statement of the policy that applies to the request."""
    for i, statement in enumerate(_as_list((policy or {}).get("Statement", []))):
        effect = statement.get("Effect")
        if effect not in ("Allow", "Deny"):
            raise Unsupported(f"Effect {effect!r}")
        grant = _statement_grant(statement, request, resource_policy)
        if (
            grant
            and _action_matches(statement, request.action)
            and _resource_matches(statement, request)
            and _conditions_hold(statement.get("Condition"), request.context)
        ):
            yield effect, grant, (label, statement.get("Sid", f"#{i}"))


# ------------------------------------------------------------------------------------------------ decision
def _normalise_context(context: Mapping[str, Any]) -> dict[str, Value]:
    """Lower-case keys, text values; a key given as None counts as absent."""
    out: dict[str, Value] = {}
    for key, value in context.items():
        if value is None:
            continue
        multi = isinstance(value, list | tuple | set | frozenset)
        out[key.lower()] = [_as_text(v) for v in value] if multi else _as_text(value)
    return out


def _check_principal(principal: str) -> None:
    if principal.startswith("arn:"):
        if not _IAM_ARN.fullmatch(principal):
            raise Unsupported(f"principal {principal!r}: only IAM roles, users and account roots are modelled")
    elif ":" in principal or "." not in principal:
        raise Unsupported(f"principal {principal!r}: neither an IAM ARN nor a service principal")


def _resource_policy_must_allow(request: _Request) -> bool:
    """KMS keys and IAM roles do not trust their own account's identity policies by default."""
    action, resource = request.action.lower(), request.resource
    return (action.startswith("kms:") and ":kms:" in resource) or (
        action.startswith("sts:") and ":iam::" in resource and ":role/" in resource
    )


def _allowed(request: _Request, identity_allows: bool, grants: set[str], resource_account: str | None) -> bool:
    if request.is_service:
        return _DIRECT in grants
    if resource_account is not None and request.account != resource_account:
        return identity_allows and bool(grants)  # across accounts both sides must allow, for KMS too
    if _resource_policy_must_allow(request):
        return _DIRECT in grants or (_ACCOUNT in grants and identity_allows)
    return _DIRECT in grants or identity_allows


def decide(
    principal: str,
    action: str,
    resource: str,
    context: Mapping[str, Value],
    identity_policies: Sequence[Policy] = (),
    resource_policy: Policy | None = None,
    resource_account: str | None = None,
) -> Decision:
    """Decide one request.

    principal: an IAM ARN ("arn:aws:iam::111122223333:role/x", a user, or the account root) or a service
        principal ("sns.amazonaws.com").
    context: the request's condition keys, each a string or a list of strings for multivalued keys.
    identity_policies: the principal's policy documents (ignored for a service principal).
    resource_policy: the resource's policy document, if it has one.
    resource_account: the account that owns the resource; None means the principal's own account.

    Returns whether AWS would allow the request, why, and the (policy label, Sid) of every statement that
    matched; raises Unsupported for anything outside the model described in the module docstring.
    """
    _check_principal(principal)
    request = _Request(principal, action, resource, _normalise_context(context))
    decision = Decision(False, "implicit-deny")
    identity_allows = False
    grants: set[str] = set()  # how the resource policy's matching Allows name the principal
    labelled: list[tuple[str, Policy | None]] = []
    if not request.is_service:  # services have no identity policies of their own
        labelled += [(f"identity[{i}]", p) for i, p in enumerate(identity_policies)]
    labelled.append(("resource", resource_policy))
    for label, policy in labelled:
        for effect, grant, where in _matching_statements(policy, label, request, label == "resource"):
            if effect == "Deny":
                decision.deny.append(where)
                continue
            decision.allow.append(where)
            if label == "resource":
                grants.add(grant)
            else:
                identity_allows = True
    if decision.deny:
        decision.reason = "explicit-deny"
    else:
        decision.allowed = _allowed(request, identity_allows, grants, resource_account)
        decision.reason = "allowed" if decision.allowed else "implicit-deny"
    return decision
