"""A FlinkBlueGreenDeployment checked as the FlinkDeployment it deploys: the same rules, its own names.

The Apache operator's own webhook does not look at blue/green deployments (its webhook configuration
covers flinkdeployments, flinksessionjobs and flinkstatesnapshots), so without this a template in
conflict is admitted and only fails when the operator creates `<name>-blue` from it, visible in the
blue/green deployment's status at best. flinkmem validates `spec.template.spec` at CREATE and UPDATE
exactly as a FlinkDeployment (`decisions.validation`, `decisions.deployment`: both roles, every rule,
the warnings, the modes), with messages that name the blue/green deployment, the child it deploys and
the paths under `spec.template.spec`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flinkmem.decisions.deployment import Subject
from flinkmem.decisions.validation import Finding, Validation, validate_deployment
from flinkmem.sources.bluegreen import (
    BLUEGREEN_KIND,
    TEMPLATE_SPEC_PATH,
    bluegreen_memory_inputs,
    child_deployment,
    child_name,
)
from flinkmem.sources.specfields import SpecError

__all__ = ["BLUEGREEN", "validate_bluegreen"]


def validate_bluegreen(obj: Mapping[str, Any], container_name: str) -> Validation:
    """The blue/green deployment's template, checked as the FlinkDeployment `<name>-blue` it deploys."""
    try:
        child = child_deployment(obj)
    except SpecError as exc:
        return Validation(None, (), (Finding(exc.code, str(exc), (exc.field,)),))
    return validate_deployment(child, container_name, spec_path=TEMPLATE_SPEC_PATH)


def _where(obj: Mapping[str, Any]) -> str:
    return f" (its {TEMPLATE_SPEC_PATH}, which the operator deploys as FlinkDeployment {child_name(obj)})"


BLUEGREEN = Subject(BLUEGREEN_KIND, validate_bluegreen, bluegreen_memory_inputs, _where)
