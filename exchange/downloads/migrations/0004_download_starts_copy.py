from django.db import migrations, models
from django.db.models import Q


def count_earlier_full_downloads(apps, schema_editor):
    """Served downloads from byte 0 (or unranged) were the ones counted before; they keep counting."""
    Download = apps.get_model("downloads", "Download")
    Download.objects.filter(outcome="served").filter(Q(range_start=0) | Q(range_start__isnull=True)).update(
        starts_copy=True
    )


class Migration(migrations.Migration):
    dependencies = [
        ("downloads", "0003_delivery_blake3"),
    ]

    operations = [
        migrations.AddField(
            model_name="download",
            name="starts_copy",
            field=models.BooleanField(
                default=False,
                help_text="A served request that counts toward the license's download limit: a first request, "
                "or one starting at or before a byte already requested for the copy (a resume moves forward).",
            ),
        ),
        migrations.RunPython(count_earlier_full_downloads, migrations.RunPython.noop),
    ]
