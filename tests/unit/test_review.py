"""The AdmissionReview checks: malformed input is a 400 naming the field, before anything reads it."""

from __future__ import annotations

from typing import Any

import pytest

from flinkmem.runtime.admission.review import ReviewError, check_review, metadata_problem


def review(**request: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "uid": "u-1",
        "operation": "CREATE",
        "resource": {"group": "", "version": "v1", "resource": "pods"},
        "userInfo": {"username": "tester"},
        "object": {"metadata": {"name": "x"}},
    }
    base.update(request)
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": base}


def test_check_review_accepts_a_real_shape_and_fills_namespace() -> None:
    data = check_review(review(namespace="jobs"))
    obj = data["request"].get("object")
    assert obj is not None and obj["metadata"]["namespace"] == "jobs"


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ([], "JSON object"),
        ({"kind": "AdmissionReview"}, "admission.k8s.io/v1"),
        (review(uid=5), "uid"),
        (review(operation="PATCH"), "operation"),
        (review(resource="pods"), "resource"),
        (review(userInfo=None), "userInfo"),
        (review(object=[1]), "object"),
        (review(object=None), "object or request.oldObject"),
        (review(dryRun="yes"), "dryRun"),
        (review(namespace=7), "namespace"),
    ],
)
def test_check_review_rejects_malformed(body: Any, fragment: str) -> None:
    with pytest.raises(ReviewError, match=fragment):
        check_review(body)


@pytest.mark.parametrize(
    ("obj", "problem"),
    [
        ({"metadata": None}, "object.metadata must be an object"),
        ({"metadata": "x"}, "object.metadata must be an object"),
        ({"metadata": {"labels": None}}, "object.metadata.labels must be a map of strings"),
        ({"metadata": {"labels": ["a"]}}, "object.metadata.labels must be a map of strings"),
        ({"metadata": {"labels": {"app": 3}}}, "object.metadata.labels['app'] must be a string"),
        ({"metadata": {"annotations": "x"}}, "object.metadata.annotations must be a map of strings"),
        ({"metadata": {"name": 5}}, "object.metadata.name must be a string"),
        ({"metadata": {"namespace": {}}}, "object.metadata.namespace must be a string"),
        ({"spec": None}, None),
        ({"metadata": {"name": "x", "labels": {"a": "b"}}}, None),
    ],
)
def test_metadata_problem_names_the_field(obj: dict[str, Any], problem: str | None) -> None:
    assert metadata_problem(obj, "object") == problem
