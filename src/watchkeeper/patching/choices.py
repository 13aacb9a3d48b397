from django.db import models


class Classification(models.TextChoices):
    SECURITY = "security", "Security"
    BUGFIX = "bugfix", "Bug fix"
    FEATURE = "feature", "Feature"
    OTHER = "other", "Other"


class UpdateSource(models.TextChoices):
    OS = "os", "OS repository"
    THIRD_PARTY = "third_party", "Third-party repository"
    APPLICATION = "application", "Application"
