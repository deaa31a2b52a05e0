import sys
import uuid
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from marketplace.certification import keys, signing


class Command(BaseCommand):
    help = (
        "Certify local files: run the engine on a synthetic table against reference train (+ holdout) "
        "and write a certificate signed with the platform key."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--synthetic", required=True, help="synthetic table (CSV, Parquet or JSON Lines)")
        parser.add_argument("--train", required=True, help="real rows the generator learned from")
        parser.add_argument("--holdout", help="real rows the generator never saw (the privacy baseline)")
        parser.add_argument("--target", help="column to predict, for the ML-efficacy test")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--output", required=True, help="where to write CERT.json")

    def handle(self, *args: Any, **options: Any) -> None:
        from marketplace.certification.engine import EngineConfig, EngineError, evaluate, load_table

        paths = {role: options[role] for role in ("synthetic", "train", "holdout") if options[role]}
        for role, path in paths.items():
            if not Path(path).is_file():
                raise CommandError(f"--{role} {path}: no such file.")
        try:
            tables = {role: load_table(path) for role, path in paths.items()}
        except (EngineError, ValueError, OSError) as error:
            raise CommandError(f"Cannot read the input tables: {error}") from error

        def progress(stage: str, percent: int) -> None:
            if sys.stderr.isatty():
                sys.stderr.write(f"\r{stage:<20} {percent:3d}%")

        try:
            evaluation = evaluate(
                tables["synthetic"],
                tables["train"],
                tables.get("holdout"),
                target=options["target"],
                config=EngineConfig(seed=options["seed"]),
                progress=progress,
            ).to_dict()
        except EngineError as error:
            raise CommandError(str(error)) from error
        synthetic = Path(paths["synthetic"])
        document = signing.build_certificate(
            certificate_id=f"cert_{uuid.uuid4().hex}",
            issued_at=timezone.now(),
            artifacts=[
                {
                    "name": synthetic.name,
                    "sha256": signing.sha256_file(synthetic),
                    "rows": int(len(tables["synthetic"])),
                    "columns": int(len(tables["synthetic"].columns)),
                }
            ],
            evaluation=evaluation,
        )
        signed = signing.sign_certificate(document, keys.active_private_key())
        Path(options["output"]).write_bytes(signing.document_bytes(signed))
        if sys.stderr.isatty():
            sys.stderr.write("\n")
        quality, privacy = signed["quality"], signed["privacy"]
        self.stdout.write(
            f"{options['output']}: quality {quality['grade']} ({quality['score']:.3f}), privacy {privacy['grade']} "
            f"({'passed' if privacy['passed'] else 'FAILED'}), signed by {signed['signature']['key_id']}"
        )
