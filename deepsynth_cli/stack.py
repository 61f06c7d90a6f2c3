"""``deepsynth stack register RECIPE``: register the ZenML stacks described in configs/stacks/*.yaml."""

from __future__ import annotations

import click

from deepsynth_cli.output import Group, echo, echo_json, json_option


@click.group(cls=Group)
def stack() -> None:
    """Register the ZenML stacks described in configs/stacks/*.yaml."""


@stack.command("register")
@click.argument("recipe")
@click.option("--activate", is_flag=True, help="Make it the active stack afterwards.")
@click.option(
    "--check",
    "check_only",
    is_flag=True,
    help="Only validate the recipe (flavors, configuration, environment); register nothing.",
)
@json_option
def stack_register(recipe: str, activate: bool, check_only: bool, as_json: bool) -> None:
    """Register (or update) the stack that RECIPE describes: a name in configs/stacks/ or a YAML path.

    ${VAR} values are read from the environment now; {{secret.key}} values stay ZenML secret references.
    """
    from deepsynth_cli.logs import import_zenml

    import_zenml()
    from pipelines import stack_recipes

    parsed = stack_recipes.load_recipe(recipe)
    if check_only:
        stack_recipes.check_recipe(parsed)
        components = {c.type: c.flavor for c in parsed.components}
        if as_json:
            echo_json({"recipe": str(parsed.source), "ok": True, "components": components})
        else:
            echo(f"{parsed.source}: ok ({', '.join(f'{t}={f}' for t, f in components.items())})")
        return
    echo_json(stack_recipes.register(parsed, activate=activate))
