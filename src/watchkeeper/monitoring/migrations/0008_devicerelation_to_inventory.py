# Device relations now belong to the inventory (inventory 0003 took the model over with its
# table): monitoring forgets the model without touching the database.

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("monitoring", "0007_ingest"),
        ("inventory", "0003_devicerelation_from_monitoring"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="DeviceRelation")],
            database_operations=[],
        ),
    ]
