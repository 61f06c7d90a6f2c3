"""Stack recipes (configs/stacks/*.yaml) → ZenML stack components and a stack.

A recipe names a stack, its components (type → name, flavor, configuration) and the secrets
they reference. ``${VAR}`` / ``${VAR:-default}`` in values are read from the environment at
registration time (credentials never live in the recipe); ``{{secret.key}}`` is a ZenML secret
reference, resolved by ZenML when the component is used. Registration is idempotent: an
existing component with the same name and flavor is updated, so re-running after editing a
recipe converges.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from deepsynth.errors import ConfigError
from deepsynth.yaml_bounds import read_yaml
from pipelines.env_vars import expand, required_vars

RECIPES = Path(__file__).parents[1] / "configs" / "stacks"
RECIPE_KEYS = {"name", "description", "components", "secrets"}
COMPONENT_KEYS = {"name", "flavor", "configuration"}


@dataclass
class Component:
    """One stack component of a recipe."""

    type: str
    name: str
    flavor: str
    configuration: dict[str, Any] = field(default_factory=dict)


@dataclass
class Recipe:
    """A parsed stack recipe."""

    name: str
    source: Path
    components: list[Component]
    secrets: dict[str, dict[str, str]] = field(default_factory=dict)
    description: str = ""

    def env_vars(self) -> set[str]:
        """Environment variables the recipe reads (those without a default must be set to register)."""
        text = yaml.safe_dump([c.configuration for c in self.components] + [self.secrets])
        return required_vars(text)


def recipe_path(recipe: str | Path) -> Path:
    """A recipe name (``k8s-gpu-s3``) or path → the YAML file."""
    path = Path(recipe)
    if path.suffix in (".yaml", ".yml") or path.exists():
        candidate = path
    else:
        candidate = RECIPES / f"{recipe}.yaml"
    if not candidate.is_file():
        known = ", ".join(sorted(p.stem for p in RECIPES.glob("*.yaml")))
        raise ConfigError(f"{recipe}: no such stack recipe (known: {known})")
    return candidate


def load_recipe(recipe: str | Path) -> Recipe:
    """Parse and structurally check a recipe (no environment lookup, no ZenML store)."""
    from zenml.enums import StackComponentType

    path = recipe_path(recipe)
    data = read_yaml(path)
    unknown = set(data) - RECIPE_KEYS
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {sorted(unknown)}; known: {sorted(RECIPE_KEYS)}")
    if not isinstance(data.get("name"), str) or not data["name"]:
        raise ConfigError(f"{path}: name: the stack's name is required")
    types = {t.value for t in StackComponentType}
    components = []
    for ctype, spec in (data.get("components") or {}).items():
        if ctype not in types:
            raise ConfigError(f"{path}: components.{ctype}: not a stack component type (one of {sorted(types)})")
        if not isinstance(spec, dict) or set(spec) - COMPONENT_KEYS or not spec.get("name") or not spec.get("flavor"):
            raise ConfigError(
                f"{path}: components.{ctype}: expected a mapping with name, flavor and optional configuration"
            )
        components.append(Component(ctype, spec["name"], spec["flavor"], dict(spec.get("configuration") or {})))
    present = {c.type for c in components}
    for required in ("orchestrator", "artifact_store"):
        if required not in present:
            raise ConfigError(f"{path}: components.{required}: every stack needs one")
    secrets = data.get("secrets") or {}
    if not isinstance(secrets, dict) or not all(isinstance(v, dict) for v in secrets.values()):
        raise ConfigError(f"{path}: secrets: expected name → {{key: value}}")
    return Recipe(
        data["name"],
        path,
        components,
        {k: {kk: str(vv) for kk, vv in v.items()} for k, v in secrets.items()},
        data.get("description", ""),
    )


def flavor_class(component: Component) -> tuple[type, str]:
    """The ZenML flavor class a component names and its integration ("built-in" for core flavors)."""
    from zenml.integrations.registry import integration_registry
    from zenml.stack.flavor_registry import FlavorRegistry

    candidates = [(f, "built-in") for f in FlavorRegistry().builtin_flavors]
    for name, integration in integration_registry.integrations.items():
        candidates += [(f, name) for f in integration.flavors()]
    for cls, integration in candidates:
        flavor = cls()
        if flavor.name == component.flavor and flavor.type.value == component.type:
            return cls, integration
    known = sorted({cls().name for cls, _ in candidates if cls().type.value == component.type})
    raise ConfigError(
        f"{component.type} {component.name!r}: ZenML has no flavor {component.flavor!r} (known: {', '.join(known)})"
    )


_SECRET_REF = re.compile(r"^\{\{\s*([^.\s}]+)\.([^}\s]+)\s*\}\}$")


def secret_refs(configuration: dict[str, Any]) -> set[str]:
    """Names of the ZenML secrets that ``{{secret.key}}`` values in ``configuration`` refer to."""
    return {m.group(1) for v in configuration.values() if isinstance(v, str) and (m := _SECRET_REF.match(v))}


def validate_component(component: Component, configuration: dict[str, Any]) -> Any:
    """Validate ``configuration`` against the flavor's config class; returns the config object.

    Secret references are validated as references (ZenML resolves them on use), not looked up.
    """
    cls, _ = flavor_class(component)
    plain = {
        k: ("secret-reference" if isinstance(v, str) and _SECRET_REF.match(v) else v) for k, v in configuration.items()
    }
    try:
        return cls().config_class(**plain)
    except Exception as exc:  # pydantic ValidationError or a flavor's own check
        raise ConfigError(
            f"{component.type} {component.name!r} ({component.flavor}): invalid configuration: {exc}"
        ) from None


def check_recipe(recipe: Recipe, environ: dict[str, str] | None = None) -> None:
    """Every component names a flavor ZenML knows and its configuration validates (env expanded)."""
    for component in recipe.components:
        where = f"{recipe.source.name}: components.{component.type}.configuration"
        validate_component(component, expand(component.configuration, where, environ))
        missing = secret_refs(component.configuration) - set(recipe.secrets)
        if missing:
            raise ConfigError(
                f"{where}: refers to secret(s) {sorted(missing)} that the recipe's secrets section does not define"
            )


def register(recipe: Recipe, activate: bool = False, environ: dict[str, str] | None = None) -> dict[str, Any]:
    """Register (or update) the recipe's secrets, components and stack in the active ZenML store."""
    from zenml.client import Client
    from zenml.enums import StackComponentType

    check_recipe(recipe, environ)
    client = Client()
    done: dict[str, Any] = {"stack": recipe.name, "components": {}, "secrets": []}
    for name, values in recipe.secrets.items():
        resolved = expand(values, f"{recipe.source.name}: secrets.{name}", environ)
        try:
            existing = client.get_secret(name)
        except KeyError:
            client.create_secret(name, values=resolved)
        else:
            client.update_secret(existing.id, add_or_update_values=resolved)
        done["secrets"].append(name)
    components: dict[StackComponentType, str] = {}
    for component in recipe.components:
        ctype = StackComponentType(component.type)
        configuration = expand(component.configuration, f"{recipe.source.name}: components.{component.type}", environ)
        found = client.list_stack_components(name=component.name, type=ctype).items
        if found:
            if found[0].flavor_name != component.flavor:
                raise ConfigError(
                    f"{component.type} {component.name!r} exists with flavor {found[0].flavor_name}, not "
                    f"{component.flavor}; "
                    "rename it in the recipe or delete it (zenml … delete)"
                )
            if configuration:  # an empty recipe configuration keeps the existing one (e.g. the default store)
                client.update_stack_component(component.name, ctype, configuration=configuration)
        else:
            client.create_stack_component(component.name, component.flavor, ctype, configuration=configuration)
        components[ctype] = component.name
        done["components"][component.type] = {"name": component.name, "flavor": component.flavor}
    if recipe.name in {s.name for s in client.list_stacks(name=recipe.name).items}:
        client.update_stack(recipe.name, component_updates={t: [n] for t, n in components.items()})
    else:
        client.create_stack(recipe.name, components=components)
    if activate:
        client.activate_stack(recipe.name)
    done["active"] = client.active_stack_model.name == recipe.name
    return done
