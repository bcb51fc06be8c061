"""One error table for the CLI and the gateway: every chorus error has its exit code, HTTP status and code."""

from __future__ import annotations

import inspect

import shared.errors as errors
from gateway.http import http_error
from shared.errors import ERROR_TABLE, EX_TEMPFAIL, ChorusError, error_kind


def test_every_error_class_has_a_row() -> None:
    classes = [
        c for _, c in inspect.getmembers(errors, inspect.isclass) if issubclass(c, ChorusError) and c is not ChorusError
    ]
    listed = [cls for cls, _ in ERROR_TABLE]
    missing = [c.__name__ for c in classes if error_kind(c.__new__(c)).code == "internal_error"]
    assert missing == [], "each error is answered on purpose, not as a 500 by accident"
    for i, cls in enumerate(listed):  # a subclass must come before its parent, or it would never match
        assert not any(issubclass(cls, earlier) for earlier in listed[:i]), cls.__name__


def test_the_cli_and_the_gateway_answer_from_the_same_row() -> None:
    full = errors.QueueFull("acme", 10, 10, 2, 3.0)
    assert error_kind(full).exit_code == EX_TEMPFAIL and http_error(full).status == 429
    assert http_error(full).headers["Retry-After"] == "3"
    model = errors.ModelIntegrityError("/m/model.onnx", "digest mismatch")
    assert http_error(model).status == 503 and http_error(model).code == "model_unavailable", "not a 400"
    down = errors.RedisUnavailable("redis://h:6379/0", "refused")
    answer = http_error(down)
    assert answer.status == 503 and "redis://" not in answer.message, "the operator's URL stays in the log"
    assert error_kind(errors.InvalidRequest("speed", "too fast")).http_status == 400


def test_an_error_nobody_classified_is_a_500() -> None:
    answer = http_error(ChorusError("something new"))
    assert (answer.status, answer.code, answer.message) == (500, "internal_error", "internal error")
    assert error_kind(ChorusError("x")).exit_code == 1
