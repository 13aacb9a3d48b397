from django.apps import AppConfig


class PatchingConfig(AppConfig):
    name = "watchkeeper.patching"
    label = "patching"
    verbose_name = "Patching"
    default_auto_field = "django.db.models.BigAutoField"

