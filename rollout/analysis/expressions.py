"""Success and failure conditions: small expressions over `result`, evaluated by simpleeval
(a maintained evaluator that walks a restricted AST: no attribute access, no imports, no eval).

`result` is what the provider measured: for Prometheus a float for a scalar query and a list of
floats for a vector (`result >= 0.99`, `result[0] < 500`, `len(result) > 0`, `max(result) < 0.5`,
`all(r < 0.5 for r in result)`); for providers that answer JSON any JSON value (`result == true`,
`result["status"] == "ok"`), with `true`, `false` and `null` spelled as in JSON or Python."""

from __future__ import annotations

import math

from simpleeval import (
    AttributeDoesNotExist,
    EvalWithCompoundTypes,
    InvalidExpression,
    IterableTooLong,
    NumberTooHigh,
)

# A JSON value as Python holds it; a Prometheus result is a float or a list of floats.
JSONValue = None | bool | int | float | str | list["JSONValue"] | dict[str, "JSONValue"]
Result = JSONValue
# JSON's spellings, for conditions over JSON answers (Python's True/False/None work as well).
CONSTANTS = {"true": True, "false": False, "null": None}

FUNCTIONS = {
    "len": len,
    "min": min,
    "max": max,
    "sum": sum,
    "abs": abs,
    "all": all,
    "any": any,
    "isNaN": math.isnan,
}


class ConditionError(ValueError):
    """A condition that does not parse, names something unknown, or does not give true/false."""


def evaluate(condition: str, result: Result) -> bool:
    evaluator = EvalWithCompoundTypes(functions=FUNCTIONS, names={**CONSTANTS, "result": result})
    try:
        value = evaluator.eval(condition)
    except InvalidExpression as exc:  # unknown names and functions, disallowed syntax
        raise ConditionError(f"{condition!r}: {exc}") from exc
    except SyntaxError as exc:
        raise ConditionError(f"{condition!r} is not an expression: {exc.msg}") from exc
    except (TypeError, IndexError, KeyError, ValueError, ZeroDivisionError) as exc:
        hint = ""
        if isinstance(result, list) and isinstance(exc, TypeError):
            hint = f" (result is a vector of {len(result)} values: compare result[0], or use len/min/max)"
        elif isinstance(result, list) and isinstance(exc, IndexError):
            hint = f" (result has {len(result)} values)"
        raise ConditionError(f"{condition!r} cannot be evaluated: {exc}{hint}") from exc
    if not isinstance(value, bool):
        raise ConditionError(f"{condition!r} gives {value!r}, not true or false")
    return value


# Values a result of any JSON type may take, to find the mistakes that fail on every one of them.
JSON_SAMPLES: tuple[Result, ...] = ([1.0], 1.0, {}, "", True, None)


def check(condition: str, *, any_json: bool = False) -> str | None:
    """Why `condition` can never work (syntax, unknown names), or None. Tried on a one-value
    vector and on a scalar: a condition that fails on both has a mistake of its own. With
    `any_json` (the result may be any JSON value, whose shape is not known before it is
    measured) only syntax and names are checked: a type that does not fit is the answer's."""
    if any_json:
        for sample in JSON_SAMPLES:
            evaluator = EvalWithCompoundTypes(functions=FUNCTIONS, names={**CONSTANTS, "result": sample})
            try:
                evaluator.eval(condition)
            except (AttributeDoesNotExist, IterableTooLong, NumberTooHigh):
                continue  # these depend on the value (`result.get` exists on an object only)
            except InvalidExpression as exc:
                return f"{condition!r}: {exc}"
            except SyntaxError as exc:
                return f"{condition!r} is not an expression: {exc.msg}"
            except Exception:  # any other failure depends on the value measured
                continue
        return None
    problems = []
    for sample in ([1.0], 1.0):
        try:
            evaluate(condition, sample)
            return None
        except ConditionError as exc:
            problems.append(str(exc))
    return problems[0]
