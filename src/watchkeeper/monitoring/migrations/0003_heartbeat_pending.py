from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("monitoring", "0002_poller_tables"),
    ]

    operations = [
        migrations.AddField(
            model_name="heartbeatjob",
            name="expected_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="heartbeatjob",
            name="pending",
            field=models.CharField(blank=True, max_length=10),
        ),
    ]
