from django.apps import AppConfig


class InventoryConfig(AppConfig):
    name = "watchkeeper.inventory"
    label = "inventory"
    verbose_name = "Inventory"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from watchkeeper.core import search

        from .selectors import search_devices

        search.register("devices", "Devices", search_devices)
