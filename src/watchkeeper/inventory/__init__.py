"""Asset inventory: devices, their components and software, lifecycle, licences, provenance,
history, imports, reconciliation and network discovery."""
