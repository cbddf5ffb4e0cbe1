"""CLI: ``neuroplast fleet deploy|status|collect|rollout`` over a fleet file (see
:mod:`neuroplast.boards.fleet.ssh`). Results print as JSON; a failed device or a rolled
back rollout exits 1."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

__all__ = ["register"]


def register(app: Any) -> None:
    """Add the ``fleet`` command group."""
    import typer

    from neuroplast.cli import check_failed, command_group

    fleet_app = command_group(app, "fleet")

    def _done(res: dict[str, Any], what: str) -> None:
        print(json.dumps(res, indent=1, default=str))
        bad = sorted(n for n, r in res.items() if isinstance(r, dict) and "error" in r)
        if bad:
            check_failed(f"{what} failed on {', '.join(bad)}")

    @fleet_app.command("deploy")
    def deploy_cmd(
        fleet_file: Path = typer.Argument(..., help="Fleet file (TOML)."),
        bundle: Path = typer.Argument(..., help="Bundle to deploy."),
        wheel: Path = typer.Option(None, "--wheel", help="neuroplast wheel (default: build one)."),
        workers: int = typer.Option(8, "--workers", help="Devices deployed at once."),
    ) -> None:
        """Deploy a bundle to every device of a fleet in parallel.

        \b
        Examples:
            neuroplast fleet deploy fleet.toml model.zip
        """
        from neuroplast.boards.fleet.ssh import fleet_deploy, load_fleet

        _done(fleet_deploy(load_fleet(fleet_file), bundle, wheel=wheel, workers=workers), "deploy")

    @fleet_app.command("status")
    def status_cmd(fleet_file: Path = typer.Argument(..., help="Fleet file (TOML).")) -> None:
        """Health of every device: smoke run, check-set score, error counters.

        \b
        Examples:
            neuroplast fleet status fleet.toml
        """
        from neuroplast.boards.fleet.ssh import fleet_status, load_fleet

        _done(fleet_status(load_fleet(fleet_file)), "status")

    @fleet_app.command("collect")
    def collect_cmd(
        fleet_file: Path = typer.Argument(..., help="Fleet file (TOML)."),
        dest: Path = typer.Argument(..., help="Folder for the devices' learned state."),
    ) -> None:
        """Copy every device's learned state to DEST/<device>/state.

        \b
        Examples:
            neuroplast fleet collect fleet.toml collected/
        """
        from neuroplast.boards.fleet.ssh import fleet_collect, load_fleet

        _done(fleet_collect(load_fleet(fleet_file), dest), "collect")

    @fleet_app.command("rollout")
    def rollout_cmd(
        fleet_file: Path = typer.Argument(..., help="Fleet file (TOML)."),
        bundle: Path = typer.Argument(..., help="Bundle to roll out."),
        max_drop: float = typer.Option(0.02, "--max-drop", help="Allowed check-score drop."),
        wheel: Path = typer.Option(None, "--wheel", help="neuroplast wheel (default: build one)."),
    ) -> None:
        """Roll a bundle out group by group (canary first); roll back on regression.

        \b
        Examples:
            neuroplast fleet rollout fleet.toml model-v2.zip --max-drop 0.01
        """
        from neuroplast.boards.fleet.ssh import fleet_rollout, load_fleet

        rep = fleet_rollout(load_fleet(fleet_file), bundle, wheel=wheel, max_drop=max_drop)
        print(json.dumps(dataclasses.asdict(rep), indent=1, default=str))
        if not rep.completed:
            check_failed(f"rollout stopped and rolled back: {rep.reason}")
