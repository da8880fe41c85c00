import dataclasses

from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from bench.scale_data import DatabaseNotEmpty, ScaleSizes, scale_generate
from deployments.dora_facts import dora_facts_backfill
from deployments.models import Deployment


class Command(BaseCommand):
    help = (
        "Fill an EMPTY, migrated database with a year of a large organisation, for scale measurements "
        "(COPY; minutes at full size). --scale F multiplies every size; each size may also be given on its own. "
        "Every generated user signs in with the demo password."
    )

    def add_arguments(self, parser):
        parser.add_argument("--scale", type=float, default=1.0, help="Multiply every size by this (e.g. 0.01).")
        parser.add_argument("--seed", type=int, default=1, help="Random seed: the same seed makes the same year.")
        for field in dataclasses.fields(ScaleSizes):
            parser.add_argument(
                f"--{field.name.replace('_', '-')}",
                type=int,
                metavar="N",
                help=f"default {field.default:,} times the scale",
            )

    def handle(self, *args, scale, seed, **options):
        if scale <= 0:
            raise CommandError("--scale must be above 0")
        try:
            sizes = ScaleSizes().scaled(scale) if scale != 1 else ScaleSizes()
            given = {field.name: options[field.name] for field in dataclasses.fields(ScaleSizes)}
            sizes = dataclasses.replace(sizes, **{name: value for name, value in given.items() if value is not None})
            counts = scale_generate(sizes.checked(), seed=seed, report=self.stdout.write)
        except (DatabaseNotEmpty, ValueError) as error:
            raise CommandError(str(error)) from None
        # the deployments were written as they ended, not run: their DORA facts are filled as a migration would,
        # then the table is vacuumed again, as autovacuum would after so many updates (reads then find it settled)
        self.stdout.write(f"DORA's per-deployment facts: {dora_facts_backfill():,} deployments")
        with connection.cursor() as cursor:
            cursor.execute(f"VACUUM (ANALYZE) {connection.ops.quote_name(Deployment._meta.db_table)}")
        self.stdout.write(self.style.SUCCESS(f"OK: {sum(counts.values()):,} rows in {len(counts)} tables"))
