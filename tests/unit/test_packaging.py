"""pyproject.toml's dependency ranges and requirements.txt's pins describe the same packages."""

import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent.parent


def declared() -> dict[str, Requirement]:
    with (ROOT / "pyproject.toml").open("rb") as f:
        project = tomllib.load(f)["project"]
    reqs = [Requirement(line) for line in project["dependencies"]]
    return {canonicalize_name(r.name): r for r in reqs}


def pinned() -> dict[str, Requirement]:
    reqs = []
    for raw in (ROOT / "requirements.txt").read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            reqs.append(Requirement(line))
    return {canonicalize_name(r.name): r for r in reqs}


def pinned_version(req: Requirement) -> str:
    (spec,) = req.specifier
    assert spec.operator == "==", f"requirements.txt should pin {req.name} with ==, not {spec}"
    return spec.version


def test_every_pin_is_an_exact_version():
    for req in pinned().values():
        pinned_version(req)


def test_every_declared_dependency_is_pinned_within_its_range():
    pins = pinned()
    for name, req in declared().items():
        assert name in pins, f"{req} is in pyproject.toml but not pinned in requirements.txt"
        version = pinned_version(pins[name])
        assert req.specifier.contains(version, prereleases=True), (
            f"requirements.txt pins {name}=={version}, outside pyproject.toml's {req.specifier}"
        )
        assert req.extras == pins[name].extras, f"{name}: extras differ between pyproject.toml and requirements.txt"


def test_every_pin_is_declared():
    missing = sorted(set(pinned()) - set(declared()))
    assert not missing, f"pinned in requirements.txt but missing from pyproject.toml dependencies: {missing}"
