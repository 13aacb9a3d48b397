# Device relations move from monitoring into the inventory (issue 9). This step only moves
# the model in Django's state: the table stays `monitoring_devicerelation`, with its rows,
# until 0004 renames it and adds the provenance columns. Monitoring's 0008 removes the model
# from monitoring's state, also without touching the database.

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("core", "0003_contact_is_user"),
        ("inventory", "0002_asset_tag_currency_import_decisions"),
        ("monitoring", "0006_poll_history"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="DeviceRelation",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True,
                                                   serialize=False, verbose_name="ID")),
                        ("kind", models.CharField(choices=[
                            ("gateway", "Gateway of the device"), ("host", "Host of the VM"),
                            ("uplink", "Uplink of the site")], max_length=10)),
                        ("client", models.ForeignKey(
                            on_delete=django.db.models.deletion.CASCADE, related_name="+",
                            to="core.client")),
                        ("device", models.ForeignKey(
                            blank=True, null=True, on_delete=django.db.models.deletion.CASCADE,
                            related_name="+", to="inventory.device")),
                        ("parent", models.ForeignKey(
                            on_delete=django.db.models.deletion.CASCADE, related_name="+",
                            to="inventory.device")),
                        ("site", models.ForeignKey(
                            blank=True, null=True, on_delete=django.db.models.deletion.CASCADE,
                            related_name="+", to="core.site")),
                    ],
                    options={"db_table": "monitoring_devicerelation"},
                ),
                migrations.AddConstraint(
                    model_name="devicerelation",
                    constraint=models.UniqueConstraint(
                        fields=("kind", "parent", "device", "site"), name="relation_unique"),
                ),
                migrations.AddConstraint(
                    model_name="devicerelation",
                    constraint=models.CheckConstraint(
                        condition=models.Q(("device__isnull", False), ("site__isnull", False),
                                           _connector="OR"),
                        name="relation_has_child"),
                ),
            ],
            database_operations=[],
        ),
    ]
