"""Reading fields of a custom resource's spec: the error that names the field to fix, and scalar texts.

Shared by every resource flinkmem reads a Flink configuration from (FlinkDeployments, their
resources, the template of a FlinkBlueGreenDeployment), so a malformed field reads the same way
whichever resource holds it.
"""

from __future__ import annotations

from flinkmem.engine.options import java_text

__all__ = ["INVALID_SPEC", "SpecError", "scalar_text"]

# The rule of a malformed field, unless a more specific one applies.
INVALID_SPEC = "invalid-spec"


class SpecError(ValueError):
    """The resource is malformed where memory is concerned; `field` is the path to fix, `code` the rule."""

    def __init__(self, field_path: str, problem: str, code: str = INVALID_SPEC) -> None:
        super().__init__(f"{field_path}: {problem}")
        self.field = field_path
        self.problem = problem
        self.code = code

    def rerooted(self, spec_path: str) -> SpecError:
        """The same error about a spec that lives at `spec_path` of another resource (`spec.template.spec`
        of a FlinkBlueGreenDeployment): `spec.x` becomes `<spec_path>.x`."""
        if self.field == "spec":
            return SpecError(spec_path, self.problem, self.code)
        if self.field.startswith("spec."):
            return SpecError(spec_path + self.field[len("spec") :], self.problem, self.code)
        return self


def scalar_text(value: object, path: str) -> str:
    """A configuration scalar as the operator stores it (Jackson's text form, which is Java's)."""
    if isinstance(value, (str, bool, int, float)):
        return java_text(value)
    if value is None:
        raise SpecError(path, "has no value; give it a value or remove the key")
    raise SpecError(path, f"must be a string, number or boolean, not {type(value).__name__}")
