"""SNMP communities and keys saved in clear before sealing moved into the actions (through
the general checks endpoint) are sealed now; policy version snapshots holding them are
masked. Audit rows are history and are not rewritten."""

from django.db import migrations

SERVER_KINDS = ("snmp",)  # the kinds with secret fields (poller_checks.SECRET_FIELDS)


def seal_and_mask(apps, schema_editor):
    from watchkeeper.monitoring.poller.engine import masked, seal_secrets

    Check = apps.get_model("monitoring", "Check")
    PolicyVersion = apps.get_model("monitoring", "PolicyVersion")
    for check in Check.objects.filter(kind__in=SERVER_KINDS):
        sealed = seal_secrets(check.kind, check.config or {})
        if sealed != check.config:
            check.config = sealed
            check.save(update_fields=["config"])
    for version in PolicyVersion.objects.all().iterator():
        snapshot = version.snapshot or {}
        changed = False
        for row in snapshot.get("checks") or []:
            if row.get("kind") in SERVER_KINDS and isinstance(row.get("config"), dict):
                shown = masked(row["kind"], row["config"])
                if shown != row["config"]:
                    row["config"], changed = shown, True
        if changed:
            version.snapshot = snapshot
            version.save(update_fields=["snapshot"])


class Migration(migrations.Migration):

    dependencies = [
        ("monitoring", "0004_channel_url_encrypted"),
    ]

    operations = [
        migrations.RunPython(seal_and_mask, migrations.RunPython.noop),
    ]
