"""Signed command payloads are stored sealed (they can carry secret script parameters):
seal the rows signed before that."""

from django.db import migrations

PURPOSE = "agents.command-payload"


def seal_existing(apps, schema_editor):
    from watchkeeper.core import crypto

    Command = apps.get_model("agents", "Command")
    for pk, payload in Command.objects.filter(payload__startswith="{").values_list(
            "pk", "payload").iterator():
        Command.objects.filter(pk=pk).update(payload=crypto.encrypt(payload, PURPOSE))


def open_existing(apps, schema_editor):
    from watchkeeper.core import crypto

    Command = apps.get_model("agents", "Command")
    for pk, payload in Command.objects.filter(payload__startswith="v1:").values_list(
            "pk", "payload").iterator():
        Command.objects.filter(pk=pk).update(payload=crypto.decrypt(payload, PURPOSE))


class Migration(migrations.Migration):
    dependencies = [("agents", "0002_agent_commands_waiting")]
    operations = [migrations.RunPython(seal_existing, open_existing, elidable=True)]
